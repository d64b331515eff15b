"""A local stand-in for the Azure endpoints the ACR backend calls, for tests (Azure is unreachable here).

- ARM, over https on loopback with a self-signed certificate (trust it with REQUESTS_CA_BUNDLE): exactly
  listBuildSourceUploadUrl, scheduleRun, runs get/listLogSasUrl/cancel, tasks list/get/put/delete/
  listDetails (API 2019-06-01-preview) and registries get (2025-04-01). Anything else answers 404 and
  is recorded in `unexpected`.
- Blob storage is a real Azurite: the build context is uploaded to a SAS URL there, and the run log is
  an append blob whose SAS URL the client reads while the run goes on.
- A run really builds: the local Docker engine builds the uploaded context, pushes to the local plain
  registry, and the digest in the run is the registry's. The log is the engine's output.
- The login server (http on loopback) fronts that registry the way ACR does: bearer challenges,
  /oauth2/exchange (AAD token -> refresh token) and /oauth2/token (refresh token -> access token).
  A run reads its own registry as ACR Tasks do: a build arg naming `<login server>/repo@digest` is
  given to the engine as the backend registry's `repo@digest`; so is such a reference in the uploaded
  Dockerfile (`dockerFilePath` of the upload: the run builds the Dockerfile it was sent).
- Windows runs are emulated (there is no Windows engine here): the engine builds a Linux stand-in
  (linux/amd64), then the pushed config is rewritten to say `os: windows`, the requested architecture
  (and variant) and `os.version` from the PIPELINE_OS_VERSION build arg; the new config and manifest go
  to the backend registry under the same tag, and the run reports the new manifest's digest. A later
  run whose build args or uploaded Dockerfile name such an image by digest (a dependant's base; also a
  test's own Windows-style image registered in `standins`) builds FROM the Linux original instead: the
  layers are the same, only the config differs. `write_windows_platform = False` leaves the stand-in's
  Linux config as it is (a run that pushes the wrong platform).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import itertools
import json
import re
import secrets
import socket
import ssl
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import httpx
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from tests.acr.azurite import AZURITE_ACCOUNT, AZURITE_KEY
from tests.certs import self_signed_certificate

TASKS_API = "2019-06-01-preview"
REGISTRY_API = "2025-04-01"
ACR_USERNAME = "00000000-0000-0000-0000-000000000000"
PROVIDER = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.ContainerRegistry/registries/(?P<registry>[^/]+)(?P<rest>/.*)?$"
)
OS_VERSION_ARG = "PIPELINE_OS_VERSION"  # how pipeline passes a Windows build's os_version (no field for it)
DIGEST_REFERENCE = re.compile(r"(?P<name>[^\s@'\"=]+)@(?P<digest>sha256:[0-9a-f]{64})")
MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


class _BuildClient(docker.APIClient):
    """docker-py's client, keeping the build's streaming response so a cancel can cut it."""

    build_response: Any = None

    def _stream_helper(self, response: Any, decode: bool = False) -> Any:
        self.build_response = response
        return super()._stream_helper(response, decode=decode)

    def cut(self) -> None:
        """Drop the build's connection: the engine stops a build whose client went away."""
        connection = getattr(getattr(self.build_response, "raw", None), "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        self.close()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class EmulatedRun:
    run_id: str
    request: dict[str, Any]
    log_blob: str
    status: str = "Queued"
    error: str | None = None
    output_images: list[dict[str, str]] = field(default_factory=list)
    create_time: str = field(default_factory=_now)
    start_time: str | None = None
    finish_time: str | None = None
    cancel_requested: bool = False
    docker_client: _BuildClient | None = None
    dockerfile_text: str = ""  # the Dockerfile the upload carried (dockerFilePath), as uploaded


class AcrEmulator:
    def __init__(
        self,
        workdir: Path,
        blob_endpoint: str,
        backend_registry: str,
        token: str = "emulator-aad-token",
        registry_name: str = "emuregistry",
        location: str = "westeurope",
    ) -> None:
        self.workdir = workdir
        self.token = token
        self.registry_name = registry_name
        self.location = location
        self.backend_registry = backend_registry
        self.blob_endpoint = blob_endpoint.rstrip("/")
        self.blobs = BlobServiceClient(
            self.blob_endpoint, credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
        )
        for container in ("source", "logs"):
            if not self.blobs.get_container_client(container).exists():
                self.blobs.create_container(container)
        self.runs: dict[str, EmulatedRun] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []  # (method, path) of every ARM call
        self.unexpected: list[tuple[str, str]] = []
        self.cancels: list[str] = []
        self.exchanges: list[str] = []  # services the AAD token was exchanged for
        self.standins: dict[str, str] = {}  # digest of a Windows run's image -> its Linux stand-in's
        self.write_windows_platform = True  # False: a Windows run pushes its stand-in's Linux config as it is
        self._refresh_tokens: set[str] = set()
        self._access_tokens: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.cert_file, key_file = self_signed_certificate(workdir, "acr-emulator", "emulator")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, key_file)
        self._arm = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self._arm_request))
        self._arm.socket = context.wrap_socket(self._arm.socket, server_side=True)
        self._login = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self._login_request))
        self.arm_endpoint = f"https://127.0.0.1:{self._arm.server_address[1]}"
        self.login_server = f"127.0.0.1:{self._login.server_address[1]}"
        self._threads = [
            threading.Thread(target=server.serve_forever, daemon=True) for server in (self._arm, self._login)
        ]

    def start(self) -> AcrEmulator:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in (self._arm, self._login):
            server.shutdown()
            server.server_close()

    def acr_settings(self, subscription: str = "sub-0001", resource_group: str = "rg-builds") -> dict[str, Any]:
        """The `acr:` block of pipelines.yaml that points at this emulator."""
        return {
            "registry": self.registry_name,
            "resource_group": resource_group,
            "subscription": subscription,
            "arm_endpoint": self.arm_endpoint,
            "login_server": self.login_server,
            "timeout": 600,
        }

    def client_environment(self) -> dict[str, str]:
        """What a `pipeline` process needs to reach this emulator."""
        return {"PIPELINE_AZURE_ACCESS_TOKEN": self.token, "REQUESTS_CA_BUNDLE": str(self.cert_file)}

    # --- ARM --------------------------------------------------------------------------------------

    def _arm_request(
        self, handler: BaseHTTPRequestHandler, method: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        url = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qs(url.query)
        with self._lock:
            self.calls.append((method, url.path))
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return _arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        match = PROVIDER.match(url.path)
        if match is None or match.group("registry") != self.registry_name:
            return self._unexpected(method, url.path)
        api = (query.get("api-version") or [""])[0]
        base = url.path.split("?")[0]
        rest = match.group("rest") or ""
        registry_id = base[: len(base) - len(rest)]
        if rest == "" and method == "GET":
            if api != REGISTRY_API:
                return _arm_error(400, "InvalidApiVersionParameter", f"api-version {api} is not emulated")
            return _json(200, self._registry_json(registry_id))
        if api != TASKS_API:
            return _arm_error(400, "InvalidApiVersionParameter", f"api-version {api} is not emulated")
        payload = json.loads(body) if body else {}
        if (method, rest) == ("POST", "/listBuildSourceUploadUrl"):
            return _json(200, self._upload_url())
        if (method, rest) == ("POST", "/scheduleRun"):
            return self._schedule(registry_id, payload)
        run_match = re.fullmatch(r"/runs/([^/]+)(/listLogSasUrl|/cancel)?", rest)
        if run_match:
            run = self.runs.get(run_match.group(1))
            if run is None:
                return _arm_error(404, "ResourceNotFound", f"run {run_match.group(1)} not found")
            action = run_match.group(2)
            if method == "GET" and action is None:
                return _json(200, self._run_json(registry_id, run))
            if method == "POST" and action == "/listLogSasUrl":
                return _json(200, {"logLink": self._sas("logs", run.log_blob, BlobSasPermissions(read=True))})
            if method == "POST" and action == "/cancel":
                self._cancel(run)
                return 200, {}, b""
        if rest == "/tasks" and method == "GET":
            with self._lock:
                return _json(200, {"value": list(self.tasks.values())})
        task_match = re.fullmatch(r"/tasks/([^/]+)(/listDetails)?", rest)
        if task_match:
            return self._task_request(method, registry_id, task_match.group(1), task_match.group(2), payload)
        return self._unexpected(method, url.path)

    def _unexpected(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.unexpected.append((method, path))
        return _arm_error(404, "NotEmulated", f"{method} {path} is not an emulated endpoint")

    def _registry_json(self, registry_id: str) -> dict[str, Any]:
        return {
            "id": registry_id,
            "name": self.registry_name,
            "type": "Microsoft.ContainerRegistry/registries",
            "location": self.location,
            "sku": {"name": "Standard", "tier": "Standard"},
            "properties": {"loginServer": self.login_server, "provisioningState": "Succeeded"},
        }

    def _sas(self, container: str, blob: str, permission: BlobSasPermissions) -> str:
        sas = generate_blob_sas(
            AZURITE_ACCOUNT,
            container,
            blob,
            account_key=AZURITE_KEY,
            permission=permission,
            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
        return f"{self.blob_endpoint}/{container}/{blob}?{sas}"

    def _upload_url(self) -> dict[str, str]:
        relative = f"source/{dt.datetime.now(dt.UTC):%Y%m%d%H}/{secrets.token_hex(8)}.tar.gz"
        blob = relative.split("/", 1)[1]
        return {
            "uploadUrl": self._sas("source", blob, BlobSasPermissions(create=True, write=True)),
            "relativePath": relative,
        }

    def _schedule(self, registry_id: str, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if request.get("type") != "DockerBuildRequest":
            return _arm_error(400, "NotEmulated", f"run request type {request.get('type')} is not emulated")
        for required in ("dockerFilePath", "platform", "sourceLocation"):
            if required not in request:
                return _arm_error(400, "InvalidRequest", f"{required} is required")
        with self._lock:
            run_id = f"cb{next(self._ids)}"
            run = EmulatedRun(run_id, request, f"{run_id}/rawtext.log")
            self.runs[run_id] = run
        self.blobs.get_blob_client("logs", run.log_blob).create_append_blob()
        threading.Thread(target=self._execute, args=(run,), daemon=True).start()
        return _json(200, self._run_json(registry_id, run))

    def _run_json(self, registry_id: str, run: EmulatedRun) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "runId": run.run_id,
            "status": run.status,
            "runType": "QuickBuild",
            "createTime": run.create_time,
            "lastUpdatedTime": _now(),
            "platform": run.request.get("platform"),
            "outputImages": run.output_images,
            "provisioningState": "Succeeded",
        }
        for key, value in (("startTime", run.start_time), ("finishTime", run.finish_time)):
            if value:
                properties[key] = value
        if run.error:
            properties["runErrorMessage"] = run.error
        return {
            "id": f"{registry_id}/runs/{run.run_id}",
            "name": run.run_id,
            "type": "Microsoft.ContainerRegistry/registries/runs",
            "properties": properties,
        }

    def _cancel(self, run: EmulatedRun) -> None:
        with self._lock:
            self.cancels.append(run.run_id)
            run.cancel_requested = True
            client = run.docker_client
        if client is not None:
            client.cut()

    def _task_request(
        self, method: str, registry_id: str, name: str, details: str | None, payload: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            existing = self.tasks.get(name)
            if method == "PUT":
                if "location" not in payload or "step" not in payload.get("properties", {}):
                    return _arm_error(400, "InvalidRequest", "location and properties.step are required")
                task = dict(payload)
                task.update(
                    id=f"{registry_id}/tasks/{name}", name=name, type="Microsoft.ContainerRegistry/registries/tasks"
                )
                task["properties"] = {
                    **payload["properties"],
                    "provisioningState": "Succeeded",
                    "creationDate": existing["properties"]["creationDate"] if existing else _now(),
                }
                self.tasks[name] = task
                return _json(201 if existing is None else 200, task)
        if existing is None:
            if method == "DELETE":
                return 204, {}, b""
            return _arm_error(404, "ResourceNotFound", f"task {name} not found")
        if method == "GET" and details is None or method == "POST" and details:
            return _json(200, existing)
        if method == "DELETE":
            with self._lock:
                del self.tasks[name]
            return 200, {}, b""
        return self._unexpected(method, name)

    # --- the run: a real build and push --------------------------------------------------------

    def _log(self, run: EmulatedRun, text: str) -> None:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S")
        lines = "".join(f"{stamp} {line}\n" if line else "\n" for line in text.splitlines())
        self.blobs.get_blob_client("logs", run.log_blob).append_block(lines.encode())

    def _finish(self, run: EmulatedRun, status: str, error: str | None = None) -> None:
        with self._lock:
            run.status, run.error, run.finish_time = status, error, _now()
        verdict = {"Succeeded": "successful", "Canceled": "canceled"}.get(status, "failed")
        self._log(run, f"Run ID: {run.run_id} was {verdict}")
        self.blobs.get_blob_client("logs", run.log_blob).set_blob_metadata({"Complete": verdict})

    def _execute(self, run: EmulatedRun) -> None:
        try:
            self._build_and_push(run)
        except Exception as exc:  # noqa: BLE001 - the run fails, the emulator goes on
            if run.cancel_requested:
                self._finish(run, "Canceled")
            else:
                self._log(run, f"failed: {type(exc).__name__}: {exc}")
                self._finish(run, "Failed", f"failed during run, err: {exc}")

    def _build_and_push(self, run: EmulatedRun) -> None:
        time.sleep(0.3)  # queued, as on Azure, for a moment
        request = run.request
        with self._lock:
            if run.cancel_requested:
                raise RuntimeError("canceled before start")
            run.status, run.start_time = "Running", _now()
            client = _BuildClient(timeout=600)
            run.docker_client = client
        self._log(run, "Downloading source code...")
        container, _, blob = str(request["sourceLocation"]).partition("/")
        source = self._engine_source(
            run, self.blobs.get_blob_client(container, blob).download_blob().readall(), request["dockerFilePath"]
        )
        self._log(
            run, f"Finished downloading source code\nSetting up Docker configuration...\nRegistry: {self.login_server}"
        )
        names = [self._backend_name(n) for n in request.get("imageNames") or []]
        platform = request["platform"]
        arguments = {a["name"]: a.get("value", "") for a in request.get("arguments") or []}
        windows = platform["os"].lower() == "windows"
        stream = client.build(
            fileobj=io.BytesIO(source),
            custom_context=True,
            encoding="gzip",
            dockerfile=request["dockerFilePath"],
            tag=names[0] if names else None,
            buildargs={name: self._engine_reference(value) for name, value in arguments.items()},
            target=request.get("target"),
            # A Windows run's stand-in: the Linux engine builds linux/amd64; its config is rewritten below.
            platform="linux/amd64" if windows else f"{platform['os'].lower()}/{platform.get('architecture', 'amd64')}",
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "stream" in chunk:
                text = str(chunk["stream"]).rstrip("\n")
                if text.strip():
                    self._log(run, text)
            if "error" in chunk:
                self._log(run, str(chunk["error"]).strip())
                self._finish(run, "Failed", "failed during run, err: exit status 1")
                return
        if run.cancel_requested:
            raise RuntimeError("canceled")
        images = []
        if request.get("isPushEnabled", True):
            for name in names:
                repository, _, tag = name.rpartition(":")
                digest = None
                self._log(run, f"Pushing image: {self._public_name(name)}, attempt 1")
                for chunk in client.push(repository, tag=tag, stream=True, decode=True):
                    if "error" in chunk:
                        raise RuntimeError(str(chunk["error"]))
                    aux = chunk.get("aux")
                    if isinstance(aux, dict) and "Digest" in aux:
                        digest = str(aux["Digest"])
                if digest is None:
                    raise RuntimeError(f"push of {name} reported no digest")
                path = repository.split("/", 1)[1]
                if windows and self.write_windows_platform:
                    digest = self._as_windows(run, path, tag, digest, platform, arguments.get(OS_VERSION_ARG))
                self._log(run, f"Successfully pushed image: {self._public_name(name)}")
                images.append({"registry": self.login_server, "repository": path, "tag": tag, "digest": digest})
        with self._lock:
            run.output_images = images
        client.close()
        self._finish(run, "Succeeded")

    def _engine_source(self, run: EmulatedRun, source: bytes, dockerfile: str) -> bytes:
        """The uploaded source as the engine gets it: the uploaded Dockerfile (the run builds exactly what
        was uploaded) with its `repo@digest` references read as build args are (_engine_reference)."""
        out = io.BytesIO()
        with (
            tarfile.open(fileobj=io.BytesIO(source), mode="r:gz") as tar,
            tarfile.open(fileobj=out, mode="w:gz") as new,
        ):
            for member in tar.getmembers():
                data = tar.extractfile(member) if member.isfile() else None
                if data is not None and member.name.lstrip("./") == dockerfile.lstrip("./"):
                    run.dockerfile_text = data.read().decode("utf-8", errors="replace")
                    text = self._engine_reference(run.dockerfile_text).encode()
                    member.size = len(text)
                    new.addfile(member, io.BytesIO(text))
                else:
                    new.addfile(member, data)
        return out.getvalue()

    def _engine_reference(self, value: str) -> str:
        """A build arg as the engine gets it: `repo@digest` on the login server read from the backend
        registry, and a Windows stand-in's digest replaced by its Linux original's."""

        def swap(match: re.Match[str]) -> str:
            name, digest = match["name"], match["digest"]
            if name.startswith(self.login_server + "/"):
                name = self.backend_registry + name[len(self.login_server) :]
            with self._lock:
                digest = self.standins.get(digest, digest)
            return f"{name}@{digest}"

        return DIGEST_REFERENCE.sub(swap, value)

    def _as_windows(
        self, run: EmulatedRun, path: str, tag: str, digest: str, platform: dict[str, Any], os_version: str | None
    ) -> str:
        """Rewrite the pushed stand-in's config to the Windows platform asked for; the new manifest's digest."""
        base = f"http://{self.backend_registry}/v2/{path}"
        with httpx.Client(timeout=120) as http:
            got = http.get(f"{base}/manifests/{digest}", headers={"Accept": MANIFEST_ACCEPT})
            got.raise_for_status()
            media_type = got.headers["Content-Type"]
            manifest = got.json()
            config_response = http.get(f"{base}/blobs/{manifest['config']['digest']}")
            config_response.raise_for_status()
            config = config_response.json()
            config.update(os="windows", architecture=platform.get("architecture") or "amd64")
            for key, value in (("variant", platform.get("variant")), ("os.version", os_version)):
                if value:
                    config[key] = value
                else:
                    config.pop(key, None)
            blob = json.dumps(config, separators=(",", ":")).encode()
            blob_digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            started = http.post(f"{base}/blobs/uploads/")
            started.raise_for_status()
            location = urllib.parse.urljoin(base, started.headers["Location"])
            separator = "&" if "?" in location else "?"
            http.put(
                f"{location}{separator}digest={blob_digest}",
                content=blob,
                headers={"Content-Type": "application/octet-stream"},
            ).raise_for_status()
            manifest["config"] = {**manifest["config"], "digest": blob_digest, "size": len(blob)}
            body = json.dumps(manifest, indent=3).encode()
            http.put(f"{base}/manifests/{tag}", content=body, headers={"Content-Type": media_type}).raise_for_status()
        windows_digest = "sha256:" + hashlib.sha256(body).hexdigest()
        with self._lock:
            self.standins[windows_digest] = digest
        said = f"windows/{config['architecture']}" + (f" os.version {os_version}" if os_version else "")
        self._log(run, f"Emulated Windows image: {said}, config of the Linux stand-in {digest} rewritten")
        return windows_digest

    def _backend_name(self, image_name: str) -> str:
        """ACR pushes `repo:tag` (or `<login server>/repo:tag`) into its own storage: the backend registry."""
        if image_name.startswith(self.login_server + "/"):
            image_name = image_name[len(self.login_server) + 1 :]
        return f"{self.backend_registry}/{image_name}"

    def _public_name(self, backend_name: str) -> str:
        return self.login_server + backend_name[len(self.backend_registry) :]

    # --- the login server: ACR's token endpoints in front of the backend registry -----------------

    def _login_request(
        self, handler: BaseHTTPRequestHandler, method: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        url = urllib.parse.urlsplit(handler.path)
        if url.path == "/oauth2/exchange" and method == "POST":
            form = urllib.parse.parse_qs(body.decode())
            if form.get("grant_type") != ["access_token"] or form.get("access_token") != [self.token]:
                return _json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid AAD token"}]})
            refresh = secrets.token_urlsafe(24)
            with self._lock:
                self._refresh_tokens.add(refresh)
                self.exchanges.append((form.get("service") or [""])[0])
            return _json(200, {"refresh_token": refresh})
        if url.path == "/oauth2/token":
            refresh = self._presented_refresh_token(handler, method, body)
            if refresh not in self._refresh_tokens:
                return _json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token"}]})
            access = secrets.token_urlsafe(24)
            with self._lock:
                self._access_tokens.add(access)
            return _json(200, {"access_token": access})
        if not url.path.startswith("/v2/"):
            return 404, {}, b""
        presented = handler.headers.get("Authorization", "")
        if not presented.startswith("Bearer ") or presented[7:] not in self._access_tokens:
            challenge = f'Bearer realm="http://{self.login_server}/oauth2/token",service="{self.login_server}"'
            error = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
            return 401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"}, json.dumps(error).encode()
        return self._forward(handler, method, body)

    def _presented_refresh_token(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> str:
        if method == "POST":
            form = urllib.parse.parse_qs(body.decode())
            return (form.get("refresh_token") or [""])[0]
        basic = handler.headers.get("Authorization", "")
        if not basic.startswith("Basic "):
            return ""
        user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
        return password if user == ACR_USERNAME else ""

    def _forward(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        skip = {"host", "authorization", "content-length", "transfer-encoding", "connection"}
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in skip}
        backend = f"http://{self.backend_registry}"
        response = httpx.request(method, backend + handler.path, headers=headers, content=body, timeout=120)
        out = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in {"content-length", "transfer-encoding", "connection", "content-encoding"}
        }
        if "location" in {k.lower() for k in out}:
            key = next(k for k in out if k.lower() == "location")
            out[key] = out[key].replace(backend, f"http://{self.login_server}")
        if method == "HEAD":
            out["Content-Length"] = response.headers.get("Content-Length", "0")
        return response.status_code, out, response.content


Route = Callable[[BaseHTTPRequestHandler, str, bytes], tuple[int, dict[str, str], bytes]]


def _handler(route: Route) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self._body()
            status, headers, content = route(self, self.command, body)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD" and content:
                self.wfile.write(content)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    return Handler


def _json(status: int, data: object) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


def _arm_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return _json(status, {"error": {"code": code, "message": message}})
