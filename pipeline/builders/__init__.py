"""Builders turn a build request into a pushed image: the `Builder` protocol, and `BACKENDS`, the
`builder:` names of pipelines.yaml mapped to the module of each backend (one module per backend).

>>> sorted(BACKENDS)
['acr', 'docker']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from pipeline.plan import PlannedImage
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import ImageRef

# Called with one human-readable line about what the build is doing now ("Step 2/4 : COPY ...").
ProgressFn = Callable[[str, str], None]  # (step, message)


@dataclass(frozen=True)
class BuildRequest:
    image: str  # the plan key, for messages
    context: Path
    dockerfile: Path
    tag: ImageRef  # local name of the result, and where it is pushed
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    platform: str | None = None
    push: bool = True
    credentials: Credentials | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BuildOutcome:
    image_id: str
    pushed_digest: str | None  # None when push was off
    log_tail: tuple[str, ...] = ()


class Builder(Protocol):
    def build(self, request: BuildRequest, progress: ProgressFn) -> BuildOutcome:
        """Build and (if asked) push; raise BuildError / RegistryError with the image and step named."""
        ...


@runtime_checkable
class Interruptible(Protocol):
    def interrupt(self) -> None:
        """Ctrl-C: stop work in flight that would outlive this process (remote runs); called from the
        main thread while builds still run on others."""
        ...


class Backend(Protocol):
    """One kind of builder, opened once per run (and checked then, before anything is built); it hands
    each image the builder for that image's own settings (an ACR image: its registry's Tasks)."""

    def builder_for(self, image: PlannedImage) -> Builder: ...


class BackendModule(Protocol):
    """What a backend's module provides: `open_backend(environment)`, which checks what it needs (an
    engine to answer, credentials to exist) and raises a PipelineError naming it otherwise."""

    def open_backend(self, environment: Mapping[str, str]) -> Backend: ...


# `builder:` name -> the backend's module, imported only when a plan uses it (the docker package and
# the Azure SDK each take a noticeable time to import). A new backend is one module and one line here.
BACKENDS: Mapping[str, str] = {
    "docker": "pipeline.builders.docker",
    "acr": "pipeline.builders.acr",
}


def open_backends(names: set[str], environment: Mapping[str, str]) -> dict[str, Backend]:
    """The backends named, each opened (and so checked) in BACKENDS' order."""
    opened: dict[str, Backend] = {}
    for name, module_name in BACKENDS.items():
        if name in names:
            module: BackendModule = importlib.import_module(module_name)
            opened[name] = module.open_backend(environment)
    return opened
