"""Builders turn a build request into a pushed image: the `Builder` protocol, and `BACKENDS`, the
`builder:` names of pipelines.yaml mapped to the module of each backend (one module per backend).

>>> sorted(BACKENDS)
['acr', 'classic', 'docker']
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from pipeline.common.reporting import Reporter
from pipeline.dockerfile.bases import UnresolvedBaseImage, dockerfile_text, shown_path
from pipeline.dockerfile.pin import pin_bases
from pipeline.errors import BuildError
from pipeline.plan import BuildSecret, Engine, PlannedImage
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import ImageRef

LOG_TAIL_LINES = 20  # a failure shows this many of the failing step's last output lines


# How engines repeat the failing command in their error: BuildKit (older and newer) and the classic builder.
_COMMAND_ECHO = re.compile(
    r"(?:executor failed running \[.*\]|process \".*\" did not complete successfully): (exit code: \d+)"
    r"|The command '.*' returned a non-zero code: (\d+)",
    re.DOTALL,
)


def failure_detail(detail: str, step: str | None) -> str:
    """An engine's error for a failed step without its copy of the step's command, which the message
    names already (`build failed at [3/3] RUN make: exit code: 2`); unchanged when the step is unknown."""
    if step is None:
        return detail
    return _COMMAND_ECHO.sub(lambda m: m.group(1) or f"exit code: {m.group(2)}", detail)


def build_failure(image: str, detail: str, step: str | None, tail: tuple[str, ...]) -> BuildError:
    """A local build's failure as both builders say it (`shop/app: build failed at [3/3] RUN make: exit
    code: 2`), with the failing step and its last output lines."""
    where = f" at {step}" if step else ""
    return BuildError(f"{image}: build failed{where}: {failure_detail(detail, step)}", tail, step)


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
    os_version: str | None = None  # the Windows version a windows/* build is for (10.0.17763); None otherwise
    # Several platforms built by one invocation (`--platform a,b`), pushed as one image index of them (only
    # where the backend's `multi_platform` says the engine can); `platform` is then None.
    platforms: tuple[str, ...] = ()
    push: bool = True
    credentials: Credentials | None = field(default=None, repr=False)
    network: str | None = None
    secrets: tuple[BuildSecret, ...] = ()
    cache_from: tuple[str, ...] = ()  # image references whose inline cache a build may reuse
    # Each external base as the Dockerfile names it (after ARGs) -> `repository@digest` the build must stand
    # on instead (pipeline.bases): never a local copy, never what the tag points at by the time it pulls.
    bases: Mapping[str, str] = field(default_factory=dict)
    # Repositories of the run's own images (pipeline.bases.own_repositories): a Dockerfile naming one by tag
    # is left as written, not refused as an unpinned base, by builders that rewrite the Dockerfile.
    own: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BuildOutcome:
    image_id: str
    pushed_digest: str | None  # None when push was off
    log_tail: tuple[str, ...] = ()
    remote_run: str | None = None  # a remote builder's id of the build (ACR Tasks' run id), for provenance


def pinned_dockerfile(request: BuildRequest) -> str | None:
    """For builders that take no named contexts (classic, ACR Tasks): the request's Dockerfile with each
    external base written as the `repository@digest` of `request.bases`, every instruction on its own line
    (pipeline.dockerfile.pin); None when that changes nothing. Raises UnpinnedBaseImage naming the image
    and the line of a base it cannot pin (fail closed: never built on a tag)."""
    path = request.dockerfile if request.dockerfile.is_absolute() else request.context / request.dockerfile
    try:
        text = dockerfile_text(path)
    except OSError as exc:
        raise BuildError(f"{request.image}: cannot read {path}: {exc.strerror}") from None
    try:
        pinned = pin_bases(
            text,
            request.bases,
            request.build_args,
            platform=request.platform,
            target=request.target,
            source=shown_path(path),
            own=request.own,
        )
    except UnresolvedBaseImage as exc:
        raise type(exc)(f"{request.image}: {exc}") from None
    return None if pinned == text else pinned


class Builder(Protocol):
    def build(self, request: BuildRequest, progress: Reporter) -> BuildOutcome:
        """Build and (if asked) push; raise BuildError / RegistryError with the image and step named.
        Each human-readable line about what the build is doing now is a step of `request.image`: "build"
        for a Dockerfile step starting ("[2/4] COPY ..."), "push" for the push, "log" for one line of a
        step's own output (shown only with --progress plain)."""
        ...


@runtime_checkable
class Interruptible(Protocol):
    def interrupt(self) -> None:
        """Ctrl-C: stop work in flight that would outlive this process (remote runs); called from the
        main thread while builds still run on others."""
        ...


class Backend(Protocol):
    """One kind of builder, opened once per run (and checked then, before anything is built); it hands
    each image the builder for that image's own settings (an ACR image: its registry's Tasks) on the
    engine the scheduler chose (None for backends that build remotely: `uses_engines` is False)."""

    uses_engines: bool
    kind: str  # what builds: buildx (BuildKit), classic or acr, as provenance names the builder

    def versions(self, engine: Engine | None) -> dict[str, str]:
        """What provenance records of the builder on `engine`: the engine's version, buildx's (none
        that cannot be asked; a remote builder: none)."""
        ...

    def serves(self, engine: Engine) -> bool:
        """Whether this backend can build on `engine` (the classic builder: not on a buildx builder)."""
        ...

    def multi_platform(self, engine: Engine) -> bool:
        """Whether one build on `engine` can build several platforms and push them as one image index
        (a BuildKit with an image store that holds indexes); asked once per engine per run."""
        ...

    def builder_for(self, image: PlannedImage, engine: Engine | None) -> Builder: ...


class BackendModule(Protocol):
    """What a backend's module provides: `open_backend(environment, engines, warn)`, which checks what
    it needs (each engine to answer, credentials to exist) and raises a PipelineError naming it
    otherwise; it may hand back another backend (`docker` without buildx: the classic one, warned)."""

    def open_backend(
        self, environment: Mapping[str, str], engines: Mapping[str, Engine], warn: Reporter
    ) -> Backend: ...


# `builder:` name -> the backend's module, imported only when a plan uses it (the docker package and
# the Azure SDK each take a noticeable time to import). A new backend is one module and one line here.
BACKENDS: Mapping[str, str] = {
    "docker": "pipeline.builders.buildx",
    "classic": "pipeline.builders.classic",
    "acr": "pipeline.builders.acr",
}


def open_backends(
    names: set[str], environment: Mapping[str, str], engines: Mapping[str, Engine], warn: Reporter
) -> dict[str, Backend]:
    """The backends named, each opened (and so checked) in BACKENDS' order, on `engines` (the plan's,
    or the one engine of the environment)."""
    opened: dict[str, Backend] = {}
    for name, module_name in BACKENDS.items():
        if name in names:
            module: BackendModule = importlib.import_module(module_name)
            opened[name] = module.open_backend(environment, engines, warn)
    return opened


def engine_environment(environment: Mapping[str, str], engine: Engine) -> dict[str, str]:
    """The environment a docker client (CLI or library) needs to reach `engine`."""
    env = dict(environment)
    if engine.host is not None:
        env["DOCKER_HOST"] = engine.host
        env.pop("DOCKER_CONTEXT", None)
        for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            env.pop(name, None)
        if engine.cert_path is not None:
            env["DOCKER_CERT_PATH"] = str(engine.cert_path)
            env["DOCKER_TLS_VERIFY"] = "1"
    elif engine.context is not None:
        env["DOCKER_CONTEXT"] = engine.context
        env.pop("DOCKER_HOST", None)
    return env
