"""BuildKit builds through `docker buildx build`, the default local builder.

A thin subprocess adapter rather than a wrapper library: it needs `--progress rawjson` (BuildKit's own
per-step status, read as it streams, for one progress line per step and the failing step's log tail)
and `--metadata-file` (the image's digest), which wrappers such as python-on-whales do not expose, and
the plugin's command line is the interface Docker documents and keeps stable.

On an engine (the `docker` driver) the result lands in the engine's image store and is pushed from
there through the engine API, as the classic builder's results are (same retries, credentials and
error classes). On a buildx builder (`engines: {x: {buildx: {builder: NAME}}}`: docker-container,
kubernetes or remote drivers) buildx pushes itself, with the docker config's credentials.

External base images stand on the digests the run resolved (BuildRequest.bases), never a local copy of
the tag: as BuildKit named contexts (`--build-context <reference>=docker-image://<repository@digest>`;
buildx and the Dockerfile frontend both match a context by the image's familiar name without `:latest`,
so the reference as resolved matches what the Dockerfile wrote) where the builder's BuildKit has them
(v0.10+), else (the engine's own BuildKit of Docker 20.10 refuses the frontend capability) the Dockerfile
with `repository@digest` written in (pipeline.dockerfile.pin), line numbers kept.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pipeline.builders import (
    LOG_TAIL_LINES,
    Backend,
    BuildOutcome,
    BuildRequest,
    build_failure,
    engine_environment,
    pinned_dockerfile,
)
from pipeline.builders.store import containerd_store, docker_output
from pipeline.common.reporting import Reporter
from pipeline.errors import BuildError, EngineUnavailable, EnvironmentProblem
from pipeline.plan import Engine, PlannedImage

if TYPE_CHECKING:
    from pipeline.builders.classic import DockerBuilder

# Marks of a client that lost its engine or builder (then the engine is pinged to be sure).
_LOST = re.compile(
    r"cannot connect to the docker daemon|error during connect|connection refused|connection reset|"
    r"no such file or directory.*\.sock|broken pipe|unexpected eof|\beof\b|closed network connection|"
    r"rpc error: code = unavailable",
    re.IGNORECASE,
)


def buildx_version(environment: Mapping[str, str]) -> str | None:
    """`docker buildx version`'s line, or None when the plugin is not installed (or the CLI is absent)."""
    if shutil.which("docker", path=environment.get("PATH")) is None:
        return None
    said = docker_output(["docker", "buildx", "version"], environment, timeout=30)
    return said.strip() if said is not None and said.startswith("github.com/docker/buildx") else None


class BuildxBackend:
    uses_engines = True
    kind = "buildx"

    def __init__(
        self,
        environment: Mapping[str, str],
        engines: Mapping[str, Engine],
        pushers: dict[str, DockerBuilder],
        version: str = "",
    ):
        """`version`: `docker buildx version`'s line, as open_backend read it."""
        self._environment = dict(environment)
        self._pushers = pushers
        self._running = _Running()
        words = version.split()
        self._version = words[1] if len(words) > 1 else version

    def versions(self, engine: Engine | None) -> dict[str, str]:
        found = {"buildx": self._version} if self._version else {}
        pusher = self._pushers.get(engine.name) if engine is not None else None
        engine_version = pusher.engine_version() if pusher is not None else None
        return {**found, "engine": engine_version} if engine_version else found

    def interrupt(self) -> None:
        """Ctrl-C: stop the buildx processes in flight (a signal sent to this process alone would
        leave them building)."""
        self._running.terminate_all()

    def serves(self, engine: Engine) -> bool:
        return True

    def multi_platform(self, engine: Engine) -> bool:
        """A buildx builder (open_backend refused one of the `docker` driver: docker-container, remote or
        kubernetes) builds and pushes an index itself; an engine's own builder only where its image store
        is containerd's (the classic store holds one image per tag; asked once per engine: builders.store)."""
        if engine.buildx_builder is not None:
            return True
        return engine.name in self._pushers and containerd_store(engine_environment(self._environment, engine))

    def builder_for(self, image: PlannedImage, engine: Engine | None) -> BuildxBuilder:
        if engine is None:
            raise ValueError(f"{image.key}: a local build needs an engine")  # the executor always names one
        return BuildxBuilder(
            engine_environment(self._environment, engine), engine, self._pushers.get(engine.name), self._running
        )


class _Running:
    """The buildx processes in flight, for an interrupt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen[str]] = set()

    def add(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._processes.add(process)

    def discard(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._processes.discard(process)

    def terminate_all(self) -> None:
        with self._lock:
            for process in self._processes:
                if process.poll() is None:
                    process.terminate()


class BuildxBuilder:
    def __init__(
        self,
        environment: Mapping[str, str],
        engine: Engine,
        pusher: DockerBuilder | None,
        running: _Running | None = None,
    ) -> None:
        self.environment = dict(environment)
        # No buildx provenance attestation (buildx 0.10+ adds one by default where the image store can
        # hold it: the containerd store, a buildx builder). The run signs and attests every pushed digest
        # itself (sigstore, verified by `pipeline verify`); buildx's is unsigned, carries build timestamps
        # (a new digest for every build of the same inputs) and turns a one-platform image into an index
        # with an `unknown/unknown` entry. Older buildx ignores the variable.
        self.environment["BUILDX_NO_DEFAULT_ATTESTATIONS"] = "1"
        self.engine = engine
        self.pusher = pusher  # None: a buildx builder, which pushes by itself
        self._running = running or _Running()
        self.builder = self._builder_name()

    def _builder_name(self) -> str:
        """Always named: buildx would otherwise build on the user's current docker context or
        `docker buildx use` choice, not on this engine (whose image store the push reads). An engine's
        builder is its context's: DOCKER_CONTEXT's when set alone, else "default" (DOCKER_HOST or the
        local socket; the environment then names that context too, as buildx refuses a builder of
        another context than the current one)."""
        if self.engine.buildx_builder is not None:
            return self.engine.buildx_builder
        context = self.environment.get("DOCKER_CONTEXT")
        if context and not self.environment.get("DOCKER_HOST"):
            return context
        self.environment["DOCKER_CONTEXT"] = "default"  # DOCKER_HOST, when set, still wins over it
        return "default"

    def command(
        self, request: BuildRequest, metadata: Path, dockerfile: Path | None = None, contexts: bool = True
    ) -> list[str]:
        """`dockerfile`: the file to build in place of the request's (a pinned copy); `contexts`: give the
        request's bases as named contexts (False: the Dockerfile has them written in already)."""
        argv = ["docker", "buildx", "build", "--progress", "rawjson", "--metadata-file", str(metadata)]
        argv += ["--file", str(dockerfile or request.dockerfile), "--tag", str(request.tag)]
        argv += ["--builder", self.builder]
        pushes = self.engine.buildx_builder is not None and request.push
        if request.platforms:
            # An OCI index of the platforms, as the run writes one of variants built apart (the engine's
            # own exporter would write a Docker manifest list).
            argv += [
                "--output",
                f"type=image,name={request.tag},oci-mediatypes=true" + (",push=true" if pushes else ""),
            ]
        elif pushes:
            argv.append("--push")
        for name, value in request.build_args.items():
            argv += ["--build-arg", f"{name}={value}"]
        for name, value in request.labels.items():
            argv += ["--label", f"{name}={value}"]
        if request.target:
            argv += ["--target", request.target]
        if request.platforms:
            argv += ["--platform", ",".join(request.platforms)]
        elif request.platform:
            argv += ["--platform", request.platform]
        if request.network:
            argv += ["--network", request.network]
        for secret in request.secrets:
            # The source, never the value: buildx reads the variable or file itself.
            source = f"env={secret.env}" if secret.env is not None else f"src={secret.file}"
            argv += ["--secret", f"id={secret.id},{source}"]
        for reference in request.cache_from:
            argv += ["--cache-from", f"type=registry,ref={reference}"]
        if contexts:
            for reference, pinned in sorted(request.bases.items()):
                argv += ["--build-context", f"{reference}=docker-image://{pinned}"]
        if request.push:
            argv += ["--cache-to", "type=inline"]  # the pushed image carries its layer cache for other engines
        argv.append(str(request.context))
        return argv

    def build(self, request: BuildRequest, progress: Reporter) -> BuildOutcome:
        with tempfile.TemporaryDirectory(prefix="pipeline-buildx-") as scratch:
            metadata_file = Path(scratch) / "metadata.json"
            contexts = not request.bases or self._named_contexts()
            dockerfile = None if contexts else self._pinned(request, Path(scratch))
            tail = self._run(request, self.command(request, metadata_file, dockerfile, contexts), progress)
            try:
                metadata: dict[str, Any] = json.loads(metadata_file.read_text())
            except (OSError, ValueError) as exc:
                raise BuildError(f"{request.image}: docker buildx wrote no build metadata: {exc}") from None
        image_id = self._image_id(metadata)
        if not image_id:
            raise BuildError(f"{request.image}: docker buildx reported no image digest")
        if not request.push:
            return BuildOutcome(image_id=image_id, pushed_digest=None, log_tail=tail)
        if self.pusher is None:
            digest = str(metadata.get("containerimage.digest", ""))
            if not digest:
                raise BuildError(f"{request.image}: docker buildx pushed but reported no digest")
            return BuildOutcome(image_id=image_id, pushed_digest=digest, log_tail=tail)
        return BuildOutcome(image_id=image_id, pushed_digest=self.pusher.push(request, progress), log_tail=tail)

    def _image_id(self, metadata: Mapping[str, Any]) -> str:
        """The ID the engine gives the image it built (`docker image inspect <id>` finds it there): on the
        classic store the config's digest (an engine's build of BuildKit 0.8 that was not pushed names
        only that, as containerimage.digest); on the containerd store the manifest's digest,
        containerimage.digest. A buildx builder keeps no image: the config's digest names what it built."""
        config = str(metadata.get("containerimage.config.digest") or "")
        manifest = str(metadata.get("containerimage.digest") or "")
        if manifest and self.pusher is not None and containerd_store(self.environment):
            return manifest
        return config or manifest

    def _named_contexts(self) -> bool:
        """Whether this builder's BuildKit takes named contexts (v0.10+; asked once per builder)."""
        key = (self.builder, self.environment.get("DOCKER_HOST"), self.environment.get("DOCKER_CONTEXT"))
        with _CONTEXTS_GUARD:
            if key not in _CONTEXTS:
                _CONTEXTS[key] = _takes_named_contexts(buildkit_version(self.builder, self.environment))
            return _CONTEXTS[key]

    @staticmethod
    def _pinned(request: BuildRequest, scratch: Path) -> Path:
        """A copy of the request's Dockerfile with its bases written as their digests (beside it, its own
        `<name>.dockerignore` when it has one, which BuildKit reads next to the Dockerfile it is given)."""
        source = request.dockerfile
        pinned = pinned_dockerfile(request)
        if pinned is None:
            return source
        folder = scratch / "dockerfile"
        folder.mkdir()
        target = folder / source.name
        target.write_text(pinned, encoding="utf-8")
        ignore = source.with_name(source.name + ".dockerignore")
        if ignore.is_file():
            shutil.copyfile(ignore, folder / ignore.name)
        return target

    def _run(self, request: BuildRequest, argv: list[str], progress: Reporter) -> tuple[str, ...]:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # progress and errors come on stderr, the digest in the metadata file
                stderr=subprocess.PIPE,
                env=self.environment,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise EnvironmentProblem(f"{request.image}: cannot run docker buildx: {exc}") from None
        assert process.stderr is not None
        self._running.add(process)
        steps = StepTracker(progress, request.image)
        try:
            for item in read_progress(process.stderr):
                if isinstance(item, str):
                    steps.text(item)
                else:
                    steps.status(item)
        finally:
            code = process.wait()
            self._running.discard(process)
        if code == 0:
            return steps.last_tail()
        detail = steps.error or (steps.texts[-1] if steps.texts else f"docker buildx exited with {code}")
        detail = detail.removeprefix("ERROR: ")
        last_words = "\n".join([detail, *steps.texts[-3:]])  # buildx's own final ERROR line says a connection broke
        if _LOST.search(last_words) and self.pusher is not None and not self.pusher.answers():
            raise EngineUnavailable(
                f"{request.image}: lost {self.pusher.label} ({self.pusher.where}): {detail}",
                self.engine.name,
            )
        tail = steps.failed_tail() or tuple(steps.texts[-LOG_TAIL_LINES:])
        raise build_failure(request.image, detail, steps.failed_step, tail)


_CONTEXTS: dict[tuple[str, str | None, str | None], bool] = {}
_CONTEXTS_GUARD = threading.Lock()
_BUILDKIT_VERSION = re.compile(r"^\s*(?:BuildKit version|Buildkit):\s*v?(\d+)\.(\d+)", re.MULTILINE | re.IGNORECASE)


def buildkit_version(builder: str, environment: Mapping[str, str]) -> tuple[int, int] | None:
    """The BuildKit version `docker buildx inspect` reports for the builder's (first) node; None when it
    cannot say (then bases are written into the Dockerfile, which every BuildKit reads)."""
    said = docker_output(["docker", "buildx", "inspect", builder], environment)
    found = _BUILDKIT_VERSION.search(said) if said is not None else None
    if said is None or found is None:
        return None
    version = (int(found.group(1)), int(found.group(2)))
    if version == (0, 0) and _DOCKER_DRIVER.search(said):
        # A distribution's build of the engine (Debian's docker.io 26) reports its built-in BuildKit as
        # v0.0.0+unknown: the engine's own version says which BuildKit it vendors.
        return engine_buildkit(_engine_version(environment))
    return version


_DOCKER_DRIVER = re.compile(r"^Driver:\s*docker\s*$", re.MULTILINE)


def engine_buildkit(engine_version: str | None) -> tuple[int, int] | None:
    """The BuildKit an engine of this version has built in, as far as the named-contexts check needs:
    Docker 23.0 vendors BuildKit v0.11 (every later release a newer one); older or unknown: None."""
    major = re.match(r"v?(\d+)\.", engine_version or "")
    return (0, 11) if major is not None and int(major.group(1)) >= 23 else None


def _engine_version(environment: Mapping[str, str]) -> str | None:
    said = docker_output(["docker", "version", "--format", "{{.Server.Version}}"], environment)
    return said.strip() if said is not None else None


def _takes_named_contexts(version: tuple[int, int] | None) -> bool:
    return version is not None and version >= (0, 10)


def read_progress(stream: IO[str]) -> Iterator[dict[str, Any] | str]:
    """BuildKit's rawjson progress: a stream of (pretty-printed) JSON objects, one per status update,
    with buildx's own plain-text lines (`ERROR: ...`) in between. Yields each object or text line."""
    decoder = json.JSONDecoder()
    buffer = ""
    for line in stream:
        buffer += line
        while True:
            stripped = buffer.lstrip()
            if not stripped:
                buffer = ""
                break
            if stripped[0] != "{":
                text, newline, rest = stripped.partition("\n")
                if not newline:
                    buffer = stripped  # the rest of this line has not arrived yet
                    break
                if text.strip():
                    yield text.rstrip()
                buffer = rest
                continue
            try:
                item, end = decoder.raw_decode(stripped)
            except ValueError:
                # An object still arriving, unless the next object has begun: pretty-printed, only a
                # top-level object starts a line with `{`. Then this one was broken (text written into
                # it), and waiting for it to parse would swallow every status after it: its lines are
                # passed on as text and reading resumes at the next object.
                restart = stripped.find("\n{")
                if restart == -1:
                    buffer = stripped
                    break
                yield from (text.rstrip() for text in stripped[:restart].splitlines() if text.strip())
                buffer = stripped[restart + 1 :]
                continue
            if isinstance(item, dict):
                yield item
            buffer = stripped[end:]
    if buffer.strip():
        yield from (text for text in buffer.strip().splitlines() if text.strip())


# Vertices whose error BuildKit ignores (a --cache-from image not there yet: the first build of a tag);
# taking theirs as the build's error would hide the failing step, or a lost engine, behind "not found".
_BEST_EFFORT = ("importing cache manifest from ",)
_STEP_NAME = re.compile(r"^\[(?:([^\]\s]+) )?(\d+/\d+)\] (.*)$", re.DOTALL)
# A vertex of one platform in a build of several (`[linux/arm64 1/3] COPY ...`): BuildKit names the
# platform only where a step's text differs between platforms, so a RUN's is found among its inputs.
_PLATFORM_NAME = re.compile(r"^\[([a-z0-9]+/[a-z0-9]+(?:/[a-z0-9]+)?) ")


class StepTracker:
    """Turns BuildKit's vertex updates into one progress line per Dockerfile step (when it starts),
    each log line of a step as a "log" line, and remembers the failing step and its output's tail."""

    def __init__(self, progress: Reporter, image: str) -> None:
        self.progress, self.image = progress, image
        self.started: set[str] = set()
        self.tails: dict[str, collections.deque[str]] = {}
        self.partial: dict[str, str] = {}
        self.order: list[str] = []
        self.texts: list[str] = []
        self.error: str | None = None
        self.failed_step: str | None = None
        self._failed_vertex: str | None = None
        self._failed_in_step = False
        self._names: dict[str, str] = {}
        self._inputs: dict[str, list[str]] = {}

    def text(self, line: str) -> None:
        self.texts.append(line)
        self.progress.step(self.image, "log", line)

    def status(self, update: Mapping[str, Any]) -> None:
        for vertex in update.get("vertexes") or ():
            digest = str(vertex.get("digest", ""))
            name = str(vertex.get("name", ""))
            self._names[digest] = name
            if vertex.get("inputs"):
                self._inputs[digest] = [str(found) for found in vertex["inputs"]]
            # A step answered from the cache may come with no start time at all: still one line.
            if (vertex.get("started") or vertex.get("cached")) and digest not in self.started:
                self.started.add(digest)
                self.order.append(digest)
                step = user_step(name)
                if step is not None:
                    shown = self._with_platform(digest, step) + (" (cached)" if vertex.get("cached") else "")
                    self.progress.step(self.image, "build", shown)
            # A Dockerfile step's error is the failure; BuildKit's own vertices may fail without failing
            # the build (a --cache-from image not there yet: "importing cache manifest ... not found").
            first_step_error = user_step(name) is not None and not self._failed_in_step
            best_effort = name.startswith(_BEST_EFFORT)  # never the failure, even when nothing else failed
            if vertex.get("error") and not best_effort and (self.error is None or first_step_error):
                self.error = str(vertex["error"])
                self.failed_step = self._with_platform(digest, user_step(name) or name)
                self._failed_vertex = digest
                self._failed_in_step = user_step(name) is not None
        for log in update.get("logs") or ():
            digest = str(log.get("vertex", ""))
            try:
                data = base64.b64decode(str(log.get("data", ""))).decode("utf-8", "replace")
            except ValueError:
                continue
            text = self.partial.pop(digest, "") + data
            lines = text.split("\n")
            if not text.endswith("\n"):
                self.partial[digest] = lines.pop()
            for line in lines:
                line = line.rstrip("\r")
                if line:
                    self.tails.setdefault(digest, collections.deque(maxlen=LOG_TAIL_LINES)).append(line)
                    self.progress.step(self.image, "log", line)

    def _with_platform(self, digest: str, step: str) -> str:
        """`[3/3] RUN make` as `[linux/arm64 3/3] RUN make` where the vertex (or one it stands on)
        names the platform it was built for: in a build of several, which one runs or failed."""
        seen: set[str] = set()
        todo = [digest]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            found = _PLATFORM_NAME.match(self._names.get(current, ""))
            if found is not None:
                prefix = f"[{found.group(1)} "
                return step if step.startswith(prefix) or not step.startswith("[") else prefix + step[1:]
            todo.extend(self._inputs.get(current, ()))
        return step

    def _tail(self, digest: str) -> tuple[str, ...]:
        tail = list(self.tails.get(digest, ()))
        if self.partial.get(digest):
            tail.append(self.partial[digest])
        return tuple(tail[-LOG_TAIL_LINES:])

    def failed_tail(self) -> tuple[str, ...]:
        return self._tail(self._failed_vertex) if self._failed_vertex else ()

    def last_tail(self) -> tuple[str, ...]:
        """The output of the last step that printed any (kept with a successful build's outcome)."""
        for digest in reversed(self.order):
            if self.tails.get(digest):
                return self._tail(digest)
        return ()


def user_step(name: str) -> str | None:
    """A Dockerfile step as the user wrote it (`[2/4] RUN make`), or None for BuildKit's own
    bookkeeping vertices (`[internal] load .dockerignore`, exporting, pushing)."""
    match = _STEP_NAME.match(name)
    if not match:
        return None
    stage, number, text = match.groups()
    named = stage is not None and not re.fullmatch(r"stage-\d+", stage)
    return f"[{stage} {number}] {text}" if named else f"[{number}] {text}"


def open_backend(environment: Mapping[str, str], engines: Mapping[str, Engine], warn: Reporter) -> Backend:
    """BuildKit on every engine (each checked to answer); without the buildx plugin, the classic
    builder, with one warning (a buildx builder engine then cannot be used: an error)."""
    with ThreadPoolExecutor(1) as asking:
        # The docker CLI answers (~0.1 s, a process of its own) while docker-py, the engine client, loads.
        asked = asking.submit(buildx_version, environment)
        from pipeline.builders.classic import ClassicBackend, engine_clients

        version = asked.result()
    if version is None:
        named = [e.name for e in engines.values() if e.buildx_builder is not None]
        if named:
            raise EnvironmentProblem(
                f"engine {named[0]} is a buildx builder, but the docker buildx plugin is not installed"
            )
        warn.warn(
            "docker buildx is not installed: building with the engine's classic builder "
            "(no RUN --mount, no build secrets; install the docker-buildx plugin for BuildKit)"
        )
        return ClassicBackend(engine_clients(environment, engines))
    for engine in engines.values():
        if engine.buildx_builder is not None:
            _check_builder(engine, environment)
    return BuildxBackend(environment, engines, engine_clients(environment, engines), version)


def _check_builder(engine: Engine, environment: Mapping[str, str], timeout: float = 300) -> None:
    try:
        done = subprocess.run(
            ["docker", "buildx", "inspect", "--bootstrap", str(engine.buildx_builder)],
            capture_output=True,
            text=True,
            env=dict(environment),
            check=False,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:  # a kubernetes builder whose pods never start, say
        raise EnvironmentProblem(
            f"engine {engine.name}: buildx builder '{engine.buildx_builder}' did not answer within {timeout:g} s"
        ) from None
    if done.returncode != 0:
        problem = (done.stderr.strip().splitlines() or ["it does not answer"])[-1]
        raise EnvironmentProblem(f"engine {engine.name}: buildx builder '{engine.buildx_builder}': {problem}")
    driver = re.search(r"^Driver:\s*(\S+)", done.stdout, re.MULTILINE)
    if driver is not None and driver.group(1) == "docker":
        # buildx lists each docker context as a builder of the docker driver, but builds with it only
        # from that context ("use `docker --context=X buildx`"): it is an engine, named as one.
        raise EnvironmentProblem(
            f"engine {engine.name}: buildx builder '{engine.buildx_builder}' is a Docker engine's own builder "
            f"(driver docker): name that engine with 'context: {engine.buildx_builder}' instead of 'buildx:'"
        )
