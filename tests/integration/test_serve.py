"""`pipeline serve` as a real process: webhooks over HTTP, the SQLite queue, runs, the status page in
a headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.pictures import STATUS_COLOURS
from pipeline.triggers.rules import ZERO_SHA
from pipeline.triggers.webhooks import signature_header
from tests.dom import Dom
from tests.helpers import BASE_DOCKERFILE, app_project, git, init_git, shop_project, write_project
from tests.integration.conftest import RegistryPeek, Services

SECRET = "serve-test-webhook-secret-9c1e"
REGISTRY_PASSWORD = "serve-test-registry-password-41d"
# Headless Chromium's screenshots of serve's pages: CI keeps this directory as artefacts (.ci/run names it).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
WINDOW = (1280, 900)
# A blank 1280x900 page is a 5 KB PNG, one line of text 7 KB; a page with tables and a drawn DAG is far more.
MIN_SCREENSHOT_BYTES = 25_000

# Stands in for `pipeline trigger` where a test needs to control timing: it appends its arguments to
# calls.jsonl, prints two secrets (which must reach the log as ***), waits while `hold` exists, then
# writes a report like `pipeline run --report` and fails for refs/heads/broken.
FAKE_TRIGGER = """\
import json, os, sys, time
from pathlib import Path
here = Path(__file__).parent
args = sys.argv[1:]
opt = {args[i]: args[i + 1] for i in range(0, len(args) - 1, 2)}
with open(here / "calls.jsonl", "a") as calls:
    calls.write(json.dumps(opt) + "\\n")
print("fake trigger", opt["--ref"], opt["--before"][:12], opt["--after"][:12])
print("registry password:", os.environ.get("SERVE_TEST_REGISTRY_PASSWORD"))
print("webhook secret:", os.environ.get("FAKE_ECHO"), os.environ.get("PIPELINE_WEBHOOK_SECRET"))
while (here / "hold").exists():
    time.sleep(0.05)
ok = opt["--ref"] != "refs/heads/broken"
image = {
    "image": "shop/app", "pipeline": "shop", "name": "app", "repository": "127.0.0.1:5000/fake/app",
    "reference": "127.0.0.1:5000/fake/app@sha256:" + "ab" * 32, "digest": "sha256:" + "ab" * 32,
    "image_id": None, "tags": ["sha-" + opt["--after"][:12]], "status": "succeeded" if ok else "failed",
    "duration_seconds": 0.1, "started_at": None, "finished_at": None, "error": None if ok else "boom",
}
report = {"ok": ok, "duration_seconds": 0.1, "version": None, "git_sha": opt["--after"], "published": ok,
          "error": None, "tag_changes": [], "images": [image]}
Path(opt["--report"]).write_text(json.dumps(report))
sys.exit(0 if ok else 1)
"""


class Serve:
    """A `pipeline serve` subprocess on a free loopback port."""

    def __init__(self, tmp_path: Path, repo: Path, extra: list[str], env: dict[str, str]) -> None:
        self.state = tmp_path / "state"
        self.stderr_path = tmp_path / "serve.stderr"
        self._stderr = self.stderr_path.open("w")
        argv = [sys.executable, "-m", "pipeline", "serve", "--repo", str(repo), "--port", "0"]
        argv += ["--state-dir", str(self.state), "--stop-timeout", "30", *extra]
        self.proc = subprocess.Popen(
            argv, cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=self._stderr
        )
        deadline = time.monotonic() + 30
        while not (found := re.search(r"listening on (http://\S+)", self.stderr)):
            assert self.proc.poll() is None, f"serve exited {self.proc.returncode}:\n{self.stderr}"
            assert time.monotonic() < deadline, f"serve did not start:\n{self.stderr}"
            time.sleep(0.05)
        self.url = found.group(1)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def deliver(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.http.post("/webhook", content=body, headers={"Content-Type": "application/json", **headers})

    def github_push(self, ref: str, before: str, after: str, delivery: str | None = None) -> httpx.Response:
        body = json.dumps({"ref": ref, "before": before, "after": after, "repository": {"full_name": "t/shop"}})
        return self.deliver(
            body.encode(),
            {
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
                "X-Hub-Signature-256": signature_header(SECRET.encode(), body.encode()),
            },
        )

    def run(self, run_id: int) -> dict[str, Any]:
        response = self.http.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def runs(self) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.http.get("/api/runs").json()["runs"]
        return runs

    def wait_for(self, run_id: int, statuses: set[str], timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (run := self.run(run_id))["status"] not in statuses:
            assert self.proc.poll() is None, f"serve exited:\n{self.stderr}"
            assert time.monotonic() < deadline, f"run {run_id} still {run['status']}:\n{self.log(run_id)}"
            time.sleep(0.1)
        return run

    def wait_for_stderr(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            assert time.monotonic() < deadline, f"serve did not say {text!r}:\n{self.stderr}"
            time.sleep(0.05)

    def log(self, run_id: int) -> str:
        log_file = self.state / "runs" / str(run_id) / "log.txt"
        return log_file.read_text() if log_file.exists() else "(no log)"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()
        self._stderr.close()
        return self.proc.returncode


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Serve] = []

    def start(repo: Path, extra: list[str] | None = None, env: dict[str, str] | None = None) -> Serve:
        server = Serve(tmp_path, repo, extra or [], {"PIPELINE_WEBHOOK_SECRET": SECRET, **(env or {})})
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def sha(n: int) -> str:
    return f"{n:040x}"


def test_serve_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_WEBHOOK_SECRET"}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "serve", "--repo", str(tmp_path), "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "PIPELINE_WEBHOOK_SECRET is not set" in done.stderr and "--insecure-no-secret" in done.stderr


def test_authentication_dedup_coalescing_and_secrets_in_logs(tmp_path: Path, serve_factory: Any) -> None:
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    (fake_dir / "trigger.py").write_text(FAKE_TRIGGER)
    env = {"SERVE_TEST_REGISTRY_PASSWORD": REGISTRY_PASSWORD, "FAKE_ECHO": SECRET}
    server = serve_factory(tmp_path, ["--command", f"{sys.executable} {fake_dir / 'trigger.py'}"], env)

    assert server.http.get("/healthz").json() == {"ok": True, "queued": 0, "running": 0}

    # Unsigned, wrongly signed, a wrong GitLab token: 401, nothing queued.
    body = json.dumps({"ref": "refs/heads/main", "before": sha(1), "after": sha(2), "id": "x1"}).encode()
    assert server.deliver(body, {}).status_code == 401
    wrong = signature_header(b"not the secret", body)
    assert server.deliver(body, {"X-Hub-Signature-256": wrong}).status_code == 401
    tampered = body.replace(sha(2).encode(), sha(3).encode())
    good = signature_header(SECRET.encode(), body)
    assert server.deliver(tampered, {"X-Hub-Signature-256": good}).status_code == 401
    gitlab = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "g1", "X-Gitlab-Token": "nope"}
    assert server.deliver(body, gitlab).status_code == 401
    assert server.runs() == []

    # A signed push queues a run; its redelivery is a duplicate.
    (fake_dir / "hold").touch()
    first = server.github_push("refs/heads/main", sha(1), sha(2), delivery="delivery-1")
    assert first.status_code == 202, first.text
    run_id = first.json()["run"]
    assert first.json() == {"status": "queued", "run": run_id}
    again = server.github_push("refs/heads/main", sha(1), sha(2), delivery="delivery-1")
    assert (again.status_code, again.json()) == (200, {"status": "duplicate", "run": run_id})
    server.wait_for(run_id, {"running"})

    # While it runs, a burst of 5 pushes to main (generic JSON form) coalesces into one more run.
    burst = []
    for n in range(2, 7):
        pushed = json.dumps({"ref": "refs/heads/main", "before": sha(n), "after": sha(n + 1), "id": f"burst-{n}"})
        response = server.deliver(
            pushed.encode(), {"X-Hub-Signature-256": signature_header(SECRET.encode(), pushed.encode())}
        )
        assert response.status_code == 202, response.text
        burst.append(response.json()["run"])
    assert server.http.get("/healthz").json() == {"ok": True, "queued": 5, "running": 1}
    # A branch deletion is acknowledged and ignored.
    deleted = server.github_push("refs/heads/main", sha(7), ZERO_SHA)
    assert (deleted.status_code, deleted.json()["status"]) == (200, "ignored")
    # The page refreshes itself while something is queued or running.
    assert 'http-equiv="refresh"' in server.http.get("/").text

    (fake_dir / "hold").unlink()
    assert server.wait_for(run_id, {"succeeded", "failed"})["status"] == "succeeded"
    newest = server.wait_for(burst[-1], {"succeeded", "failed"})
    assert newest["status"] == "succeeded"
    assert (newest["before"], newest["after"], newest["coalesced"]) == (sha(2), sha(7), 4)
    for older in burst[:-1]:
        run = server.run(older)
        assert (run["status"], run["superseded_by"]) == ("superseded", burst[-1])
    calls = [json.loads(line) for line in (fake_dir / "calls.jsonl").read_text().splitlines()]
    assert [(c["--before"], c["--after"]) for c in calls] == [(sha(1), sha(2)), (sha(2), sha(7))]
    assert calls[1]["--report"] == str(server.state / "runs" / str(burst[-1]) / "report.json")
    assert newest["report"]["images"][0]["tags"] == [f"sha-{sha(7)[:12]}"]

    # A failing run (GitLab form) is recorded as failed with its exit code.
    broken = json.dumps({"ref": "refs/heads/broken", "before": sha(8), "after": sha(9)}).encode()
    gitlab["X-Gitlab-Token"] = SECRET
    queued = server.deliver(broken, gitlab)
    assert queued.status_code == 202, queued.text
    failed = server.wait_for(queued.json()["run"], {"succeeded", "failed"})
    assert (failed["status"], failed["exit_code"], failed["source"]) == ("failed", 1, "gitlab")

    # Secrets never reach the stored or served log; the webhook secret is not even in the run's env.
    page = server.http.get(f"/runs/{run_id}").text
    for text in (server.log(run_id), page):
        assert "fake trigger refs/heads/main" in text
        assert REGISTRY_PASSWORD not in text and SECRET not in text
        assert "registry password: ***" in text and "webhook secret: *** None" in text
    assert 'http-equiv="refresh"' not in server.http.get("/").text
    assert server.http.get("/healthz").json() == {"ok": True, "queued": 0, "running": 0}
    assert server.http.get("/api/runs/999").status_code == 404

    assert server.stop() == 0
    assert "stopped" in server.stderr


def test_sigterm_lets_the_current_run_finish(tmp_path: Path, serve_factory: Any) -> None:
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    (fake_dir / "trigger.py").write_text(FAKE_TRIGGER)
    server = serve_factory(tmp_path, ["--command", f"{sys.executable} {fake_dir / 'trigger.py'}"])
    (fake_dir / "hold").touch()
    run_id = server.github_push("refs/heads/main", sha(1), sha(2)).json()["run"]
    server.wait_for(run_id, {"running"})
    server.proc.send_signal(signal.SIGTERM)
    server.wait_for_stderr("stopping: no new deliveries; waiting for the current run")
    assert server.proc.poll() is None  # still waiting for the run
    (fake_dir / "hold").unlink()
    assert server.proc.wait(timeout=30) == 0
    # The API is gone with the server; the history is in the state database.
    with closing(sqlite3.connect(server.state / "serve.sqlite3")) as db:
        assert db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone() == ("succeeded",)


def chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    message = "chromium is not installed; run 'bash scripts/services'"
    if os.environ.get("PIPELINE_REQUIRE_SERVICES") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


def screenshot(browser: str, profile: Path, url: str, name: str) -> Path:
    """`url` as a 1280x900 PNG under artifacts/screenshots/, checked to be a real, non-blank picture of
    that size (its header read by hand: no imaging library is needed for that)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / name
    shot.unlink(missing_ok=True)
    taken = headless(browser, profile, f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", url)
    assert taken.returncode == 0, taken.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", name
    assert struct.unpack(">II", data[16:24]) == WINDOW, name
    assert len(data) > MIN_SCREENSHOT_BYTES, (name, len(data))
    return shot


def _serve_first_push(tmp_path: Path, clone: Path, remote: Path, serve_factory: Any) -> tuple[Any, str, dict[str, Any]]:
    """Commit `clone`, push it to `remote`, serve `remote` and send the push that creates main: the server,
    the commit and that first run, finished."""
    first = init_git(clone)
    git(clone, "remote", "add", "origin", str(remote))
    git(clone, "push", "-q", "origin", "main")
    server = serve_factory(remote, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    created = server.github_push("refs/heads/main", ZERO_SHA, first)
    assert created.status_code == 202, created.text
    return server, first, server.wait_for(created.json()["run"], {"succeeded", "failed"})


def test_signed_pushes_build_and_push_and_the_status_page_shows_them(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, serve_factory: Any
) -> None:
    browser = chromium()
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    clone = tmp_path / "clone"
    shop_project(
        clone,
        f"{services.plain_registry}/{namespace}",
        sign=False,
        images=("base", "app"),
        triggers='[{branch: "main"}]',
    )
    (clone / "images/app/app.sh").write_text("echo app\n")
    server, first, run = _serve_first_push(tmp_path, clone, remote, serve_factory)  # everything is built
    assert run["status"] == "succeeded", server.log(run["id"])
    images = {image["name"]: image for image in run["report"]["images"]}
    assert set(images) == {"base", "app"}
    for name, image in images.items():
        assert image["status"] == "succeeded"
        assert f"sha-{first[:12]}" in image["tags"]
        assert plain_peek.digest(f"{namespace}/{name}", f"sha-{first[:12]}") == image["digest"]

    # Only the app changes: only the app is rebuilt, by a second signed push.
    (clone / "images/app/app.sh").write_text("echo app v2\n")
    git(clone, "commit", "-qam", "app v2")
    second = git(clone, "rev-parse", "HEAD")
    git(clone, "push", "-q", "origin", "main")
    pushed = server.github_push("refs/heads/main", first, second)
    assert pushed.status_code == 202, pushed.text
    run2 = server.wait_for(pushed.json()["run"], {"succeeded", "failed"})
    assert run2["status"] == "succeeded", server.log(run2["id"])
    built = {image["name"]: image for image in run2["report"]["images"] if image["status"] == "succeeded"}
    assert "app" in built and "base" not in built
    assert plain_peek.digest(f"{namespace}/app", f"sha-{second[:12]}") == built["app"]["digest"]

    # The status page, in a real browser.
    profile = tmp_path / "chromium-profile"
    dom = headless(browser, profile, "--dump-dom", f"{server.url}/")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for commit in (first, second):
        assert commit[:12] in dom.stdout
    assert "succeeded" in dom.stdout and built["app"]["digest"][:19] in dom.stdout
    assert f'href="/runs/{run2["id"]}"' in dom.stdout
    detail = headless(browser, profile, "--dump-dom", f"{server.url}/runs/{run2['id']}")
    assert detail.returncode == 0, detail.stderr[-2000:]
    assert second in detail.stdout and "succeeded" in detail.stdout and "exit code 0" in detail.stdout

    screenshot(browser, profile, f"{server.url}/", "status-page.png")
    screenshot(browser, profile, f"{server.url}/runs/{run2['id']}", "status-run.png")
    assert "shop/app" in server.log(run2["id"])
    assert server.stop() == 0


BROKEN_PROJECT = """\
registry: {registry}
network: none
pipelines:
  shop:
    triggers: [{{branch: "main", tags: ["latest-main"]}}]
    images:
      base: {{context: images/base}}
      app: {{context: images/app, build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}}}
      broken: {{context: images/broken, build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}}}
      after: {{context: images/after, build_args: {{BROKEN_IMAGE: "{{{{ images.broken }}}}"}}}}
"""
BROKEN_STEP = "RUN echo breaking on purpose; exit 3"


def dom_of(browser: str, profile: Path, url: str) -> Dom:
    dumped = headless(browser, profile, "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    return Dom(dumped.stdout)


def test_status_pages_draw_each_runs_dag_by_status_with_logs_and_tag_changes_in_chromium(
    tmp_path: Path, services: Services, namespace: str, serve_factory: Any
) -> None:
    browser = chromium()
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    clone = tmp_path / "clone"
    from_base = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
    write_project(
        clone,
        BROKEN_PROJECT.format(registry=f"{services.plain_registry}/{namespace}"),
        {
            "base": BASE_DOCKERFILE,
            "app": from_base + "RUN echo app > /app\n",
            "broken": from_base + BROKEN_STEP + "\n",
            "after": "ARG BROKEN_IMAGE\nFROM ${BROKEN_IMAGE}\nRUN echo after > /after\n",
        },
        busybox=("base",),
    )
    # Run 1: base builds, broken fails, after (built on broken) is skipped.
    server, first, failed = _serve_first_push(tmp_path, clone, remote, serve_factory)
    assert failed["status"] == "failed", server.log(failed["id"])
    # As the page names them: a succeeded image taken from the registry is "reused".
    statuses = {i["image"]: "reused" if i["reused"] else i["status"] for i in failed["report"]["images"]}
    assert {k: statuses[k] for k in ("shop/base", "shop/broken", "shop/after")} == {
        "shop/base": "succeeded",
        "shop/broken": "failed",
        "shop/after": "skipped",
    }, server.log(failed["id"])

    # Run 2: broken is mended; it and after build, and the branch's tag moves onto them.
    (clone / "images/broken/Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo mended > /m\n")
    git(clone, "commit", "-qam", "mend broken")
    second = git(clone, "rev-parse", "HEAD")
    git(clone, "push", "-q", "origin", "main")
    pushed = server.github_push("refs/heads/main", first, second)
    mended = server.wait_for(pushed.json()["run"], {"succeeded", "failed"})
    assert mended["status"] == "succeeded", server.log(mended["id"])
    changes = mended["report"]["tag_changes"]
    assert {(c["image"], c["tag"]) for c in changes} >= {("shop/broken", "latest-main"), ("shop/after", "latest-main")}

    profile = tmp_path / "chromium-profile"
    # The failed run's page: every image a box coloured by its status, linked to its page.
    dom = dom_of(browser, profile, f"{server.url}/runs/{failed['id']}")
    nodes = dom.find("g", **{"class": "node"})
    assert {a["data-image"]: a["data-status"] for a, _ in nodes} == statuses
    fills = {a["data-image"]: r["fill"] for (a, _), (r, _) in zip(nodes, dom.find("rect"), strict=True)}
    assert fills == {key: STATUS_COLOURS[status][0] for key, status in statuses.items()}
    edges = {(a["data-from"], a["data-to"]) for a, _ in dom.find("path", **{"class": "edge"})}
    assert edges == {("shop/base", "shop/app"), ("shop/base", "shop/broken"), ("shop/broken", "shop/after")}
    links = {a["href"] for a, _ in dom.find("a") if "/images/" in a.get("href", "")}
    assert links == {f"/runs/{failed['id']}/images/{key}" for key in statuses}
    assert "No tag changes." in "".join(text for _, text in dom.find("p"))  # a failed run moves no tag

    # Following the failed image's link: its own lines of the log, with the failing step.
    broken = dom_of(browser, profile, f"{server.url}/runs/{failed['id']}/images/shop/broken")
    (log,) = broken.find("pre", id="log")
    assert "shop/broken" in log[1] and "failed" in log[1] and "shop/app " not in log[1]
    assert any(BROKEN_STEP.split(";")[0] in text for _, text in broken.find("td")), broken.find("td")

    # The mended run's page: the tag-change table row for row as the report has them.
    dom = dom_of(browser, profile, f"{server.url}/runs/{mended['id']}")
    (table,) = dom.find("table", **{"class": "tag-changes"})
    cells = [text for _, text in dom.find("td")][-6 * len(changes) :]
    rows = [cells[i : i + 6] for i in range(0, len(cells), 6)]
    short = lambda d: f"{d.partition(':')[0]}:{d.partition(':')[2][:12]}" if d else "-"  # noqa: E731
    assert rows == [
        [c["image"], c["tag"], c["action"], short(c["digest"]), short(c["previous"]), c["reason"]] for c in changes
    ]
    assert {a["data-status"] for a, _ in dom.find("g", **{"class": "node"})} == {"succeeded"}

    # On the index page each run has its drawing; screenshots for people (and CI artefacts).
    index = dom_of(browser, profile, f"{server.url}/")
    drawn = [a["id"] for a, _ in index.find("div", **{"class": "dag-wrap"})]
    assert drawn == [f"dag-{mended['id']}", f"dag-{failed['id']}"]
    screenshot(browser, profile, f"{server.url}/", "serve-index.png")
    screenshot(browser, profile, f"{server.url}/runs/{failed['id']}", "serve-run-failed.png")
    screenshot(browser, profile, f"{server.url}/runs/{mended['id']}", "serve-run-tag-changes.png")
    screenshot(browser, profile, f"{server.url}/runs/{failed['id']}/images/shop/broken", "serve-image-log.png")
    assert server.stop() == 0


def test_sigterm_terminates_a_run_that_outlasts_the_stop_timeout(tmp_path: Path, serve_factory: Any) -> None:
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    (fake_dir / "trigger.py").write_text(FAKE_TRIGGER)
    command = f"{sys.executable} {fake_dir / 'trigger.py'}"
    server = serve_factory(tmp_path, ["--command", command, "--stop-timeout", "1"])
    (fake_dir / "hold").touch()
    run_id = server.github_push("refs/heads/main", sha(1), sha(2)).json()["run"]
    queued = server.github_push("refs/heads/dev", sha(3), sha(4)).json()["run"]
    server.wait_for(run_id, {"running"})
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0
    with closing(sqlite3.connect(server.state / "serve.sqlite3")) as db:
        rows = dict(db.execute("SELECT id, status FROM runs").fetchall())
    # Both run after a restart: the stopped one is queued again, as after a crash, not failed.
    assert rows == {run_id: "queued", queued: "queued"}
    assert "terminated: the server stopped" in server.log(run_id)
    assert "stopped with the server; queued again for its next start" in server.log(run_id)
    assert f"run {run_id} stopped with the server (exit -15): queued again for the next start" in server.stderr


def test_sigterm_mid_build_queues_the_run_again_and_the_next_start_builds_it(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, serve_factory: Any
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    clone = tmp_path / "clone"
    # A step long enough to be stopped in; the marker makes it unique, so no build cache skips it.
    marker = f"slow-step-{uuid.uuid4().hex[:12]}"
    dockerfile = BASE_DOCKERFILE + f"RUN echo {marker} && sleep 5\n"
    app_project(clone, f"{services.plain_registry}/{namespace}", dockerfile, busybox=True)
    commit = init_git(clone)
    git(clone, "remote", "add", "origin", str(remote))
    git(clone, "push", "-q", "origin", "main")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    tag = f"sha-{commit[:12]}"

    server = serve_factory(remote, ["--stop-timeout", "0"], env)
    queued = server.github_push("refs/heads/main", ZERO_SHA, commit, delivery="mid-build")
    assert queued.status_code == 202, queued.text
    run_id = queued.json()["run"]
    deadline = time.monotonic() + 300
    while marker not in server.log(run_id):  # the slow step is being built
        # Queued until the worker takes it (on a loaded machine, a moment), then running until stopped.
        assert server.run(run_id)["status"] in {"queued", "running"}, server.log(run_id)
        assert time.monotonic() < deadline, server.log(run_id)
        time.sleep(0.1)
    assert server.run(run_id)["status"] == "running"  # the stop lands mid-build
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0
    assert f"run {run_id} stopped with the server" in server.stderr
    with closing(sqlite3.connect(server.state / "serve.sqlite3")) as db:
        assert db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone() == ("queued",)
    assert plain_peek.digest(f"{namespace}/app", tag) is None  # nothing was pushed by the stopped run

    # The next start builds it; the delivery's redelivery is still a duplicate of that run.
    restarted = serve_factory(remote, [], env)
    again = restarted.github_push("refs/heads/main", ZERO_SHA, commit, delivery="mid-build")
    assert (again.status_code, again.json()) == (200, {"status": "duplicate", "run": run_id})
    built = restarted.wait_for(run_id, {"succeeded", "failed"})
    assert built["status"] == "succeeded", restarted.log(run_id)
    (image,) = built["report"]["images"]
    assert tag in image["tags"]
    assert plain_peek.digest(f"{namespace}/app", tag) == image["digest"]
    assert restarted.stop() == 0


# The first line of a file outside the repository that a pushed branch's pipelines.yaml links to.
SHADOW_HASH = "c2VydmUtc2hhZG93LXNlY3JldC1oYXNo"
SHADOW_LINE = f"root:$6$saltsalt${SHADOW_HASH}:19000:0:99999:7:::"


def test_a_pushed_pipelines_file_linked_out_of_the_repository_fails_the_run_and_shows_nothing_of_it(
    tmp_path: Path, serve_factory: Any
) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text(SHADOW_LINE + "\ndaemon:*:19000:0:99999:7:::\n")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    clone = tmp_path / "clone"
    write_project(clone, "registry: 127.0.0.1:5000/t\npipelines: {}\n", {"app": "FROM scratch\n"})
    (clone / "pipelines.yaml").unlink()
    (clone / "pipelines.yaml").symlink_to(shadow)  # as a branch can commit it: git stores the link
    commit = init_git(clone)
    git(clone, "push", "-q", str(remote), "main:refs/heads/evil")

    server = serve_factory(remote, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    pushed = server.github_push("refs/heads/evil", ZERO_SHA, commit)
    assert pushed.status_code == 202, pushed.text
    run = server.wait_for(pushed.json()["run"], {"succeeded", "failed"})
    log = server.log(run["id"])
    assert run["status"] == "failed" and run["exit_code"] == 2, log
    error = next(line for line in log.splitlines() if line.startswith("error: "))
    assert re.fullmatch(
        rf"error: pipelines file '.*/pipelines\.yaml' leads through a symlink to {re.escape(str(shadow.resolve()))}, "
        r"outside the repository /\S+",
        error,
    ), error

    # Nowhere: the unauthenticated pages, the API, the log, the report, the server's own log and state files.
    shown = [server.http.get(path).text for path in ("/", f"/runs/{run['id']}", f"/api/runs/{run['id']}", "/api/runs")]
    shown += [log, json.dumps(run), server.stderr]
    shown += [file.read_bytes().decode("utf-8", "replace") for file in server.state.rglob("*") if file.is_file()]
    for text in shown:
        assert SHADOW_HASH not in text and "$6$" not in text
    assert any("leads through a symlink" in text for text in shown[:2])  # the page says why
    assert server.stop() == 0
