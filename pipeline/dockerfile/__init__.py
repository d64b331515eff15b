"""Reading Dockerfiles as the builder reads them, to know which images a build pulls before it runs.

>>> [str(b.ref) for b in base_images("ARG BASE\\nFROM ${BASE:-alpine:3}\\n", {})]
['docker.io/library/alpine:3']
"""

from pipeline.dockerfile.bases import BaseImage, UnresolvedBaseImage, base_images, default_platform

__all__ = ["BaseImage", "UnresolvedBaseImage", "base_images", "default_platform"]
