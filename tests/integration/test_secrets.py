"""Secrets put into runs appear nowhere: not in any command's output, report, `pipeline serve`'s state
(SQLite, run logs, reports) or its pages. Every secret the tool handles is used for real: the htpasswd
registry password (docker config), COSIGN_PASSWORD, an OIDC token, the webhook secret."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipeline.triggers.rules import ZERO_SHA
from pipeline.triggers.webhooks import signature_header
from tests.helpers import BASE_DOCKERFILE, CliResult, git, init_git, run_cli, write_project
from tests.integration.conftest import ACCEPT, Services
from tests.receiver import receiving

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

COSIGN_PASSWORD = "cosign-pass-SECRETSCAN-q81Zr"
WRONG_COSIGN_PASSWORD = "cosign-wrong-SECRETSCAN-7Hn2w"
WRONG_REGISTRY_PASSWORD = "registry-wrong-SECRETSCAN-Vb5nT"
WEBHOOK_SECRET = "webhook-secret-SECRETSCAN-M4x7k"
GIT_TOKEN = "git-token-SECRETSCAN-R2d8s"  # in the origin URL, as CI checkouts have it


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# Shaped like an OIDC JWT (so it is parsed as one) but with no usable claims: every command rejects it.
IDENTITY_TOKEN = ".".join(
    [
        _b64url(b'{"alg":"RS256","kid":"secretscan"}'),
        _b64url(b'{"iss":"https://oidc.invalid","aud":"sigstore","sub":"oidc-token-SECRETSCAN-Kp9vY"}'),
        _b64url(b"signature-SECRETSCAN-oidc-Kp9vY"),
    ]
)

PROJECT = """\
registry: {registry}/{namespace}
network: none
sign: {{key: cosign.key, attest: [provenance, sbom]}}
pipelines:
  shop:
    images:
      app: {{context: images/app}}
"""

KEYLESS = """\
registry: {registry}/{namespace}
network: none
sign: {{keyless: true}}
pipelines:
  shop:
    images:
      app: {{context: images/app}}
"""


def forms(value: str) -> set[str]:
    """A secret as it could leak: itself and its base64 forms (standard and URL-safe, with and without
    padding)."""
    raw = value.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {value} | encoded | {e.rstrip("=") for e in encoded}


class Scan:
    """Collects everything a user or an attacker could read, and says where a secret shows up."""

    def __init__(self, secrets: dict[str, set[str]]) -> None:
        self.secrets = {name: [f.encode() for f in found] for name, found in secrets.items()}
        self.scanned: list[str] = []
        self.leaks: list[str] = []

    def text(self, where: str, content: str | bytes) -> None:
        blob = content.encode() if isinstance(content, str) else content
        self.scanned.append(where)
        for name, variants in self.secrets.items():
            for variant in variants:
                if variant in blob:
                    at = blob.index(variant)
                    context = blob[max(0, at - 80) : at + len(variant) + 40].decode(errors="replace")
                    self.leaks.append(f"{where}: {name} ({variant.decode()!r}) in ...{context}...")

    def result(self, what: str, result: CliResult) -> None:
        self.text(f"{what}: stdout", result.stdout)
        self.text(f"{what}: stderr", result.stderr)

    def tree(self, root: Path, skip: tuple[Path, ...] = ()) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and not any(path.is_relative_to(s) for s in skip):
                self.text(str(path.relative_to(root.parent)), path.read_bytes())


def docker_config(path: Path, registry: str, user: str, password: str) -> Path:
    path.mkdir(parents=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (path / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    return path


class Serve:
    """`pipeline serve` on a free loopback port with a state dir of its own."""

    def __init__(self, cwd: Path, repo: Path, state: Path, env: dict[str, str]) -> None:
        self.stderr_path = cwd / "serve.stderr"
        self._stderr = self.stderr_path.open("w")
        argv = [sys.executable, "-m", "pipeline", "serve", "--repo", str(repo), "--port", "0"]
        argv += ["--state-dir", str(state), "--stop-timeout", "60"]
        self.proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=self._stderr, stderr=self._stderr)
        deadline = time.monotonic() + 30
        while not (found := re.search(r"listening on (http://\S+)", self.stderr_path.read_text())):
            assert self.proc.poll() is None, self.stderr_path.read_text()
            assert time.monotonic() < deadline, self.stderr_path.read_text()
            time.sleep(0.05)
        self.http = httpx.Client(base_url=found.group(1), timeout=30)

    def deliver(self, payload: dict[str, str], secret: str) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature_header(secret.encode(), body)}
        return self.http.post("/webhook", content=body, headers=headers)

    def wait_for(self, run_id: int, timeout: float = 300) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            run: dict[str, object] = self.http.get(f"/api/runs/{run_id}").json()
            if run["status"] in ("succeeded", "failed"):
                return run
            assert self.proc.poll() is None, self.stderr_path.read_text()
            assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
            time.sleep(0.2)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=90)
        self.http.close()
        self._stderr.close()
        return self.proc.returncode


def test_no_secret_appears_in_outputs_reports_logs_or_pages(tmp_path: Path, services: Services, namespace: str) -> None:
    canary = Scan({"canary": forms("canary-value")})
    canary.text("the scanner itself", b"a " + base64.b64encode(b"canary-value") + b" b")
    assert canary.leaks, "the scanner finds a base64-encoded secret"

    registry = services.auth_registry
    scan = Scan(
        {
            "registry password": forms(services.auth_password)
            | forms(f"{services.auth_user}:{services.auth_password}"),
            "wrong registry password": forms(WRONG_REGISTRY_PASSWORD)
            | forms(f"{services.auth_user}:{WRONG_REGISTRY_PASSWORD}"),
            "COSIGN_PASSWORD": forms(COSIGN_PASSWORD),
            "wrong COSIGN_PASSWORD": forms(WRONG_COSIGN_PASSWORD),
            "identity token": forms(IDENTITY_TOKEN) | {IDENTITY_TOKEN.split(".")[1], IDENTITY_TOKEN.split(".")[2]},
            "webhook secret": forms(WEBHOOK_SECRET),
            "git token": forms(GIT_TOKEN),
        }
    )
    work = tmp_path / "work"  # everything the runs write lives here and is scanned
    repo = work / "repo"
    write_project(
        repo, PROJECT.format(registry=registry, namespace=namespace), {"app": BASE_DOCKERFILE}, busybox=("app",)
    )
    (repo / "keyless.yaml").write_text(KEYLESS.format(registry=registry, namespace=namespace))
    secrets_dir = tmp_path / "secret-config"  # holds credentials on purpose: not scanned
    wrong_config = docker_config(secrets_dir / "wrong", registry, services.auth_user, WRONG_REGISTRY_PASSWORD)
    env = {
        "DOCKER_CONFIG": str(services.auth_docker_config),
        "COSIGN_PASSWORD": COSIGN_PASSWORD,
        "XDG_CACHE_HOME": str(work / "cache"),
        "XDG_RUNTIME_DIR": str(work / "runtime"),
    }
    (work / "runtime").mkdir(parents=True)

    def cli(what: str, args: list[str], expect: int, **extra: str) -> CliResult:
        result = run_cli(args, repo, env={**env, **extra})
        scan.result(what, result)
        assert result.code == expect, f"{what}: exit {result.code}\n{result.output}"
        return result

    cli("keys generate", ["keys", "generate"], 0)
    head = init_git(repo)
    git(repo, "remote", "add", "origin", f"https://x-access-token:{GIT_TOKEN}@git.invalid/shop.git")
    tag = f"sha-{head[:12]}"
    ref = f"{registry}/{namespace}/app:{tag}"

    # A run that pushes to the htpasswd registry and signs with the encrypted key.
    ran = cli("run", ["run", "--report", str(work / "run.json"), "--json"], 0)
    assert json.loads(ran.stdout)["images"][0]["status"] == "succeeded"
    cli("verify", ["verify", ref, "--key", "cosign.pub", "--json"], 0)
    # The attestations, decoded (a secret base64'd inside a DSSE payload would not show as itself).
    for kind in ("provenance", "sbom"):
        cli(f"verify --type {kind}", ["verify", ref, "--key", "cosign.pub", "--type", kind, "--json"], 0)
    cli("tree", ["tree", ref, "--json"], 0)
    cli("tags", ["tags", f"{registry}/{namespace}/app", "--json"], 0)
    cli("plan", ["plan", "--json"], 0)
    # What the run left in the registry: the manifest, the image config (labels) and the signature.
    auth = (services.auth_user, services.auth_password)
    digest = json.loads(ran.stdout)["images"][0]["digest"]
    for reference in (digest, *(f"sha256-{digest.removeprefix('sha256:')}.{kind}" for kind in ("sig", "att"))):
        manifest = httpx.get(
            f"http://{registry}/v2/{namespace}/app/manifests/{reference}", headers={"Accept": ACCEPT}, auth=auth
        )
        assert manifest.status_code == 200, manifest.text
        scan.text(f"registry: manifest {reference}", manifest.content)
        for blob in [manifest.json()["config"], *manifest.json()["layers"]]:
            if blob["size"] < 1 << 20:
                content = httpx.get(f"http://{registry}/v2/{namespace}/app/blobs/{blob['digest']}", auth=auth)
                scan.text(f"registry: blob {blob['digest']} of {reference}", content.content)

    # Wrong secrets: refused, and the refusals don't echo them either.
    wrong_key = cli(
        "sign, wrong passphrase", ["sign", ref, "--key", "cosign.key"], 1, COSIGN_PASSWORD=WRONG_COSIGN_PASSWORD
    )
    assert "error:" in wrong_key.stderr
    wrong_login = cli(
        "tags, wrong password", ["tags", f"{registry}/{namespace}/app"], 1, DOCKER_CONFIG=str(wrong_config)
    )
    assert "rejected the credentials" in wrong_login.stderr
    cli(
        "run, wrong password",
        ["run", "--no-cache", "--report", str(work / "wrong-password.json")],
        1,
        DOCKER_CONFIG=str(wrong_config),
    )
    # The OIDC token, given where keyless signing would use it; it is not a usable token.
    rejected = cli("sign --identity-token", ["sign", ref, "--identity-token", IDENTITY_TOKEN], 1)
    assert "identity token is not usable" in rejected.stderr
    cli(
        "run --identity-token",
        ["run", "-f", "keyless.yaml", "--identity-token", IDENTITY_TOKEN, "--report", str(work / "keyless.json")],
        1,
    )

    # pipeline serve, with the webhook secret: a wrongly signed and a correctly signed delivery.
    serve = Serve(work, repo, work / "state", {**env, "PIPELINE_WEBHOOK_SECRET": WEBHOOK_SECRET})
    try:
        push = {"ref": "refs/heads/main", "before": ZERO_SHA, "after": head, "id": "secretscan-1"}
        assert serve.deliver({**push, "id": "secretscan-0"}, "not-the-secret").status_code == 401
        accepted = serve.deliver(push, WEBHOOK_SECRET)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["run"]
        finished = serve.wait_for(run_id)
        assert finished["status"] == "succeeded", (work / "state" / "runs" / str(run_id) / "log.txt").read_text()
        for page in ("/", f"/runs/{run_id}", "/api/runs", f"/api/runs/{run_id}", "/healthz"):
            response = serve.http.get(page)
            assert response.status_code == 200, page
            scan.text(f"serve GET {page}", response.content)
    finally:
        assert serve.stop() == 0
    scan.text("serve: output", serve.stderr_path.read_bytes())

    # Every file the commands and the server left: reports, serve's SQLite db, run logs and reports,
    # caches and the git worktrees of the trigger runs (not the repository's config: the test put the
    # token there).
    scan.tree(work, skip=(repo / ".git" / "config",))
    scanned = "\n".join(scan.scanned)
    expected_scans = ("run.json", "state/serve.sqlite3", f"state/runs/{run_id}/log.txt", "serve GET /api/runs")
    for expected in (*expected_scans, "registry: blob"):
        assert expected in scanned, f"{expected} was not scanned"
    assert not scan.leaks, "secrets leaked:\n" + "\n".join(scan.leaks)


BUILD_TOKEN = "build-token-SECRETSCAN-Jq5e2"
# Two lines, as a key or credentials file has: `cat` prints them as two log lines.
SECRET_FILE_LINES = ("file-line-one-SECRETSCAN-Pw8c", "file-line-two-SECRETSCAN-Ty3m")
# A long secret (a key, a credentials blob): `base64` wraps its encoding over lines (76 columns; 64 asked).
LONG_SECRET = "long-secret-SECRETSCAN-" + "".join(chr(ord("A") + (i * 7) % 26) for i in range(72))
# A failing step that prints its build secrets, as themselves and base64-encoded, then fails.
PRINTS_SECRETS = (
    f"{BASE_DOCKERFILE}RUN --mount=type=secret,id=tok --mount=type=secret,id=creds --mount=type=secret,id=long "
    "cat /run/secrets/tok; echo; base64 /run/secrets/tok; cat /run/secrets/creds; "
    "base64 /run/secrets/long; base64 -w 64 /run/secrets/long; echo about to fail; exit 3\n"
)


def wrapped_lines(value: str) -> set[str]:
    """Each line of `value`'s base64 as `base64` prints it, at 76 and at 64 columns."""
    lines = set()
    for width in ("76", "64"):
        printed = subprocess.run(["base64", "-w", width], input=value.encode(), capture_output=True, check=True)
        lines |= set(printed.stdout.decode().splitlines())
    return lines


def test_a_failing_build_that_prints_its_build_secrets_leaks_them_into_no_report_summary_output_or_log(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    work = tmp_path / "work"  # everything the runs write lives here and is scanned
    repo = work / "repo"
    secret_file = tmp_path / "creds.txt"  # outside the scanned tree: it holds the secret on purpose
    secret_file.write_text("\n".join(SECRET_FILE_LINES) + "\n")
    long_file = tmp_path / "long.txt"
    long_file.write_text(LONG_SECRET)
    assert len(LONG_SECRET) == 95 and len(wrapped_lines(LONG_SECRET)) == 4  # 76 + 52 and 64 + 64 characters
    scan = Scan(
        {
            "build secret (env)": forms(BUILD_TOKEN),
            **{f"build secret (file, line {n})": forms(line) for n, line in enumerate(SECRET_FILE_LINES, 1)},
            "long build secret": forms(LONG_SECRET),
            "long build secret, a line of its wrapped base64": wrapped_lines(LONG_SECRET),
            "registry password": forms(services.auth_password)
            | forms(f"{services.auth_user}:{services.auth_password}"),
        }
    )
    with receiving() as receiver:
        write_project(
            repo,
            f"""\
            registry: {services.auth_registry}/{namespace}
            network: none
            notify: {{targets: [{{url: '{receiver.url}'}}]}}
            pipelines:
              shop:
                images:
                  app:
                    context: images/app
                    secrets: {{tok: {{env: BUILD_TOKEN}}, creds: {{file: {secret_file}}}, long: {{file: {long_file}}}}}
            """,
            {"app": PRINTS_SECRETS},
            busybox=("app",),
        )
        init_git(repo)
        summary, outputs = work / "summary.md", work / "outputs.txt"
        env = {
            "BUILD_TOKEN": BUILD_TOKEN,
            "DOCKER_CONFIG": str(services.auth_docker_config),
            "XDG_CACHE_HOME": str(work / "cache"),
            "XDG_STATE_HOME": str(work / "state"),
            "GITHUB_ACTIONS": "true",
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(outputs),
        }
        files = ["--report", str(work / "report.json"), "--junit", str(work / "junit.xml")]
        in_ci = run_cli(["run", *files, "--dotenv", str(work / "build.env")], repo, env)
        scan.result("run in GitHub Actions", in_ci)
        assert in_ci.code == 1, in_ci.output
        # Every output line of the steps, live, and the report on stdout.
        plain = run_cli(["run", "--progress", "plain", "--json"], repo, {**env, "GITHUB_ACTIONS": ""})
        scan.result("run --progress plain --json", plain)
        assert plain.code == 1, plain.output
    for request in receiver.requests:
        scan.text(f"notification to {request.path}", request.body)

    # The step ran and its output is where a user looks for it, redacted: the scan is not vacuous.
    junit = (work / "junit.xml").read_text()
    assert "about to fail" in junit and "***" in junit, junit
    assert "about to fail" in summary.read_text() and "***" in summary.read_text()
    assert json.loads(plain.stdout)["images"][0]["status"] == "failed"
    # Each printed secret line hidden where it was: the token, its base64, the file's two lines and the
    # long secret's base64 at 76 (two lines) and at 64 columns (two lines).
    tail = json.loads((work / "report.json").read_text())["images"][0]["log_tail"]
    assert tail[-9:] == ["***"] * 8 + ["about to fail"], tail
    assert "***" in plain.stderr and "about to fail" in plain.stderr
    assert len(receiver.requests) == 2
    scan.tree(work, skip=(repo / ".git",))
    scanned = "\n".join(scan.scanned)
    for expected in ("report.json", "junit.xml", "summary.md", "outputs.txt", "build.env", "notification"):
        assert expected in scanned, f"{expected} was not scanned"
    assert not scan.leaks, "secrets leaked:\n" + "\n".join(scan.leaks)
