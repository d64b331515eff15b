"""Notifications from real runs to a local receiver (tests/receiver.py): a failed run's signed notice and
Slack payload with no secret in them (nor in the run's output, warnings or report), a release notice,
watch's runs, the give-up bound through the CLI, and serve's worker handing each run its page's URL."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.helpers import BASE_DOCKERFILE, git, init_git, run_cli, write_project
from tests.integration.conftest import Services
from tests.integration.test_secrets import forms
from tests.receiver import receiving

HOOK_SECRET = "notify-hook-SECRETSCAN-w3Rt8"
BUILD_TOKEN = "build-token-SECRETSCAN-Lm4q2"
COSIGN_PASSWORD = "cosign-pass-SECRETSCAN-Zz81c"
FAILING = f"{BASE_DOCKERFILE}RUN --mount=type=secret,id=tok cat /run/secrets/tok; echo; echo about to fail; exit 3\n"
PASSING = f"{BASE_DOCKERFILE}RUN echo ok > /ok\n"


def notify_project(root: Path, registry: str, dockerfile: str, notify: str, triggers: str = "") -> str:
    """Pipeline `shop` with one busybox image `app` (build secret `tok` from $BUILD_TOKEN) and `notify`
    (YAML, top level); returns HEAD."""
    write_project(
        root,
        f"""\
        registry: {registry}
        network: none
        notify: {notify}
        pipelines:
          shop:
            {f"triggers: {triggers}" if triggers else ""}
            images:
              app:
                context: images/app
                secrets: {{tok: {{env: BUILD_TOKEN}}}}
        """,
        {"app": dockerfile},
        busybox=("app",),
    )
    return init_git(root)


def test_a_failed_run_posts_signed_and_slack_notices_without_secrets_and_keeps_its_exit_code(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    with receiving() as generic, receiving() as slack:
        head = notify_project(
            tmp_path,
            f"{services.auth_registry}/{namespace}",
            FAILING,
            f"{{targets: [{{url: '{generic.url}', secret_env: HOOK_SECRET}}, {{url_env: SLACK_URL, kind: slack}}]}}",
        )
        env = {
            "HOOK_SECRET": HOOK_SECRET,
            "SLACK_URL": slack.url + "/T000/B000/slack-path-SECRETSCAN",
            "BUILD_TOKEN": BUILD_TOKEN,
            "COSIGN_PASSWORD": COSIGN_PASSWORD,
            "DOCKER_CONFIG": str(services.auth_docker_config),
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_RUN_ID": "4242",
        }
        result = run_cli(["run", "--report", "report.json"], tmp_path, env)

    assert result.code == 1, result.output
    report_text = (tmp_path / "report.json").read_text()
    # The failing step's output is in the report; the build secret it printed is not (it is redacted).
    assert "about to fail" in json.loads(report_text)["images"][0]["log_tail"], report_text
    [request] = generic.requests
    assert request.signed_with(HOOK_SECRET)
    body = request.json()
    assert body["event"] == "failure" and body["pipeline"] == "shop" and body["image"] == "shop/app"
    assert body["commit"] == head and body["branch"] == "main" and body["command"] == "run"
    assert body["error"].startswith("shop/app: build failed"), body["error"]
    # The failing Dockerfile step when the builder names it (this engine's BuildKit does not for a secret mount).
    assert body["step"] is None or body["step"].startswith("["), body["step"]
    assert "about to fail" in body["log_tail"]
    assert body["run_url"] == "https://github.com/acme/shop/actions/runs/4242"
    [posted] = slack.requests
    assert posted.path == "/hook/T000/B000/slack-path-SECRETSCAN"
    assert posted.json()["text"].startswith(":x: shop failed: shop/app: build failed")
    secrets = {
        "hook secret": HOOK_SECRET,
        "build secret": BUILD_TOKEN,
        "cosign password": COSIGN_PASSWORD,
        "registry password": services.auth_password,
        "slack url path": "slack-path-SECRETSCAN",
    }
    for name, value in secrets.items():
        for form in forms(value):
            for received in (request, posted):
                assert form.encode() not in received.body, f"{name} in the body sent to {received.path}"
            # Nor anywhere the run prints or writes: progress, warnings, the table, the report.
            for where, text in (("stdout", result.stdout), ("stderr", result.stderr), ("report", report_text)):
                assert form not in text, f"{name} in the run's {where}"


def test_a_release_posts_a_release_notice_to_the_targets_that_ask_for_it(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    with receiving() as failures, receiving() as releases:
        notify_project(
            tmp_path,
            f"{services.plain_registry}/{namespace}",
            PASSING,
            f"{{targets: [{{url: '{failures.url}'}}, {{url: '{releases.url}', events: [release]}}]}}",
        )
        result = run_cli(["release", "--version", "1.4.0"], tmp_path, {"BUILD_TOKEN": BUILD_TOKEN})

    assert result.code == 0, result.output
    assert failures.requests == []  # a success is no failure
    [body] = releases.bodies()
    assert (body["event"], body["version"], body["git_tag"], body["command"]) == (
        "release",
        "1.4.0",
        "v1.4.0",
        "release",
    )
    [image] = body["images"]
    assert image["image"] == "shop/app" and image["digest"].startswith("sha256:") and "1.4.0" in image["tags"]


def test_watch_notifies_a_failing_commit(tmp_path: Path, services: Services, namespace: str) -> None:
    clone, remote = tmp_path / "clone", tmp_path / "remote.git"
    with receiving() as receiver:
        notify_project(
            clone,
            f"{services.plain_registry}/{namespace}",
            FAILING,
            f"{{targets: [{{url: '{receiver.url}'}}]}}",
            triggers="[{branch: main}]",
        )
        git(tmp_path, "clone", "-q", "--bare", str(clone), str(remote))
        watch = ["watch", "--repo", str(remote), "--branch", "main", "--state", str(tmp_path / "state.json"), "--once"]
        result = run_cli(watch, tmp_path, {"BUILD_TOKEN": BUILD_TOKEN})

    assert result.code == 0, result.output  # watch records a failed commit and goes on
    [body] = receiver.bodies()
    assert (body["event"], body["command"], body["image"]) == ("failure", "trigger", "shop/app")
    assert body["commit"] == git(clone, "rev-parse", "HEAD")
    assert BUILD_TOKEN not in json.dumps(body)


def test_a_receiver_that_fails_or_hangs_costs_at_most_the_timeout_and_a_warning(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    took: dict[str, float] = {}
    for case, statuses, hang in (("answers", (200,), 0.0), ("fails", (500,), 0.0), ("hangs", (200,), 60.0)):
        with receiving(statuses, hang) as receiver:
            root = tmp_path / case
            notify = f"{{timeout: 2, targets: [{{url: '{receiver.url}'}}]}}"
            notify_project(root, f"{services.plain_registry}/{namespace}", PASSING, notify)
            started = time.monotonic()
            # BUILD_TOKEN unset: the run refuses before building (exit 2), and that failure is notified.
            result = run_cli(["run"], root)
            took[case] = time.monotonic() - started
        assert result.code == 2, result.output  # the refusal's own exit code, whatever the receiver did
        assert (
            result.stderr.splitlines()[-1]
            == "error: shop/app: build secret 'tok': environment variable BUILD_TOKEN is not set"
        )
        assert receiver.requests, "the refusal was notified"
        assert receiver.requests[0].json()["error"].startswith("shop/app: build secret 'tok'")
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: notify")]
        if case == "answers":
            assert warnings == [], result.stderr
            continue
        assert len(warnings) == 1 and "target 1 (generic, 127.0.0.1): not delivered: " in warnings[0], result.stderr
        assert "/hook" not in warnings[0]
        if case == "fails":
            assert len(receiver.requests) >= 2 and "HTTP 500" in warnings[0]
        # The deadline bounds what the receiver costs (plus thread start-up and a margin for a loaded machine).
        assert took[case] - took["answers"] < 2 + 2, took


def test_serve_gives_each_run_its_page_url(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_project(repo, "registry: 127.0.0.1:5000/t\npipelines: {}\n", {})
    init_git(repo)
    script = tmp_path / "fake_trigger.py"
    script.write_text(
        "import os, sys\nfrom pathlib import Path\n"
        f"Path({str(tmp_path / 'seen.txt')!r}).write_text(os.environ.get('PIPELINE_RUN_URL', 'unset'))\n"
    )
    from tests.integration.test_serve import SECRET, Serve

    server = Serve(
        tmp_path,
        repo,
        ["--command", f"python3 {script}", "--public-url", "https://ci.example.com/pipeline/"],
        {"PIPELINE_WEBHOOK_SECRET": SECRET},
    )
    try:
        head = git(repo, "rev-parse", "HEAD")
        assert server.github_push("refs/heads/main", "0" * 40, head).status_code == 202
        run = server.wait_for(1, {"succeeded", "failed"}, timeout=60)
        assert run["status"] == "succeeded", server.log(1)
    finally:
        server.stop()
    assert (tmp_path / "seen.txt").read_text() == "https://ci.example.com/pipeline/runs/1"
