"""Build secrets (`secrets: {id: {env: VAR} | {file: PATH}}`, RUN --mount=type=secret): the build reads
the value, and the value is in nothing we leave behind: no layer, image config or history, output line
or report. A missing source stops the run before anything is built."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.helpers import image_entry, init_git, run_cli, shop_config, write_project
from tests.integration.conftest import RegistryPeek, Services

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

# Busybox on scratch, then a step that reads the secret and keeps only its hash and length. BuildKit's
# cache key for a step does not include a secret's value, so `{unique}` keeps an earlier run's layer
# (made with another value) from answering for this one.
DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
RUN --mount=type=secret,id={id} echo {unique} > /unique \\
    && sha256sum /run/secrets/{id} | cut -d' ' -f1 > /{id}.sha256 \\
    && wc -c < /run/secrets/{id} | tr -d ' ' > /{id}.length
"""


def secrets_project(root: Path, registry: str) -> Path:
    """Image `npm` reads secret npm_token from $PIPELINE_TEST_NPM_TOKEN, image `netrc` reads secret netrc
    from ../netrc-secret (outside the repository, as a user keeps such files)."""
    return write_project(
        root,
        shop_config(
            registry,
            {
                "npm": image_entry("npm", "secrets: {npm_token: {env: PIPELINE_TEST_NPM_TOKEN}}"),
                "netrc": image_entry("netrc", "secrets: {netrc: {file: ../netrc-secret}}"),
            },
        ),
        {
            "npm": DOCKERFILE.format(id="npm_token", unique=uuid.uuid4().hex),
            "netrc": DOCKERFILE.format(id="netrc", unique=uuid.uuid4().hex),
        },
        busybox=("npm", "netrc"),
    )


def spellings(value: str) -> list[bytes]:
    """The value as it could appear in bytes we keep: as is, and base64 (BuildKit's rawjson logs)."""
    raw = value.encode()
    return [raw, base64.b64encode(raw), base64.b64encode(b"\n" + raw), base64.b64encode(b" " + raw)]


def leaks(blob: bytes, value: str) -> bool:
    contents = [blob]
    if blob[:2] == b"\x1f\x8b":
        contents.append(gzip.decompress(blob))
    return any(s in content for s in spellings(value) for content in contents)


def test_secrets_are_used_by_the_build_and_left_nowhere(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    project = tmp_path / "repo"
    secrets_project(project, f"{services.plain_registry}/{namespace}")
    sha = init_git(project)
    npm_token = f"npm-{uuid.uuid4().hex}"
    netrc = f"machine example.com login ci password {uuid.uuid4().hex}\n"
    (tmp_path / "netrc-secret").write_text(netrc)

    result = run_cli(
        ["run", "--report", "report.json"], project, env={"PIPELINE_TEST_NPM_TOKEN": npm_token}, timeout=600
    )
    assert result.code == 0, result.output

    report = (project / "report.json").read_text()
    for name, secret_id, value in (("npm", "npm_token", npm_token), ("netrc", "netrc", netrc)):
        repo_path, tag = f"{namespace}/{name}", f"sha-{sha[:12]}"
        # The build really read the secret: its hash and length are in the pushed image.
        files = plain_peek.files(repo_path, tag)
        assert files[f"{secret_id}.sha256"].decode().strip() == hashlib.sha256(value.encode()).hexdigest()
        assert files[f"{secret_id}.length"].decode().strip() == str(len(value.encode()))
        blobs = plain_peek.blobs(repo_path, tag)
        assert len(blobs) >= 5  # manifest, config, 3 layers
        for digest, blob in blobs.items():
            assert not leaks(blob, value), f"{name}: the secret is in blob {digest}"
        history = json.dumps(plain_peek.config(repo_path, tag).get("history"))
        assert secret_id in history  # the step is recorded, by id only
        secret_line = value.strip()
        for where, text in (("stdout", result.stdout), ("stderr", result.stderr), ("report", report)):
            assert not leaks(text.encode(), secret_line), f"the secret {secret_id} is in the {where}"
        # The engine's own copy (which `docker history`/`inspect` show) has it nowhere either.
        local = subprocess.run(
            ["docker", "image", "inspect", f"{services.plain_registry}/{repo_path}:{tag}"],
            capture_output=True,
            check=True,
        ).stdout
        history_local = subprocess.run(
            ["docker", "history", "--no-trunc", f"{services.plain_registry}/{repo_path}:{tag}"],
            capture_output=True,
            check=True,
        ).stdout
        assert not leaks(local + history_local, secret_line)


def test_a_missing_secret_source_stops_the_run_before_anything_is_built(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "repo"
    secrets_project(project, f"{services.plain_registry}/{namespace}")
    init_git(project)
    monkeypatch.delenv("PIPELINE_TEST_NPM_TOKEN", raising=False)
    (tmp_path / "netrc-secret").write_text("machine example.com\n")

    missing_variable = run_cli(["run"], project)
    (tmp_path / "netrc-secret").unlink()
    missing_file = run_cli(["run"], project, env={"PIPELINE_TEST_NPM_TOKEN": "x"})

    assert missing_variable.code == 2, missing_variable.output
    assert missing_variable.stderr.strip().splitlines() == [
        "error: shop/npm: build secret 'npm_token': environment variable PIPELINE_TEST_NPM_TOKEN is not set"
    ], missing_variable.output
    assert missing_file.code == 2, missing_file.output
    assert missing_file.stderr.strip().splitlines() == [
        f"error: shop/netrc: build secret 'netrc': cannot read the file {tmp_path / 'netrc-secret'}"
    ], missing_file.output
    for name in ("npm", "netrc"):
        assert plain_peek.all_tags(f"{namespace}/{name}") == set(), f"{name} was pushed"
        local = subprocess.run(
            ["docker", "image", "ls", "-q", f"{services.plain_registry}/{namespace}/{name}"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert local.stdout.strip() == "", f"{name} was built"
