"""Local builds with the engine's classic (pre-BuildKit) builder through the Docker Engine API (the
`docker` package), and pushes from an engine (the BuildKit builder pushes through this module too).
docker-py (and requests) is imported by a build or push only: the check of an engine at the start of a
run goes through builders.endpoint where it can, so a run that reuses every image never loads it."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, cast

from tenacity import RetryCallState

from pipeline.builders import (
    LOG_TAIL_LINES,
    BuildOutcome,
    BuildRequest,
    build_failure,
    engine_environment,
    pinned_dockerfile,
)
from pipeline.builders.endpoint import EngineError, PlainEndpoint, plain_endpoint
from pipeline.common.reporting import Reporter
from pipeline.common.retry import POLICY, Transient, retry_after_in_text
from pipeline.dockerfile.ignore import ignore_file, ignore_patterns, reads_own_ignore_file
from pipeline.errors import AuthError, BuildError, EngineUnavailable, EnvironmentProblem, RegistryError
from pipeline.plan import DEFAULT_ENGINE, Engine, PlannedImage

if TYPE_CHECKING:
    import docker
    import docker.errors

BUILD_TIMEOUT_SECONDS = 6 * 3600  # a RUN step may print nothing for a long time
# Every classic build: intermediate containers removed (after a failed step too), no pull (the Dockerfile's
# bases are what the run resolved), the output stream decoded into JSON chunks.
_BUILD_OPTIONS: dict[str, Any] = {"rm": True, "forcerm": True, "pull": False, "decode": True}
CHECK_TIMEOUT_SECONDS = 60  # docker-py's default: the engine's version at the start of a run


def _broken() -> tuple[type[Exception], ...]:
    """A connection that broke: requests' errors, and urllib3's while a streamed response (build output,
    push progress) is being read, which docker-py does not wrap. (Called where docker-py is loaded.)"""
    import requests.exceptions
    import urllib3.exceptions

    return (requests.exceptions.RequestException, urllib3.exceptions.HTTPError)


def _unreachable() -> tuple[type[Exception], ...]:
    """What docker-py raises for an engine that does not answer."""
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException)


def _api_error() -> type[docker.errors.APIError]:
    import docker.errors

    return docker.errors.APIError


class DockerBuilder:
    """Builds with the engine at `environment['DOCKER_HOST']` (or the default socket)."""

    def __init__(self, environment: Mapping[str, str] | None = None, name: str = DEFAULT_ENGINE) -> None:
        self.name = name
        # docker-py's kwargs_from_env reads os.environ when handed an empty environment; so does this.
        self._environment = dict(environment or {}) or dict(os.environ)
        self._endpoint: PlainEndpoint | None = plain_endpoint(self._environment)
        self._version: str | None = None  # the engine's, asked once (provenance)

    @property
    def label(self) -> str:
        """How messages name this engine: by its `engines:` name, if the config gave engines."""
        return "the Docker engine" if self.name == DEFAULT_ENGINE else f"the Docker engine {self.name}"

    @property
    def where(self) -> str:
        return self._environment.get("DOCKER_HOST") or "the default socket"

    def _client_kwargs(self) -> dict[str, Any]:
        import docker.utils

        return dict(docker.utils.kwargs_from_env(environment=self._environment))

    def _client(self, image: str | None = None) -> docker.APIClient:
        """A connected client; `image` set: the run is under way, so an engine that does not answer is
        an engine lost mid-run (its images may move), not a setup problem."""
        import docker

        try:
            client = docker.APIClient(timeout=BUILD_TIMEOUT_SECONDS, **self._client_kwargs())
            client.ping()
        except _unreachable() as exc:
            if image is not None:
                raise EngineUnavailable(f"{image}: lost {self.label} ({self.where}): {exc}", self.name) from None
            raise EnvironmentProblem(f"cannot reach {self.label} at {self.where}: {exc}") from None
        return client

    def _lost(self, request: BuildRequest, during: str, exc: Exception) -> EngineUnavailable | None:
        """A connection broken `during` a build or push: the engine lost, when it no longer answers (None:
        it still does, so the stream alone broke)."""
        if self.answers():
            return None
        return EngineUnavailable(
            f"{request.image}: lost {self.label} ({self.where}) during the {during}: {exc}", self.name
        )

    def check(self, os: str | None = None) -> None:
        """The engine answers, and (`os` given: what the config declares it builds) runs that OS: a Linux
        engine declared `os: windows` is refused here, before anything is built, not by a failing build.
        Where the engine has a PlainEndpoint, one `GET /version` answers both (kept for `engine_version`)."""
        if self._endpoint is not None:
            try:
                answer = self._endpoint.version(CHECK_TIMEOUT_SECONDS)
            except EngineError as exc:
                raise EnvironmentProblem(
                    f"cannot reach {self.label} at {self.where}: Error while fetching server API version: {exc}"
                ) from None
            self._version = str(answer.get("Version") or "")
            self._check_os(os, str(answer.get("Os") or ""))
            return
        client = self._client()
        try:
            if os is None:
                return
            try:
                found = str(client.version().get("Os") or "")
            except _unreachable() as exc:
                raise EnvironmentProblem(f"cannot ask {self.label} at {self.where} its OS: {exc}") from None
            self._check_os(os, found)
        finally:
            client.close()

    def _check_os(self, os: str | None, found: str) -> None:
        if os is not None and found and found != os:
            raise EnvironmentProblem(
                f"engine {self.name} is declared 'os: {os}', but {self.label} at {self.where} runs {found}: "
                f"point the engine at a {os} engine, or declare 'os: {found}'"
            )

    def engine_version(self) -> str | None:
        """The engine's version (its API's `Version`), once; None where it does not say."""
        if self._version is None and self._endpoint is not None:
            try:
                self._version = str(self._endpoint.version(CHECK_TIMEOUT_SECONDS).get("Version") or "")
            except EngineError:
                self._version = ""
        if self._version is None:
            client = self._client()
            try:
                self._version = str(client.version().get("Version") or "")
            except _unreachable():
                self._version = ""
            finally:
                client.close()
        return self._version or None

    def answers(self) -> bool:
        """A quick ping: does the engine still answer?"""
        if self._endpoint is not None:
            return self._endpoint.ping(5)
        import docker

        try:
            client = docker.APIClient(timeout=5, **self._client_kwargs())
            try:
                return bool(client.ping())
            finally:
                client.close()
        except _unreachable():
            return False

    def push(self, request: BuildRequest, progress: Reporter) -> str:
        """Push `request.tag` from this engine (retried by the registry policy); the pushed digest."""
        client = self._client(request.image)
        try:
            return self._push(client, request, progress)
        finally:
            client.close()

    def build(self, request: BuildRequest, progress: Reporter) -> BuildOutcome:
        client = self._client(request.image)
        try:
            image_id, tail = self._build(client, request, progress)
            digest = self._push(client, request, progress) if request.push else None
            return BuildOutcome(image_id=image_id, pushed_digest=digest, log_tail=tail)
        finally:
            client.close()

    def _build(
        self, client: docker.APIClient, request: BuildRequest, progress: Reporter
    ) -> tuple[str, tuple[str, ...]]:
        if request.secrets:
            raise BuildError(f"{request.image}: build secrets need BuildKit (builder: docker with docker buildx)")
        pinned = pinned_dockerfile(request)
        if pinned is None:
            return self._stream_build(client, request, progress, {"path": str(request.context)}, request.dockerfile)
        with _pinned_context(request, pinned) as archive:
            source = {"fileobj": archive, "custom_context": True}
            return self._stream_build(client, request, progress, source, PINNED_DOCKERFILE)

    def _stream_build(
        self,
        client: docker.APIClient,
        request: BuildRequest,
        progress: Reporter,
        source: dict[str, Any],
        dockerfile: object,
    ) -> tuple[str, tuple[str, ...]]:
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        step = "build"
        image_id = None
        try:
            stream: Iterator[dict[str, Any]] = client.build(
                **source,
                dockerfile=str(dockerfile),
                tag=str(request.tag),
                buildargs=dict(request.build_args),
                labels=dict(request.labels),
                target=request.target,
                platform=request.platform,
                network_mode=request.network,
                **_BUILD_OPTIONS,
            )
            pending = ""  # the engine may split one output line over two chunks
            for chunk in stream:
                if "stream" in chunk:
                    *lines, pending = (pending + str(chunk["stream"])).split("\n")
                    for line in lines:
                        step = self._line(line.rstrip(), step, tail, len(request.labels), progress, request.image)
                elif "error" in chunk:
                    self._line(pending.rstrip(), step, tail, len(request.labels), progress, request.image)
                    detail = str(chunk.get("errorDetail", {}).get("message") or chunk["error"]).strip()
                    raise build_failure(request.image, detail, step if step != "build" else None, tuple(tail))
                elif "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
            self._line(pending.rstrip(), step, tail, len(request.labels), progress, request.image)
        except _api_error() as exc:
            raise BuildError(f"{request.image}: build failed: {exc.explanation or exc}", tuple(tail)) from None
        except _broken() as exc:
            raise self._lost(request, "build", exc) or BuildError(
                f"{request.image}: lost the Docker engine during the build: {exc}"
            ) from None
        if image_id is None:
            image_id = str(client.inspect_image(str(request.tag))["Id"])  # type: ignore[no-untyped-call]
        return image_id, tuple(tail)

    @staticmethod
    def _line(line: str, step: str, tail: collections.deque[str], labels: int, progress: Reporter, image: str) -> str:
        """One line of the build's output: a step starting (the step returned), or that step's own output
        (kept in `tail`, which holds only the current step's lines)."""
        if not line:
            return step
        if _STEP.match(line):
            step = _user_step(line, labels)
            tail.clear()
            if not step.startswith("labels: "):  # our bookkeeping, not the user's steps
                progress.step(image, "build", step)
            return step
        progress.step(image, "log", line)
        if not _BOOKKEEPING.match(line):  # the builder's own notes are not the step's output
            tail.append(line)
        return step

    def _push(self, client: docker.APIClient, request: BuildRequest, progress: Reporter) -> str:
        """The engine gives up on a registry's 5xx/429 or a dropped connection; a push is idempotent
        (layers already there are skipped), so try again by the registry retry policy."""

        def announce(state: RetryCallState) -> None:
            progress.step(
                request.image, "push", f"retrying the push (attempt {state.attempt_number + 1} of {POLICY.attempts})"
            )

        try:
            return POLICY.retrying(before_sleep=announce)(self._push_once, client, request, progress)
        except TransientPushError as exc:
            raise RegistryError(f"{exc} (after {POLICY.attempts} attempts)") from None

    def _push_once(self, client: docker.APIClient, request: BuildRequest, progress: Reporter) -> str:
        repository, tag = str(request.tag.repository), request.tag.tag
        auth = request.credentials.engine_auth_config() if request.credentials else None
        digest = None
        progress.step(request.image, "push", f"pushing {request.tag}")
        try:
            for chunk in client.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
                if "error" in chunk:
                    message = str(chunk.get("errorDetail", {}).get("message") or chunk["error"]).strip()
                    error = (
                        AuthError
                        if _is_auth_failure(message)
                        else TransientPushError
                        if _is_transient(message)
                        else RegistryError
                    )
                    hint = (
                        " (no credentials for this registry in the docker config: "
                        "run 'docker login' or set DOCKER_CONFIG)"
                        if error is AuthError and request.credentials is None
                        else ""
                    )
                    raise error(f"{request.image}: push to {repository} failed: {message}{hint}")
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "Digest" in aux:
                    digest = str(aux["Digest"])
                status = chunk.get("status")
                # The containerd image store (Docker 24+) sends no aux record: only the CLI's line
                # "<tag>: digest: sha256:... size: N".
                pushed = _PUSHED_DIGEST.search(str(status or "")) if digest is None else None
                if pushed is not None:
                    digest = pushed.group(1)
                if status in ("Pushed", "Layer already exists", "Mounted from"):
                    progress.step(request.image, "push", f"{chunk.get('id', '')}: {status}")
        except _api_error() as exc:
            raise RegistryError(f"{request.image}: push to {repository} failed: {exc.explanation or exc}") from None
        except _broken() as exc:
            raise self._lost(request, "push", exc) or TransientPushError(
                f"{request.image}: push to {repository} failed: {exc}"
            ) from None
        if digest is None:
            raise RegistryError(f"{request.image}: push to {repository} reported no digest")
        return digest


# The pinned Dockerfile's name in the build context. docker.utils.build.tar lists it in the archive's
# .dockerignore (after the user's patterns), so the engine drops it from the context before `COPY . .`,
# as it does for `docker build -f` outside the context.
PINNED_DOCKERFILE = ".pipeline.Dockerfile"


@contextlib.contextmanager
def _pinned_context(request: BuildRequest, pinned: str) -> Iterator[IO[bytes]]:
    """The build context as docker-py sends it (the context's .dockerignore applied by docker-py's own
    matcher, the same patterns) with the pinned Dockerfile added as PINNED_DOCKERFILE."""
    context = request.context
    import docker.utils.build

    exclude = ignore_patterns(ignore_file(context, request.dockerfile, buildkit=reads_own_ignore_file("classic")))
    archive = cast(IO[bytes], docker.utils.build.tar(context, exclude=exclude, dockerfile=(PINNED_DOCKERFILE, pinned)))
    try:
        yield archive
    finally:
        archive.close()


class TransientPushError(RegistryError, Transient):
    """A push failure worth another attempt (the registry was unavailable, the connection dropped).
    The engine does not pass on the registry's Retry-After; a hint in its error text is honoured."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after_in_text(message)


def _is_transient(message: str) -> bool:
    lowered = message.lower()
    markers = (
        "status: 5",
        "status: 429",
        "too many requests",
        "eof",
        "connection reset",
        "broken pipe",
        "timeout",
        "connection refused",
        'head "',
        "unavailable",
        "internal server error",
        "toomanyrequests",
    )
    # The engine also reports a 429/5xx whose body it could not parse: "error parsing HTTP 429 response body".
    return any(marker in lowered for marker in markers) or _HTTP_TRANSIENT.search(lowered) is not None


def _is_auth_failure(message: str) -> bool:
    lowered = message.lower()
    return any(s in lowered for s in ("no basic auth credentials", "unauthorized", "authentication required"))


_STEP = re.compile(r"^Step (\d+)/(\d+) : ")
_PUSHED_DIGEST = re.compile(r"^\S+: digest: (sha256:[0-9a-f]{64}) size: \d+$")
# The classic builder's lines about a step (" ---> Running in 1a2b", " ---> Using cache", " ---> 3c4d",
# "Removing intermediate container 1a2b"), between and after the step's own output.
_BOOKKEEPING = re.compile(r"^ --->( |$)|^Removing intermediate container [0-9a-f]+$")
_HTTP_TRANSIENT = re.compile(r"\bhttp (429|5\d\d)\b")


def _user_step(line: str, label_count: int) -> str:
    """The classic builder appends one LABEL step per label we pass; number the steps as the user's
    Dockerfile does (`Step 3/3`, not `Step 3/14`) and call ours what they are."""
    match = _STEP.match(line)
    if not match:
        return line
    number, total = int(match.group(1)), int(match.group(2)) - label_count
    if total <= 0:
        return line
    if number > total:
        return f"labels: {line[match.end() :]}"
    return f"Step {number}/{total} : {line[match.end() :]}"


class ClassicBackend:
    """The classic builder on each engine (a buildx builder is no engine to it)."""

    uses_engines = True
    kind = "classic"

    def versions(self, engine: Engine | None) -> dict[str, str]:
        found = (
            self.engines[engine.name].engine_version() if engine is not None and engine.name in self.engines else None
        )
        return {"engine": found} if found else {}

    def __init__(self, engines: Mapping[str, DockerBuilder]) -> None:
        self.engines = dict(engines)

    def serves(self, engine: Engine) -> bool:
        return engine.name in self.engines

    def multi_platform(self, engine: Engine) -> bool:
        return False  # the classic builder builds one platform per build

    def builder_for(self, image: PlannedImage, engine: Engine | None) -> DockerBuilder:
        if engine is None:
            raise ValueError(f"{image.key}: a local build needs an engine")  # the executor always names one
        return self.engines[engine.name]


def engine_clients(environment: Mapping[str, str], engines: Mapping[str, Engine]) -> dict[str, DockerBuilder]:
    """A client per engine of the plan (buildx builders are none), each checked to answer before
    anything is built. An engine named by a docker context is reached at the context's host."""
    clients = {}
    for name, engine in engines.items():
        if engine.buildx_builder is not None:
            continue  # not an engine: buildx pushes its own results
        env = engine_environment(environment, engine)
        context = env.get("DOCKER_CONTEXT")
        if context and not env.get("DOCKER_HOST"):  # docker-py knows no contexts: reach the context's host
            env["DOCKER_HOST"] = context_host(context, env)
        clients[name] = DockerBuilder(env, name)
        clients[name].check(engine.os)
    return clients


def context_host(context: str, environment: Mapping[str, str]) -> str:
    """The engine URL of a docker context, as the docker CLI has it stored."""
    done = subprocess.run(
        ["docker", "context", "inspect", context, "--format", "{{.Endpoints.docker.Host}}"],
        capture_output=True,
        text=True,
        env=dict(environment),
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise EnvironmentProblem(f"engine {context}: no docker context named '{context}' ({done.stderr.strip()})")
    return done.stdout.strip()


def open_backend(environment: Mapping[str, str], engines: Mapping[str, Engine], warn: Reporter) -> ClassicBackend:
    """The classic builder on every engine, each checked to answer before anything is built."""
    return ClassicBackend(engine_clients(environment, engines))
