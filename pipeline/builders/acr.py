"""Remote builds on ACR Tasks, as `az acr build` does them: upload the context, schedule a run, stream
its log while polling it, read the pushed digest; cancel the run on Ctrl-C or timeout."""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from collections.abc import Mapping

from azure.core.credentials import TokenCredential

from pipeline.acr.client import (
    OS_VERSION_ARG,
    AcrTasksClient,
    RemoteBuild,
    RunState,
    azure_credential,
    read_log,
)
from pipeline.acr.source import source_archive
from pipeline.acr.tasks import platform_properties
from pipeline.builders import (
    LOG_TAIL_LINES,
    Builder,
    BuildOutcome,
    BuildRequest,
    pinned_dockerfile,
)
from pipeline.common.reporting import Reporter
from pipeline.config.resolved import AcrSettings
from pipeline.errors import BuildError, ConfigError, PipelineError
from pipeline.plan import Engine, PlannedImage

POLL_SECONDS = 1.0
# The run log: ACR's own lines stamped "2024/01/01 12:00:00 ...", and the engine's (classic) build output,
# whose steps start "Step 2/3 : RUN make"; between a step's lines, the builder's notes about it.
_STAMP = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_BOOKKEEPING = re.compile(r"^ --->( |$)|^Removing intermediate container [0-9a-f]+$")


class LogFollower:
    """Turns the growing log blob into whole lines, each reported once: a Dockerfile step starting as a
    "build" line (not the LABEL step source upload adds for `labels`), every other line as a "log" line.
    `step` is the step running, `tail` the last output lines since it started."""

    def __init__(self, progress: Reporter, image: str, labels: Mapping[str, str] | None = None) -> None:
        self.offset = 0
        self.step: str | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self._partial = b""
        self._progress, self._image = progress, image
        self._label_keys = [json.dumps(key) for key in labels or {}]
        self._past_labels = False

    def feed(self, data: bytes, final: bool = False) -> None:
        self.offset += len(data)
        buffered = self._partial + data
        *lines, self._partial = buffered.split(b"\n")
        if final and self._partial:
            lines.append(self._partial)
            self._partial = b""
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").rstrip("\r").rstrip()
            if line:
                self._line(line)

    def _line(self, line: str) -> None:
        text = _STAMP.sub("", line, count=1)
        step = _STEP.match(text)
        if step is None:
            self._progress.step(self._image, "log", line)
            if not _BOOKKEEPING.match(text):
                self.tail.append(line)
            return
        number, total, instruction = int(step.group(1)), int(step.group(2)), step.group(3)
        ours = instruction.startswith("LABEL ") and bool(self._label_keys)
        ours = ours and all(key in instruction for key in self._label_keys)
        self.tail.clear()
        if ours:  # our labels are bookkeeping, not the user's steps
            self.step, self._past_labels = f"labels: {instruction}", True
            return
        # Number the steps as the user's Dockerfile does: without the LABEL step the upload added.
        if self._label_keys:
            number, total = number - self._past_labels, total - 1
        self.step = f"Step {number}/{total} : {instruction}"
        self._progress.step(self._image, "build", self.step)


class AcrBuilder:
    """Builds `builder: acr` images on the ACR Tasks of the image's `acr:` settings."""

    def __init__(self, credential: TokenCredential, poll_seconds: float = POLL_SECONDS) -> None:
        self.credential = credential
        self.poll_seconds = poll_seconds
        self._clients: dict[tuple[str, ...], AcrTasksClient] = {}
        self._active: dict[str, AcrTasksClient] = {}  # run id -> its client, while we wait for it
        self._interrupted = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, environment: Mapping[str, str]) -> AcrBuilder:
        """Credentials: PIPELINE_AZURE_ACCESS_TOKEN (a bearer token for ARM), else DefaultAzureCredential
        (environment, workload identity, managed identity, Azure CLI, ...)."""
        return cls(azure_credential(environment))

    def client(self, spec: AcrSettings) -> AcrTasksClient:
        key = (spec.arm_endpoint, spec.subscription, spec.resource_group, spec.registry)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = AcrTasksClient(self.credential, spec)
            return self._clients[key]

    def interrupt(self) -> None:
        """Cancel every run in flight (Ctrl-C); called from another thread than the builds'."""
        self._interrupted.set()
        with self._lock:
            active = list(self._active.items())
        for run_id, client in active:
            try:
                client.cancel(run_id)
            except PipelineError:
                pass  # exiting anyway; the run's own timeout still bounds it

    uses_engines = False
    kind = "acr"

    def versions(self, engine: Engine | None) -> dict[str, str]:
        return {}  # the run id names the remote build; ACR reports no builder version

    def serves(self, engine: Engine) -> bool:
        return False  # builds remotely, on ACR Tasks

    def multi_platform(self, engine: Engine) -> bool:
        return False  # one ACR task run per platform

    def builder_for(self, image: PlannedImage, engine: Engine | None = None) -> Builder:
        return self.for_settings(image.acr)

    def for_settings(self, spec: AcrSettings | None) -> Builder:
        """The builder for images whose `acr:` settings are `spec` (their registry's Tasks)."""
        return _OnTasks(self, spec)

    def build(self, spec: AcrSettings | None, request: BuildRequest, progress: Reporter) -> BuildOutcome:
        if spec is None:
            raise ConfigError(f"{request.image}: builds on ACR Tasks but has no 'acr:' settings")
        server = spec.server
        if request.tag.repository.registry != server:
            raise ConfigError(
                f"{request.image}: ACR Tasks push to the registry's login server {server}, but the image's "
                f"repository is {request.tag.repository} (set `repository:` or `registry:` to {server}/...)"
            )
        client = self.client(spec)
        os_name, architecture, variant = platform_properties(request.platform)
        _check_os_version(request, os_name)
        pinned = pinned_dockerfile(request)
        try:
            archive = source_archive(request.context, request.dockerfile, request.labels, request.target, pinned)
            with archive.file:
                upload = client.source_upload()
                progress.step(
                    request.image, "upload", f"uploading the context ({archive.size} bytes) to ACR {spec.registry}"
                )
                client.upload(upload.upload_url, archive.file, archive.size)
            build = RemoteBuild(
                image_names=(f"{request.tag.repository.path}:{request.tag.tag}",),
                dockerfile=archive.dockerfile,
                source_location=upload.relative_path,
                build_args=request.build_args,
                target=request.target,
                os_version=request.os_version,
                push=request.push,
                os=os_name,
                architecture=architecture,
                variant=variant,
                timeout=spec.timeout,
            )
            run_id = client.schedule(build)
        except PipelineError as exc:
            raise BuildError(f"{request.image}: {exc}") from None
        progress.step(request.image, "queued", f"run {run_id} on ACR {spec.registry}")
        with self._lock:
            self._active[run_id] = client
        try:
            state, follower = self._follow(client, run_id, spec.timeout, request, progress)
        except BaseException:
            # KeyboardInterrupt when building on the main thread, or anything unexpected: don't leave
            # the run going on Azure's builders.
            self._cancel_quietly(client, run_id)
            raise
        finally:
            with self._lock:
                self._active.pop(run_id, None)
        return self._outcome(request, server, state, follower)

    def _follow(
        self, client: AcrTasksClient, run_id: str, timeout: int, request: BuildRequest, progress: Reporter
    ) -> tuple[RunState, LogFollower]:
        """Poll the run and stream its log until both are finished."""
        follower = LogFollower(progress, request.image, request.labels)
        deadline = time.monotonic() + timeout
        log_url: str | None = None
        try:
            while True:
                state = client.run(run_id)
                if log_url is None:
                    log_url = client.log_url(run_id)
                chunk = read_log(log_url, follower.offset)
                follower.feed(chunk.data)
                if state.finished:
                    # The log may lag the status; read until the service marks it complete (bounded).
                    for _ in range(10):
                        if chunk.complete:
                            break
                        time.sleep(self.poll_seconds / 2)
                        chunk = read_log(log_url, follower.offset)
                        follower.feed(chunk.data)
                    follower.feed(b"", final=True)
                    return state, follower
                if self._interrupted.is_set():
                    raise BuildError(f"{request.image}: interrupted; run {run_id} cancelled", tuple(follower.tail))
                if time.monotonic() > deadline:
                    self._cancel_quietly(client, run_id)
                    raise BuildError(
                        f"{request.image}: run {run_id} took longer than {timeout}s (acr.timeout) and was "
                        f"cancelled{_at(follower)}",
                        tuple(follower.tail),
                    )
                time.sleep(self.poll_seconds)
        except BuildError:
            raise
        except PipelineError as exc:
            self._cancel_quietly(client, run_id)
            raise BuildError(f"{request.image}: run {run_id}: {exc}") from None

    def _outcome(self, request: BuildRequest, server: str, state: RunState, follower: LogFollower) -> BuildOutcome:
        tail = tuple(follower.tail)
        if state.status != "Succeeded":
            reason = f": {state.error}" if state.error else ""
            raise BuildError(
                f"{request.image}: remote build failed{_at(follower)} (run {state.run_id} {state.status}{reason})",
                tail,
            )
        path, tag = request.tag.repository.path, request.tag.tag
        digests = [i.digest for i in state.images if i.repository == path and i.tag == tag and i.digest]
        digest = digests[0] if digests else None
        if request.push and digest is None:
            raise BuildError(f"{request.image}: run {state.run_id} succeeded but reported no digest for {path}:{tag}")
        return BuildOutcome(
            image_id=digest or state.run_id,
            pushed_digest=digest if request.push else None,
            log_tail=tail,
            remote_run=state.run_id,
        )

    @staticmethod
    def _cancel_quietly(client: AcrTasksClient, run_id: str) -> None:
        try:
            client.cancel(run_id)
        except PipelineError:
            pass


def _check_os_version(request: BuildRequest, os_name: str) -> None:
    if request.os_version is None:
        return
    if os_name != "Windows":
        raise ConfigError(
            f"{request.image}: os_version {request.os_version} is for windows/* platforms, not {request.platform}"
        )
    given = request.build_args.get(OS_VERSION_ARG)
    if given is not None and given != request.os_version:
        raise ConfigError(
            f"{request.image}: build arg {OS_VERSION_ARG}={given} contradicts os_version {request.os_version} "
            f"(pipeline passes os_version as {OS_VERSION_ARG}; drop the build arg)"
        )


def _at(follower: LogFollower) -> str:
    """Where in the build a run stopped: " at Step 2/3 : RUN make", or nothing before the first step."""
    return f" at {follower.step}" if follower.step else ""


class _OnTasks:
    """A Builder bound to one image's `acr:` settings: the settings travel with the backend, not with the
    neutral BuildRequest."""

    def __init__(self, backend: AcrBuilder, spec: AcrSettings | None) -> None:
        self.backend, self.spec = backend, spec

    def build(self, request: BuildRequest, progress: Reporter) -> BuildOutcome:
        return self.backend.build(self.spec, request, progress)


def open_backend(environment: Mapping[str, str], engines: Mapping[str, Engine], warn: Reporter) -> AcrBuilder:
    return AcrBuilder.from_environment(environment)
