"""The one adapter over the Azure SDK: ACR Tasks on ARM (runs, tasks), blob transfers for build sources
and run logs, and AAD tokens. Everything else in pipeline sees only the plain types defined here.

Runs and tasks come from azure-mgmt-containerregistry 14.0.0, API version 2019-06-01-preview: 15.x moved
them into the separate beta package azure-mgmt-containerregistrytasks (docs/acr.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from azure.core import AzureClouds
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.mgmt.containerregistry.v2019_06_01_preview import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.v2019_06_01_preview import models as m
from azure.mgmt.containerregistry.v2025_04_01 import (
    ContainerRegistryManagementClient as RegistryResourceClient,
)
from azure.mgmt.core.tools import get_arm_endpoints
from azure.storage.blob import BlobClient, BlobType

from pipeline.acr.tasks import TaskSpec
from pipeline.common.retry import POLICY
from pipeline.config.resolved import AcrSettings
from pipeline.errors import AuthError, PipelineError

TASKS_API_VERSION = "2019-06-01-preview"  # the newest API of 14.x with runs, scheduleRun and tasks
# azure-core's RetryPolicy (connection errors, 408/429/5xx, backoff, Retry-After) counts retries, not
# attempts: the same number of attempts as every registry operation (pipeline/common/retry.py).
RETRY_TOTAL = POLICY.attempts - 1
TERMINAL = frozenset({"Succeeded", "Failed", "Canceled", "Error", "Timeout"})
# A bearer token given directly (CI, tests): no AAD endpoint is consulted.
STATIC_TOKEN_VARIABLE = "PIPELINE_AZURE_ACCESS_TOKEN"


class AzureServiceError(PipelineError):
    """ARM, ACR Tasks or blob storage refused or failed a request (after azure-core's retries)."""


@dataclass(frozen=True)
class SourceUpload:
    upload_url: str  # a SAS URL: PUT the tar.gz here
    relative_path: str  # what scheduleRun takes as sourceLocation


# ACR's run request has no field for the Windows version (PlatformProperties is os/architecture/variant):
# it reaches the build as this build argument, for a Dockerfile to pick its servercore/nanoserver tag.
OS_VERSION_ARG = "PIPELINE_OS_VERSION"


@dataclass(frozen=True)
class RemoteBuild:
    """A DockerBuildRequest: what `az acr build` schedules. `os_version`, the Windows version a Windows
    build is for (`10.0.17763`), travels as the build argument PIPELINE_OS_VERSION (only when set): a
    Dockerfile may declare `ARG PIPELINE_OS_VERSION` and choose its base from it."""

    image_names: tuple[str, ...]  # repository:tag, relative to the registry's login server
    dockerfile: str  # relative to the source's root
    source_location: str
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    os: str = "Linux"
    architecture: str = "amd64"
    variant: str | None = None
    os_version: str | None = None
    timeout: int = 3600
    push: bool = True

    def arguments(self) -> dict[str, str]:
        """The build arguments the run gets: the image's, and PIPELINE_OS_VERSION when os_version is set."""
        if self.os_version is None:
            return dict(self.build_args)
        return {**self.build_args, OS_VERSION_ARG: self.os_version}


@dataclass(frozen=True)
class OutputImage:
    registry: str
    repository: str
    tag: str
    digest: str


@dataclass(frozen=True)
class RunState:
    run_id: str
    status: str
    error: str | None = None
    images: tuple[OutputImage, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class LogChunk:
    data: bytes
    complete: bool  # the service marked the log finished (blob metadata `Complete`)


class StaticTokenCredential:
    """A TokenCredential for a bearer token obtained elsewhere (CI secrets, the test emulator)."""

    def __init__(self, token: str, lifetime: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + self._lifetime)


def azure_credential(environment: Mapping[str, str]) -> TokenCredential:
    """PIPELINE_AZURE_ACCESS_TOKEN if set, else azure-identity's DefaultAzureCredential chain."""
    token = environment.get(STATIC_TOKEN_VARIABLE)
    if token:
        return StaticTokenCredential(token)
    from azure.identity import DefaultAzureCredential  # slow to import; only when needed

    return DefaultAzureCredential()


def arm_scope(arm_endpoint: str) -> str:
    """The AAD scope of an ARM endpoint: the known clouds' audiences, else `<endpoint>/.default`."""
    wanted = arm_endpoint.rstrip("/")
    for cloud in AzureClouds:
        endpoints = get_arm_endpoints(cloud)
        if str(endpoints["resource_manager"]).rstrip("/") == wanted:
            return str(endpoints["credential_scopes"][0])
    return wanted + "/.default"


def aad_token(credential: TokenCredential, arm_endpoint: str) -> str:
    """An AAD access token for ARM (what ACR's /oauth2/exchange accepts)."""
    with _azure_errors(f"getting an Azure AD token for {arm_endpoint}"):
        return credential.get_token(arm_scope(arm_endpoint)).token


@contextmanager
def _azure_errors(action: str) -> Iterator[None]:
    try:
        yield
    except ClientAuthenticationError as exc:
        raise AuthError(f"{action}: Azure rejected the credentials: {_message(exc)}") from None
    except HttpResponseError as exc:
        raise AzureServiceError(f"{action} failed: {_message(exc)}") from None
    except AzureError as exc:  # connection errors after retries, credential chain failures
        raise AzureServiceError(f"{action} failed: {type(exc).__name__}: {_message(exc)}") from None


def _message(exc: AzureError) -> str:
    return str(exc.message if getattr(exc, "message", None) else exc).splitlines()[0]


class AcrTasksClient:
    """ARM operations of one registry's ACR Tasks, and the blob transfers they hand out."""

    def __init__(self, credential: TokenCredential, spec: AcrSettings) -> None:
        self.spec = spec
        self.where = f"registry '{spec.registry}' (resource group {spec.resource_group}, {spec.arm_endpoint})"
        common: dict[str, Any] = {
            "base_url": spec.arm_endpoint,
            "credential_scopes": [arm_scope(spec.arm_endpoint)],
            "retry_total": RETRY_TOTAL,
            "polling_interval": 1,
        }
        self._tasks = ContainerRegistryManagementClient(credential, spec.subscription, **common)
        self._resources = RegistryResourceClient(credential, spec.subscription, **common)

    def close(self) -> None:
        self._tasks.close()
        self._resources.close()

    # --- quick builds -----------------------------------------------------------------------

    def source_upload(self) -> SourceUpload:
        with _azure_errors(f"asking {self.where} for a source upload URL"):
            result = self._tasks.registries.get_build_source_upload_url(self.spec.resource_group, self.spec.registry)
        if not result.upload_url or not result.relative_path:
            raise AzureServiceError(f"{self.where} returned no source upload URL")
        return SourceUpload(result.upload_url, result.relative_path)

    def upload(self, upload_url: str, data: IO[bytes], length: int) -> None:
        with _azure_errors("uploading the build context"):
            blob = BlobClient.from_blob_url(upload_url, retry_total=RETRY_TOTAL)
            blob.upload_blob(data, length=length, blob_type=BlobType.BLOCKBLOB, overwrite=True)

    def schedule(self, build: RemoteBuild) -> str:
        request = docker_build_request(build)
        with _azure_errors(f"scheduling a run on {self.where}"):
            # The long-running operation ends when the run is queued, not when it finishes.
            run = self._tasks.registries.begin_schedule_run(self.spec.resource_group, self.spec.registry, request)
            queued = run.result()
        if not queued.run_id:
            raise AzureServiceError(f"{self.where} scheduled a run but returned no run id")
        return str(queued.run_id)

    def run(self, run_id: str) -> RunState:
        with _azure_errors(f"reading run {run_id} on {self.where}"):
            run = self._tasks.runs.get(self.spec.resource_group, self.spec.registry, run_id)
        images = tuple(
            OutputImage(i.registry or "", i.repository or "", i.tag or "", i.digest or "")
            for i in run.output_images or []
        )
        return RunState(run_id, str(run.status or "Queued"), run.run_error_message, images)

    def log_url(self, run_id: str) -> str:
        with _azure_errors(f"asking {self.where} for the log of run {run_id}"):
            result = self._tasks.runs.get_log_sas_url(self.spec.resource_group, self.spec.registry, run_id)
        if not result.log_link:
            raise AzureServiceError(f"{self.where} returned no log link for run {run_id}")
        return str(result.log_link)

    def cancel(self, run_id: str) -> None:
        with _azure_errors(f"cancelling run {run_id} on {self.where}"):
            self._tasks.runs.begin_cancel(self.spec.resource_group, self.spec.registry, run_id).result()

    # --- tasks ----------------------------------------------------------------------------------

    def location(self) -> str:
        with _azure_errors(f"reading {self.where}"):
            registry = self._resources.registries.get(self.spec.resource_group, self.spec.registry)
        return str(registry.location)

    def tasks(self) -> list[TaskSpec]:
        """The registry's tasks that pipeline can describe (docker build steps with a commit trigger)."""
        with _azure_errors(f"listing the tasks of {self.where}"):
            found = list(self._tasks.tasks.list(self.spec.resource_group, self.spec.registry))
        specs = []
        for task in found:
            # list() omits secrets and some details; get_details() has the full definition.
            with _azure_errors(f"reading task {task.name} of {self.where}"):
                full = self._tasks.tasks.get_details(self.spec.resource_group, self.spec.registry, str(task.name))
            spec = _task_spec(full)
            if spec is not None:
                specs.append(spec)
        return specs

    def task_tags(self) -> dict[str, dict[str, str]]:
        """Every task's name and tags, including tasks pipeline cannot describe."""
        with _azure_errors(f"listing the tasks of {self.where}"):
            return {
                str(t.name): dict(t.tags or {})
                for t in self._tasks.tasks.list(self.spec.resource_group, self.spec.registry)
            }

    def put_task(self, task: TaskSpec, location: str, git_token: str | None) -> None:
        auth = m.AuthInfo(token_type="PAT", token=git_token) if git_token else None
        body = m.Task(
            location=location,
            tags=dict(task.tags),
            status="Enabled",
            timeout=task.timeout,
            platform=m.PlatformProperties(os=task.os, architecture=task.architecture),
            step=m.DockerBuildStep(
                image_names=list(task.image_names),
                is_push_enabled=True,
                no_cache=False,
                docker_file_path=task.dockerfile,
                context_path=task.context_path,
                target=task.target,
                arguments=[m.Argument(name=k, value=v, is_secret=False) for k, v in task.build_args.items()],
            ),
            trigger=m.TriggerProperties(
                source_triggers=[
                    m.SourceTrigger(
                        name="commit",
                        source_trigger_events=["commit"],
                        status="Enabled",
                        source_repository=m.SourceProperties(
                            source_control_type=task.source_control_type,
                            repository_url=task.repository_url,
                            branch=task.branch,
                            source_control_auth_properties=auth,
                        ),
                    )
                ],
                base_image_trigger=m.BaseImageTrigger(
                    name="baseimage", base_image_trigger_type=task.base_image_trigger, status="Enabled"
                )
                if task.base_image_trigger
                else None,
            ),
        )
        with _azure_errors(f"writing task {task.name} on {self.where}"):
            self._tasks.tasks.begin_create(self.spec.resource_group, self.spec.registry, task.name, body).result()

    def delete_task(self, name: str) -> None:
        with _azure_errors(f"deleting task {name} on {self.where}"):
            self._tasks.tasks.begin_delete(self.spec.resource_group, self.spec.registry, name).result()


def docker_build_request(build: RemoteBuild) -> m.DockerBuildRequest:
    """The scheduleRun body for `build` (`.serialize()` is what goes on the wire)."""
    return m.DockerBuildRequest(
        image_names=list(build.image_names),
        is_push_enabled=build.push,
        docker_file_path=build.dockerfile,
        target=build.target,
        arguments=[m.Argument(name=k, value=v, is_secret=False) for k, v in build.arguments().items()],
        timeout=min(max(build.timeout, 300), 28800),  # the API's bounds
        platform=m.PlatformProperties(os=build.os, architecture=build.architecture, variant=build.variant),
        source_location=build.source_location,
    )


def read_log(log_url: str, offset: int) -> LogChunk:
    """The bytes of a run log past `offset` (nothing while the service has not created the blob yet)."""
    with _azure_errors("reading the run log"):
        blob = BlobClient.from_blob_url(log_url, retry_total=RETRY_TOTAL)
        try:
            properties = blob.get_blob_properties()
        except ResourceNotFoundError:
            return LogChunk(b"", False)
        complete = any(key.lower() == "complete" for key in (properties.metadata or {}))
        size = int(properties.size or 0)
        if size <= offset:
            return LogChunk(b"", complete)
        return LogChunk(blob.download_blob(offset=offset, length=size - offset).readall(), complete)


def _task_spec(task: m.Task) -> TaskSpec | None:
    step = task.step
    triggers = (task.trigger.source_triggers or []) if task.trigger else []
    if not isinstance(step, m.DockerBuildStep) or not triggers or triggers[0].source_repository is None:
        return None
    source = triggers[0].source_repository
    base = task.trigger.base_image_trigger if task.trigger else None
    return TaskSpec(
        name=str(task.name),
        repository_url=str(source.repository_url),
        branch=str(source.branch or ""),
        context_path=str(step.context_path or ""),
        dockerfile=str(step.docker_file_path or ""),
        image_names=tuple(step.image_names or ()),
        build_args={str(a.name): str(a.value or "") for a in step.arguments or []},
        target=step.target,
        os=str(task.platform.os if task.platform else "Linux"),
        architecture=str(task.platform.architecture if task.platform else "amd64"),
        tags=dict(task.tags or {}),
        timeout=int(task.timeout or 3600),
        source_control_type=str(source.source_control_type),
        base_image_trigger=str(base.base_image_trigger_type) if base is not None and base.status == "Enabled" else None,
    )
