"""Local builds and pushes through the Docker Engine API (the `docker` package)."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator, Mapping
from typing import Any

import docker
import docker.errors
import docker.utils
import requests.exceptions
from tenacity import RetryCallState

from pipeline.builders import Builder, BuildOutcome, BuildRequest, ProgressFn
from pipeline.errors import AuthError, BuildError, EnvironmentProblem, RegistryError
from pipeline.plan import PlannedImage
from pipeline.registry.retry import POLICY, Transient, retry_after_in_text

BUILD_TIMEOUT_SECONDS = 6 * 3600  # a RUN step may print nothing for a long time
LOG_TAIL_LINES = 30


class DockerBuilder:
    """Builds with the engine at `environment['DOCKER_HOST']` (or the default socket)."""

    def __init__(self, environment: Mapping[str, str] | None = None) -> None:
        self._client_kwargs = docker.utils.kwargs_from_env(environment=dict(environment or {}))

    def _client(self) -> docker.APIClient:
        try:
            client = docker.APIClient(timeout=BUILD_TIMEOUT_SECONDS, **self._client_kwargs)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            where = self._client_kwargs.get("base_url", "the default socket")
            raise EnvironmentProblem(f"cannot reach the Docker engine at {where}: {exc}") from None
        return client

    def check(self) -> None:
        self._client().close()

    def builder_for(self, image: PlannedImage) -> Builder:
        return self  # one engine builds every image

    def build(self, request: BuildRequest, progress: ProgressFn) -> BuildOutcome:
        client = self._client()
        try:
            image_id, tail = self._build(client, request, progress)
            digest = self._push(client, request, progress) if request.push else None
            return BuildOutcome(image_id=image_id, pushed_digest=digest, log_tail=tail)
        finally:
            client.close()

    def _build(
        self, client: docker.APIClient, request: BuildRequest, progress: ProgressFn
    ) -> tuple[str, tuple[str, ...]]:
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        step = "build"
        image_id = None
        try:
            stream: Iterator[dict[str, Any]] = client.build(
                path=str(request.context),
                dockerfile=str(request.dockerfile),
                tag=str(request.tag),
                buildargs=dict(request.build_args),
                labels=dict(request.labels),
                target=request.target,
                platform=request.platform,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            )
            for chunk in stream:
                if "stream" in chunk:
                    for line in str(chunk["stream"]).splitlines():
                        line = line.rstrip()
                        if not line:
                            continue
                        tail.append(line)
                        if line.startswith("Step "):
                            step = _user_step(line, len(request.labels))
                            progress("build", step)
                elif "error" in chunk:
                    detail = str(chunk.get("errorDetail", {}).get("message") or chunk["error"]).strip()
                    where = f" at {step}" if step != "build" else ""
                    raise BuildError(f"{request.image}: build failed{where}: {detail}")
                elif "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
        except docker.errors.APIError as exc:
            raise BuildError(f"{request.image}: build failed: {exc.explanation or exc}") from None
        except requests.exceptions.RequestException as exc:
            raise BuildError(f"{request.image}: lost the Docker engine during the build: {exc}") from None
        if image_id is None:
            image_id = str(client.inspect_image(str(request.tag))["Id"])  # type: ignore[no-untyped-call]
        return image_id, tuple(tail)

    def _push(self, client: docker.APIClient, request: BuildRequest, progress: ProgressFn) -> str:
        """The engine gives up on a registry's 5xx/429 or a dropped connection; a push is idempotent
        (layers already there are skipped), so try again by the registry retry policy."""

        def announce(state: RetryCallState) -> None:
            progress("push", f"retrying the push (attempt {state.attempt_number + 1} of {POLICY.attempts})")

        try:
            return POLICY.retrying(before_sleep=announce)(self._push_once, client, request, progress)
        except TransientPushError as exc:
            raise RegistryError(f"{exc} (after {POLICY.attempts} attempts)") from None

    def _push_once(self, client: docker.APIClient, request: BuildRequest, progress: ProgressFn) -> str:
        repository, tag = str(request.tag.repository), request.tag.tag
        auth = request.credentials.engine_auth_config() if request.credentials else None
        digest = None
        progress("push", f"pushing {request.tag}")
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
                if status in ("Pushed", "Layer already exists", "Mounted from"):
                    progress("push", f"{chunk.get('id', '')}: {status}")
        except docker.errors.APIError as exc:
            raise RegistryError(f"{request.image}: push to {repository} failed: {exc.explanation or exc}") from None
        if digest is None:
            raise RegistryError(f"{request.image}: push to {repository} reported no digest")
        return digest


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


def open_backend(environment: Mapping[str, str]) -> DockerBuilder:
    """The engine at DOCKER_HOST (or the default socket), checked to answer before anything is built."""
    builder = DockerBuilder(environment)
    builder.check()
    return builder
