"""pydantic's plugin loader (`pydantic.plugin._loader`) for a CLI process that has pydantic's plugins off.

pydantic asks its loader for plugins each time it builds a model's validator; with
PYDANTIC_DISABLE_PLUGINS set the answer is "none", but the loader module imports importlib.metadata to
scan entry points whether or not it then does (with email and zipfile: ~15 ms of CPU in each start that
builds the config models, a fifth of what `pipeline changed` on a cache miss may spend over its 300 ms).
pipeline.cli puts this module in its place when the variable turns plugins off, and only then: the
answer is the same, none. pydantic imports nothing else from its loader (a newer one that did would
fail every config test at once: ImportError when the first model is built).
"""

from __future__ import annotations


def get_plugins() -> tuple[()]:
    return ()
