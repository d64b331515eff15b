"""Reading Dockerfiles as the builder reads them, to know which images a build pulls before it runs
(`bases`), and which files a build's ignore file leaves out (`ignore`). Import from the modules: this
package loads neither, so `pipeline changed` (in commit hooks) reads .dockerignore without the parser.

>>> from pipeline.dockerfile.bases import base_images
>>> [str(b.ref) for b in base_images("ARG BASE\\nFROM ${BASE:-alpine:3}\\n", {})]
['docker.io/library/alpine:3']
"""
