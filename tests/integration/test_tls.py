"""TLS against a real registry on loopback that speaks only HTTPS with a certificate from a test CA:
refused without the CA, used with `registries: {HOST: {ca_file}}` or `insecure_registries`."""

from __future__ import annotations

import json
import shutil
import ssl
from pathlib import Path

import httpx

from tests.certs import self_signed_certificate
from tests.helpers import BASE_DOCKERFILE, CliResult, run_cli, write_project
from tests.integration.conftest import ACCEPT, Services, TlsRegistry

PROJECT = """\
registry: {registry}/{namespace}
network: none
{extra}
pipelines:
  tls:
    images:
      app: {{context: images/app}}
"""


def project(root: Path, tls: TlsRegistry, namespace: str, extra: str = "") -> Path:
    return write_project(
        root,
        PROJECT.format(registry=tls.registry, namespace=namespace, extra=extra),
        {"app": BASE_DOCKERFILE},
        busybox=("app",),
    )


def with_ca(tls: TlsRegistry, ca_file: str) -> str:
    return f'registries:\n  "{tls.registry}": {{ca_file: {ca_file}}}'


def registry_digest(tls: TlsRegistry, repo_path: str, reference: str) -> str | None:
    """Read the registry directly (not through pipeline), trusting the test CA."""
    response = httpx.get(
        f"https://{tls.registry}/v2/{repo_path}/manifests/{reference}",
        headers={"Accept": ACCEPT},
        verify=ssl.create_default_context(cafile=tls.ca_file),
        timeout=30,
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def assert_refused(result: CliResult, tls: TlsRegistry) -> None:
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"error: registry {tls.registry}:")]
    assert len(lines) == 1, result.output
    line = lines[0]
    assert "TLS certificate verification failed (unable to get local issuer certificate)" in line
    assert f"registries: {{{tls.registry}: {{ca_file: ca.pem}}}}" in line and "insecure_registries" in line


def other_ca(path: Path) -> None:
    """A CA that did not sign the registry's certificate."""
    cert_file, _key_file = self_signed_certificate(path.parent, "some other CA", path.stem)
    cert_file.rename(path)


def test_run_is_refused_without_the_ca_and_pushes_with_it(
    tmp_path: Path, services: Services, tls_registry: TlsRegistry, namespace: str
) -> None:
    root = tmp_path / "project"
    project(root, tls_registry, namespace)

    refused = run_cli(["run", "--report", "report.json"], root)
    assert_refused(refused, tls_registry)
    assert "push" not in refused.stderr and "build " not in refused.stderr  # stopped before building
    assert registry_digest(tls_registry, f"{namespace}/app", "latest") is None

    (root / "certs").mkdir()
    shutil.copy(tls_registry.ca_file, root / "certs" / "ca.pem")
    project(root, tls_registry, namespace, with_ca(tls_registry, "certs/ca.pem"))
    done = run_cli(["run", "--report", "report.json"], root)
    assert done.code == 0, done.output
    image = json.loads((root / "report.json").read_text())["images"][0]
    # Outside git the push names the build (its input digest); `latest` moved after every image succeeded.
    assert image["status"] == "succeeded" and image["tags"][1:] == ["latest"]
    assert image["tags"][0].startswith("inputs-")
    assert registry_digest(tls_registry, f"{namespace}/app", "latest") == image["digest"]

    # A CA that did not sign the certificate: refused, naming the file.
    other_ca(root / "certs" / "other.pem")
    project(root, tls_registry, namespace, with_ca(tls_registry, "certs/other.pem"))
    wrong = run_cli(["run"], root)
    assert wrong.code == 1, wrong.output
    assert f"registry {tls_registry.registry}: TLS certificate verification failed" in wrong.output
    assert "other.pem" in wrong.output and "Traceback" not in wrong.output

    # A CA file that is not there is a configuration error.
    project(root, tls_registry, namespace, with_ca(tls_registry, "certs/missing.pem"))
    missing = run_cli(["run"], root)
    assert missing.code == 2, missing.output
    assert "pipelines.yaml:" in missing.stderr and "ca_file: CA file certs/missing.pem does not exist" in missing.stderr


def test_tags_is_refused_without_the_ca_and_lists_with_it_or_insecure(
    tmp_path: Path, services: Services, tls_registry: TlsRegistry, namespace: str
) -> None:
    root = tmp_path / "project"
    shutil.copy(tls_registry.ca_file, tmp_path / "ca.pem")
    project(root, tls_registry, namespace, with_ca(tls_registry, "../ca.pem"))
    pushed = run_cli(["run"], root)
    assert pushed.code == 0, pushed.output
    repository = f"{tls_registry.registry}/{namespace}/app"
    digest = registry_digest(tls_registry, f"{namespace}/app", "latest")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert_refused(run_cli(["tags", repository, "--json"], elsewhere), tls_registry)

    listed = run_cli(["tags", repository, "--json"], root)
    assert listed.code == 0, listed.output
    assert json.loads(listed.stdout)["other_tags"]["latest"] == digest

    # insecure_registries: TLS without verification (the only way to skip it).
    project(root, tls_registry, namespace, f'insecure_registries: ["{tls_registry.registry}"]')
    insecure = run_cli(["tags", repository, "--json"], root)
    assert insecure.code == 0, insecure.output
    assert json.loads(insecure.stdout)["other_tags"]["latest"] == digest


def test_plain_loopback_registries_still_work(tmp_path: Path, services: Services) -> None:
    listed = run_cli(["tags", f"{services.plain_registry}/no-such/repository", "--json"], tmp_path)
    assert listed.code == 0, listed.output
    assert json.loads(listed.stdout) == {
        "repository": f"{services.plain_registry}/no-such/repository",
        "versions": [],
        "other_tags": {},
        "hidden_tags": 0,
    }
