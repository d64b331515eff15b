"""Two runs of one pipeline at once, and a burst of webhook deliveries."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

from tests.helpers import BASE_DOCKERFILE, init_git, write_project
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_serve import FAKE_TRIGGER, serve_factory  # noqa: F401 - the fixture

BURST_BRANCHES, PUSHES_PER_BRANCH = 20, 10


def test_two_runs_at_once_end_as_one_run_would(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    write_project(
        tmp_path,
        f"""\
        registry: {services.plain_registry}/{namespace}
        pipelines:
          shop:
            images:
              base: {{context: images/base}}
              app:
                context: images/app
                build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}
        """,
        {
            "base": BASE_DOCKERFILE + 'RUN ["/bin/busybox", "sleep", "2"]\n',
            "app": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo app > /app\n",
        },
        busybox=("base",),
    )
    init_git(tmp_path)
    command = [sys.executable, "-m", "pipeline", "run", "--version", "1.0.0", "--json"]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    second = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "waiting for the other run of pipeline shop" in err2  # serialized on this machine
    one, two = json.loads(out1), json.loads(out2)
    assert all(image["reused"] for image in two["images"])  # the second found the first's images
    for a, b in zip(one["images"], two["images"], strict=True):
        assert a["digest"] == b["digest"]
        for tag in ("1.0.0", "1.0", "1", "latest"):
            assert plain_peek.digest(f"{namespace}/{a['name']}", tag) == a["digest"]
    assert {c["action"] for c in two["tag_changes"]} == {"unchanged"}


def test_webhook_burst_stays_responsive_and_loses_nothing(tmp_path: Path, serve_factory: Any) -> None:  # noqa: F811
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    (fake_dir / "trigger.py").write_text(FAKE_TRIGGER)
    (fake_dir / "hold").touch()  # runs wait until the burst is in, so pushes queue up
    server = serve_factory(tmp_path, ["--command", f"{sys.executable} {fake_dir / 'trigger.py'}"])

    def commit(branch: int, n: int) -> str:
        return f"{branch:02x}{n:038x}"

    deliveries = [
        (f"refs/heads/b{branch}", commit(branch, n), commit(branch, n + 1), f"burst-{branch}-{n}")
        for n in range(PUSHES_PER_BRANCH)
        for branch in range(BURST_BRANCHES)
    ]
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            started = time.monotonic()
            assert server.http.get("/healthz").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda d: server.github_push(d[0], d[1], d[2], delivery=d[3]), deliveries))
    (fake_dir / "hold").unlink()
    deadline = time.monotonic() + 300
    while (health := server.http.get("/healthz").json())["queued"] or health["running"]:
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    stop.set()
    prober.join()

    assert [a.status_code for a in answers] == [202] * len(deliveries)
    database = server.state / "serve.sqlite3"
    with closing(sqlite3.connect(database)) as db:
        stored = {row[0] for row in db.execute("SELECT id FROM deliveries")}
        runs = db.execute("SELECT ref, before, after, status FROM runs").fetchall()
    assert stored == {f"github:{d[3]}" for d in deliveries}  # none lost
    executed = [r for r in runs if r[3] != "superseded"]
    assert {r[3] for r in executed} == {"succeeded"}
    for branch in range(BURST_BRANCHES):
        ran = [r for r in executed if r[0] == f"refs/heads/b{branch}"]
        assert ran, f"branch b{branch} never ran"
        assert ran[-1][2] == commit(branch, PUSHES_PER_BRANCH)  # the newest commit was built
        assert ran[0][1] == commit(branch, 0)  # from the first push's base: no change skipped
    assert len(executed) < len(deliveries)  # bursts coalesced
    assert max(latencies) < 5.0, f"/healthz took up to {max(latencies):.2f} s during the burst"
    print(
        f"\nburst: {len(deliveries)} deliveries, {len(executed)} runs executed, "
        f"/healthz max {max(latencies) * 1000:.0f} ms over {len(latencies)} probes"
    )
