"""Integration fixtures: the real Docker engine and the two loopback registries from scripts/services."""

from __future__ import annotations

import io
import json
import os
import ssl
import subprocess
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

SERVICES_ENV = Path(os.environ.get("PIPELINE_SERVICES_DIR", "/tmp/pipeline-services")) / "env"
ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass(frozen=True)
class Services:
    plain_registry: str
    auth_registry: str
    auth_docker_config: Path
    auth_user: str
    auth_password: str
    cosign: str
    skopeo: str
    sigstore_mock_node_path: str


def _read_env() -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}
    if SERVICES_ENV.exists():
        for line in SERVICES_ENV.read_text().splitlines():
            key, _, value = line.partition("=")
            values.setdefault(key, value)
    return values


def _unavailable(reason: str) -> None:
    message = f"{reason}; start them with 'bash scripts/services'"
    if os.environ.get("PIPELINE_REQUIRE_SERVICES") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def services() -> Services:
    env = _read_env()
    if "PIPELINE_PLAIN_REGISTRY" not in env:
        _unavailable(f"no services env at {SERVICES_ENV}")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        _unavailable("the Docker engine is not running")
    result = Services(
        plain_registry=env["PIPELINE_PLAIN_REGISTRY"],
        auth_registry=env["PIPELINE_AUTH_REGISTRY"],
        auth_docker_config=Path(env["PIPELINE_AUTH_DOCKER_CONFIG"]),
        auth_user=env["PIPELINE_AUTH_USER"],
        auth_password=env["PIPELINE_AUTH_PASSWORD"],
        cosign=env.get("PIPELINE_COSIGN", ""),
        skopeo=env.get("PIPELINE_SKOPEO", ""),
        sigstore_mock_node_path=env.get("PIPELINE_SIGSTORE_MOCK_NODE_PATH", ""),
    )
    for tool in (result.cosign, result.skopeo):
        if not tool or not Path(tool).exists():
            _unavailable(f"sigstore tool '{tool}' is missing")
    for registry in (result.plain_registry, result.auth_registry):
        try:
            httpx.get(f"http://{registry}/v2/", timeout=5)
        except httpx.HTTPError:
            _unavailable(f"registry {registry} is not answering")
    return result


# The engine matrix: a test file marked `pytestmark = pytest.mark.engines` (or one test marked so) runs
# once per engine, its ids showing which: `docker20` is the engine at DOCKER_HOST as given (the services'
# Docker 20.10, classic store), `docker26` the services' Docker 26 with the containerd image store
# ($PIPELINE_ENGINE_MODERN_HOST). The test's DOCKER_HOST is that engine's for the CLI it runs and for its
# own docker calls. Fixtures of a wider scope than the test are set up before it, on the default engine.
ENGINES = ("docker20", "docker26")
_modern_checked: dict[str, str] = {}  # the modern engine's host, or why it cannot be used: checked once


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("engines") is not None:
        metafunc.parametrize("docker_engine", ENGINES, indirect=True)


def _modern_engine() -> str:
    """The Docker 26 engine's DOCKER_HOST, answering and using the containerd image store."""
    if not _modern_checked:
        host = _read_env().get("PIPELINE_ENGINE_MODERN_HOST", "")
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_CONTEXT"} | {"DOCKER_HOST": host}
        if not host:
            _modern_checked["error"] = "no Docker 26 engine (PIPELINE_ENGINE_MODERN_HOST) in the services env"
        else:
            info = subprocess.run(
                ["docker", "info", "--format", "{{json .DriverStatus}}"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if info.returncode != 0:
                _modern_checked["error"] = f"the Docker 26 engine at {host} is not answering"
            elif "io.containerd.snapshotter.v1" not in info.stdout:
                _modern_checked["error"] = f"the Docker 26 engine at {host} does not use the containerd image store"
            else:
                _modern_checked["host"] = host
    if "error" in _modern_checked:
        _unavailable(_modern_checked["error"])
    return _modern_checked["host"]


@pytest.fixture(scope="session")
def modern_host(services: Services) -> str:
    """Docker 26 with the containerd store (PIPELINE_ENGINE_MODERN_HOST), answering: for a test of its own."""
    return _modern_engine()


@pytest.fixture(autouse=True)
def docker_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which engine of the matrix this test runs on (`docker20` for a test outside the matrix)."""
    name: str = getattr(request, "param", "docker20")
    if name == "docker26":
        monkeypatch.setenv("DOCKER_HOST", _modern_engine())
        monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    return name


@pytest.fixture(scope="session")
def engine2(services: Services) -> str:
    """The second Docker engine scripts/services starts (its DOCKER_HOST), answering."""
    host = _read_env().get("PIPELINE_ENGINE2_HOST", "")
    if not host:
        _unavailable("no second engine (PIPELINE_ENGINE2_HOST) in the services env")
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_CONTEXT"} | {"DOCKER_HOST": host}
    if subprocess.run(["docker", "info"], env=env, capture_output=True, check=False, timeout=120).returncode != 0:
        _unavailable(f"the second engine at {host} is not answering")
    return host


@pytest.fixture
def namespace() -> str:
    """A repository namespace no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


class RegistryPeek:
    """Reads a registry directly (not through pipeline's client) to check what a run left there."""

    def __init__(self, registry: str, auth: tuple[str, str] | None = None) -> None:
        self.base = f"http://{registry}/v2"
        self.auth = auth

    def manifest(self, repo_path: str, reference: str) -> tuple[str, dict[str, object]] | None:
        url = f"{self.base}/{repo_path}/manifests/{reference}"
        for _attempt in range(5):
            response = httpx.get(url, headers={"Accept": ACCEPT}, auth=self.auth, timeout=30)
            # Docker Distribution answers 500 to a tag read while that tag's link is being written (tests
            # peek while a run publishes): the peek, not the run under test, asks again.
            if response.status_code != 500:
                break
            time.sleep(0.2)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"], json.loads(response.content)

    def digest(self, repo_path: str, reference: str) -> str | None:
        found = self.manifest(repo_path, reference)
        return found[0] if found else None

    def index_children(self, repo_path: str, reference: str) -> dict[str, str]:
        """An OCI image index's children by platform as its descriptors give it: `linux/arm64`,
        `windows/amd64 10.0.17763` (os/architecture, then os.version where there is one)."""
        found = self.manifest(repo_path, reference)
        assert found is not None, f"{repo_path}@{reference}: not in the registry"
        index = found[1]
        assert index["mediaType"] == "application/vnd.oci.image.index.v1+json", index
        children = {}
        for descriptor in index["manifests"]:  # type: ignore[attr-defined]
            platform = descriptor["platform"]
            text = f"{platform['os']}/{platform['architecture']}"
            children[f"{text} {platform['os.version']}" if "os.version" in platform else text] = descriptor["digest"]
        return children

    def all_tags(self, repo_path: str) -> set[str]:
        response = httpx.get(f"{self.base}/{repo_path}/tags/list", auth=self.auth, timeout=30)
        if response.status_code == 404:
            return set()
        response.raise_for_status()
        return set(response.json().get("tags") or [])

    def tags(self, repo_path: str) -> set[str]:
        """The tags a user sees: without the input cache's `inputs-…` bookkeeping tags."""
        return {tag for tag in self.all_tags(repo_path) if not tag.startswith("inputs-")}

    def image_config(self, repo_path: str, reference: str) -> dict[str, Any]:
        """The image's config blob (labels, history) as the registry serves it."""
        found = self.manifest(repo_path, reference)
        assert found is not None, f"{repo_path}:{reference} not in registry"
        config = found[1]["config"]
        assert isinstance(config, dict)
        response = httpx.get(f"{self.base}/{repo_path}/blobs/{config['digest']}", auth=self.auth, timeout=30)
        response.raise_for_status()
        parsed: dict[str, Any] = json.loads(response.content)
        return parsed

    def layers(self, repo_path: str, reference: str) -> list[str]:
        found = self.manifest(repo_path, reference)
        assert found is not None, f"{repo_path}:{reference} not in registry"
        layers = found[1]["layers"]
        assert isinstance(layers, list)
        return [layer["digest"] for layer in layers]

    def blob(self, repo_path: str, digest: str) -> bytes:
        response = httpx.get(
            f"{self.base}/{repo_path}/blobs/{digest}", auth=self.auth, timeout=60, follow_redirects=True
        )
        response.raise_for_status()
        return response.content

    def blobs(self, repo_path: str, reference: str) -> dict[str, bytes]:
        """Every blob of a pushed image by digest (config and layers), with the manifest itself."""
        found = self.manifest(repo_path, reference)
        assert found is not None, f"{repo_path}:{reference} not in registry"
        digest, manifest = found
        config = manifest["config"]
        layers = manifest["layers"]
        assert isinstance(config, dict) and isinstance(layers, list)
        raw = json.dumps(manifest).encode()
        return {digest: raw} | {d["digest"]: self.blob(repo_path, d["digest"]) for d in [config, *layers]}

    def files(self, repo_path: str, reference: str) -> dict[str, bytes]:
        """The regular files of a pushed image's filesystem (upper layers win), by path without a leading /."""
        files: dict[str, bytes] = {}
        for digest in self.layers(repo_path, reference):
            with tarfile.open(fileobj=io.BytesIO(self.blob(repo_path, digest)), mode="r:*") as layer:
                for member in layer.getmembers():
                    extracted = layer.extractfile(member) if member.isfile() else None
                    if extracted is not None:
                        files[member.name.removeprefix("./")] = extracted.read()
        return files

    def config(self, repo_path: str, reference: str) -> dict[str, Any]:
        found = self.manifest(repo_path, reference)
        assert found is not None, f"{repo_path}:{reference} not in registry"
        descriptor = found[1]["config"]
        assert isinstance(descriptor, dict)
        loaded: dict[str, Any] = json.loads(self.blob(repo_path, descriptor["digest"]))
        return loaded


@pytest.fixture
def plain_peek(services: Services) -> RegistryPeek:
    return RegistryPeek(services.plain_registry)


@pytest.fixture
def auth_peek(services: Services) -> RegistryPeek:
    return RegistryPeek(services.auth_registry, (services.auth_user, services.auth_password))


@dataclass(frozen=True)
class TlsRegistry:
    """The registry on loopback that speaks only TLS, with a certificate from a test CA (scripts/services)."""

    registry: str
    ca_file: Path


@pytest.fixture(scope="session")
def tls_registry(services: Services) -> TlsRegistry:
    env = _read_env()
    if "PIPELINE_TLS_REGISTRY" not in env or "PIPELINE_TLS_CA" not in env:
        _unavailable(f"no TLS registry in {SERVICES_ENV}")
    found = TlsRegistry(env["PIPELINE_TLS_REGISTRY"], Path(env["PIPELINE_TLS_CA"]))
    if not found.ca_file.is_file():
        _unavailable(f"the TLS registry's CA {found.ca_file} is missing")
    try:
        httpx.get(f"https://{found.registry}/v2/", verify=ssl.create_default_context(cafile=found.ca_file), timeout=5)
    except httpx.HTTPError:
        _unavailable(f"registry {found.registry} is not answering over https with its CA")
    return found
