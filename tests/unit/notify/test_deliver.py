"""Delivering notices to a real local receiver (http.server on 127.0.0.1): the generic body and its
signature, Slack's payload, retries on 5xx with the registry's policy, the deadline, and redaction."""

from __future__ import annotations

import json
import time
from typing import Any

from pipeline.config.resolved import Notification
from pipeline.config.schema import NotifySpec
from pipeline.notify.deliver import deliver
from pipeline.notify.message import ImageNotice, Notice
from pipeline.notify.runurl import run_url
from pipeline.redaction import Redactor
from tests.receiver import receiving

SECRET = "notify-hmac-SECRETSCAN-9fQ2"


def spec(**block: Any) -> Notification:
    return Notification.of(NotifySpec.model_validate(block))


FAILURE = Notice(
    event="failure",
    pipeline="shop",
    command="run",
    commit="0123456789abcdef0123456789abcdef01234567",
    branch="main",
    image="shop/app",
    step="[2/2] RUN make",
    error="shop/app: build failed at [2/2] RUN make: exit code: 2",
    log_tail=("cc -o app app.c", "app.c:1: error"),
    run_url="https://ci.example.com/runs/7",
    images=(ImageNotice("shop/base", "succeeded", "sha256:" + "a" * 64, ("sha-0123456789ab",)),),
)


def test_generic_body_names_the_failure_and_is_signed_with_the_secret_from_the_environment() -> None:
    with receiving() as receiver:
        block = spec(targets=[{"url": receiver.url, "secret_env": "HOOK_SECRET"}])
        warnings = deliver([(block, FAILURE, "notify")], {"HOOK_SECRET": SECRET}, Redactor([]))
    assert warnings == []
    [request] = receiver.requests
    assert request.signed_with(SECRET)
    assert request.headers["x-pipeline-event"] == "failure"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert {k: body[k] for k in ("event", "pipeline", "image", "step", "commit", "branch", "error", "run_url")} == {
        "event": "failure",
        "pipeline": "shop",
        "image": "shop/app",
        "step": "[2/2] RUN make",
        "commit": FAILURE.commit,
        "branch": "main",
        "error": FAILURE.error,
        "run_url": "https://ci.example.com/runs/7",
    }
    assert body["log_tail"] == ["cc -o app app.c", "app.c:1: error"]
    assert body["images"][0]["digest"] == "sha256:" + "a" * 64
    assert SECRET not in request.body.decode()


def test_slack_payload_has_text_and_blocks_and_no_signature() -> None:
    with receiving() as receiver:
        block = spec(targets=[{"url_env": "SLACK_URL", "kind": "slack"}])
        assert deliver([(block, FAILURE, "notify")], {"SLACK_URL": receiver.url}, Redactor([])) == []
    [request] = receiver.requests
    body = request.json()
    assert set(body) == {"text", "blocks"}
    assert body["text"] == ":x: shop failed: shop/app: build failed at [2/2] RUN make: exit code: 2"
    assert {b["type"] for b in body["blocks"]} <= {"section", "context"}
    texts = json.dumps(body["blocks"])
    assert "app.c:1: error" in texts and "https://ci.example.com/runs/7|View the run" in texts
    assert "x-pipeline-signature-256" not in request.headers


def test_events_choose_the_targets_a_release_goes_to() -> None:
    release = Notice(event="release", pipeline="shop", command="release", version="1.2.0")
    with receiving() as failures, receiving() as releases:
        block = spec(targets=[{"url": failures.url}, {"url": releases.url, "events": ["release"]}])
        deliver([(block, release, "notify"), (block, FAILURE, "notify")], {}, Redactor([]))
    assert [b["event"] for b in failures.bodies()] == ["failure"]
    assert [(b["event"], b["version"]) for b in releases.bodies()] == [("release", "1.2.0")]


def test_a_5xx_is_retried_with_the_registry_policy_until_delivered() -> None:
    with receiving(statuses=(500, 503, 200)) as receiver:
        block = spec(targets=[{"url": receiver.url, "secret_env": "HOOK_SECRET"}])
        warnings = deliver([(block, FAILURE, "notify")], {"HOOK_SECRET": SECRET}, Redactor([]))
    assert warnings == []
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1  # the same signed body each time
    assert all(r.signed_with(SECRET) for r in receiver.requests)


def test_a_receiver_that_always_fails_is_given_up_within_the_timeout_with_a_warning_naming_only_the_host() -> None:
    with receiving(statuses=(500,)) as receiver:
        block = spec(timeout=1.5, targets=[{"url_env": "SLACK_URL", "kind": "slack"}])
        started = time.monotonic()
        warnings = deliver([(block, FAILURE, "notify")], {"SLACK_URL": receiver.url + "/T000/B000/XXXX"}, Redactor([]))
        took = time.monotonic() - started
    assert took < 1.5 + 1.0, took
    assert len(receiver.requests) >= 2  # retried before giving up
    [warning] = warnings
    assert warning.startswith("notify target 1 (slack, 127.0.0.1): not delivered: HTTP 500"), warning
    assert "XXXX" not in warning and "/hook" not in warning


def test_a_receiver_that_never_answers_is_abandoned_at_the_deadline() -> None:
    with receiving(hang=30) as receiver:
        block = spec(timeout=1, targets=[{"url": receiver.url}])
        started = time.monotonic()
        warnings = deliver([(block, FAILURE, "notify")], {}, Redactor([]))
        took = time.monotonic() - started
    assert took < 2.5, took
    assert len(warnings) == 1 and "not delivered" in warnings[0], warnings


def test_a_4xx_is_not_retried_and_a_missing_variable_is_a_warning() -> None:
    with receiving(statuses=(404,)) as receiver:
        block = spec(
            targets=[{"url": receiver.url}, {"url_env": "UNSET_URL"}, {"url": receiver.url, "secret_env": "NO"}]
        )
        warnings = deliver([(block, FAILURE, "pipelines.shop.notify")], {}, Redactor([]))
    assert len(receiver.requests) == 1
    assert warnings == [
        "pipelines.shop.notify target 2: not sent: environment variable UNSET_URL is not set",
        "pipelines.shop.notify target 3 (generic, 127.0.0.1): not sent: "
        "environment variable NO (secret_env) is not set",
        "pipelines.shop.notify target 1 (generic, 127.0.0.1): not delivered: HTTP 404 (refused; not retried)",
    ]


def test_a_redirect_is_not_followed_nor_retried() -> None:
    # 307 keeps the method: a client that followed it would post the signed body to wherever it points.
    with receiving() as elsewhere, receiving(statuses=(307,), headers={"Location": elsewhere.url}) as receiver:
        block = spec(targets=[{"url": receiver.url, "secret_env": "HOOK_SECRET"}])
        warnings = deliver([(block, FAILURE, "notify")], {"HOOK_SECRET": SECRET}, Redactor([]))
    assert elsewhere.requests == []
    assert len(receiver.requests) == 1
    assert warnings == ["notify target 1 (generic, 127.0.0.1): not delivered: HTTP 307 (refused; not retried)"]


def test_retry_after_sets_the_wait_before_the_next_attempt() -> None:
    with receiving(statuses=(503, 200), headers={"Retry-After": "2"}) as receiver:
        block = spec(targets=[{"url": receiver.url}])
        warnings = deliver([(block, FAILURE, "notify")], {}, Redactor([]))
    assert warnings == []
    first, second = receiver.requests
    # Without the hint the policy waits 0.25 s plus at most 0.25 s of jitter before the second attempt.
    assert second.at - first.at >= 1.9, second.at - first.at


def test_a_retry_after_beyond_the_timeout_gives_up_at_the_deadline() -> None:
    with receiving(statuses=(429,), headers={"Retry-After": "30"}) as receiver:
        block = spec(timeout=1, targets=[{"url": receiver.url}])
        started = time.monotonic()
        warnings = deliver([(block, FAILURE, "notify")], {}, Redactor([]))
        took = time.monotonic() - started
    assert took < 2.5, took
    [warning] = warnings
    assert warning.startswith("notify target 1 (generic, 127.0.0.1): not delivered: HTTP 429"), warning
    assert len(receiver.requests) == 1


def test_a_target_with_empty_events_gets_nothing_and_one_without_events_gets_the_blocks() -> None:
    release = Notice(event="release", pipeline="shop", command="release", version="1.2.0")
    with receiving() as off, receiving() as default:
        block = spec(events=["failure", "release"], targets=[{"url": off.url, "events": []}, {"url": default.url}])
        assert deliver([(block, FAILURE, "notify"), (block, release, "notify")], {}, Redactor([])) == []
    assert off.requests == []
    assert sorted(b["event"] for b in default.bodies()) == ["failure", "release"]


def test_no_secret_reaches_a_warning() -> None:
    with receiving(statuses=(500,)) as failing, receiving(statuses=(403,)) as refusing:
        env = {
            "FAILING_URL": failing.url.replace("//", "//bot:url-pw-SECRETSCAN-1@") + "/T0/B0/slack-path-SECRETSCAN-2",
            "REFUSING_URL": refusing.url + "?token=url-token-SECRETSCAN-3",
            "BAD_URL": "ftp://bot:url-pw-SECRETSCAN-4@files.example.com/x",
            "HOOK_SECRET": SECRET,
        }
        block = spec(
            timeout=1,
            targets=[
                {"url_env": "FAILING_URL", "kind": "slack"},
                {"url_env": "REFUSING_URL", "secret_env": "HOOK_SECRET"},
                {"url_env": "BAD_URL"},
                {"url": refusing.url, "secret_env": "UNSET_SECRET"},
            ],
        )
        redactor = Redactor.for_run(env, ["FAILING_URL", "REFUSING_URL", "BAD_URL"])
        warnings = deliver([(block, FAILURE, "notify")], env, redactor)
    assert len(warnings) == 4, warnings
    assert not [w for w in warnings if "SECRETSCAN" in w or "bot" in w], warnings


def test_no_secret_reaches_a_body(tmp_path: Any) -> None:
    registry_password = "registry-pw-SECRETSCAN-7Tq"
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "127.0.0.1:5001": {
                        "auth": __import__("base64").b64encode(f"u:{registry_password}".encode()).decode()
                    }
                }
            }
        )
    )
    build_secret = "build-secret-SECRETSCAN-k2"
    env = {"COSIGN_PASSWORD": "cosign-SECRETSCAN-pw", "NPM_AUTH": build_secret, "HOOK_SECRET": SECRET}
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtc3ViamVjdCJ9.c2lnbmF0dXJlLXNlY3JldA"
    leaky = Notice(
        event="failure",
        pipeline="shop",
        command="run",
        error=f"push to https://bob:{SECRET}@git.example.com failed; token {token}; pw {registry_password}",
        log_tail=(
            f"echo {build_secret}",
            f"cosign-SECRETSCAN-pw {__import__('base64').b64encode(build_secret.encode()).decode()}",
        ),
    )
    redactor = Redactor.for_run(env, ["NPM_AUTH"], (), tmp_path)
    with receiving() as receiver:
        block = spec(
            targets=[{"url": receiver.url, "secret_env": "HOOK_SECRET"}, {"url": receiver.url, "kind": "slack"}]
        )
        assert deliver([(block, leaky, "notify")], env, redactor) == []
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        text = request.body.decode()
        assert "SECRETSCAN" not in text and token not in text, text
        assert "bob:" not in text
    [signed] = [r for r in receiver.requests if "x-pipeline-signature-256" in r.headers]
    assert signed.signed_with(SECRET)  # signed over the redacted body it carries


def test_run_url_from_each_ci() -> None:
    github = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "42"}
    assert run_url(github) == "https://github.com/o/r/actions/runs/42"
    assert run_url({"CI_JOB_URL": "https://gitlab.com/o/r/-/jobs/9"}) == "https://gitlab.com/o/r/-/jobs/9"
    azure = {"SYSTEM_COLLECTIONURI": "https://dev.azure.com/org/", "SYSTEM_TEAMPROJECT": "shop", "BUILD_BUILDID": "5"}
    assert run_url(azure) == "https://dev.azure.com/org/shop/_build/results?buildId=5"
    assert run_url({**github, "PIPELINE_RUN_URL": "http://serve/runs/3"}) == "http://serve/runs/3"
    assert run_url({}) is None
