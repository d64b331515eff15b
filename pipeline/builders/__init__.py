"""Builders turn a build request into a pushed image; each backend sits behind the Builder protocol."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from pipeline.config.schema import AcrSpec
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
    acr: AcrSpec | None = None  # where a remote (ACR Tasks) build runs


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
