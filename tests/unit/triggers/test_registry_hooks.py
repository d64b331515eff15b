"""Registry notifications: Docker Distribution's envelope, ACR's and Docker Hub's webhooks, each with its
authentication, parsed into base updates; and `serve` answering them over a real loopback socket."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.common.reporting import Forward
from pipeline.triggers.registry_hooks import (
    DISTRIBUTION_EVENTS,
    BaseUpdate,
    RegistryEndpoints,
    read_acr,
    read_distribution,
    read_dockerhub,
    read_notification,
)
from pipeline.triggers.server import ServeSettings, Service
from pipeline.triggers.webhooks import BadDelivery, DeliveryRejected, Ignored, NotAuthentic
from pipeline.triggers.worker import WorkerSettings, log_redactor
from tests.helpers import run_cli

SECRET = b"registry-notify-secret-5b1d"
HUB_SECRET = b"dockerhub-url-secret-0c3f7a"
DIGEST = "sha256:" + "1f" * 32
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def event(
    action: str = "push", media_type: str = MANIFEST, tag: str | None = "1", event_id: str = "e-1"
) -> dict[str, Any]:
    """One event as Docker Distribution 2.8 sends it."""
    target: dict[str, Any] = {
        "mediaType": media_type,
        "size": 528,
        "digest": DIGEST,
        "length": 528,
        "repository": "upstream/base",
        "url": f"http://127.0.0.1:5010/v2/upstream/base/manifests/{DIGEST}",
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": event_id,
        "timestamp": "2026-12-07T15:00:00.000000000Z",
        "action": action,
        "target": target,
        "request": {
            "id": "r-1",
            "addr": "127.0.0.1:40000",
            "host": "127.0.0.1:5010",
            "method": "PUT",
            "useragent": "docker/27",
        },
        "actor": {},
        "source": {"addr": "host:5010", "instanceID": "i-1"},
    }


def envelope(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


BEARER = {"Authorization": f"Bearer {SECRET.decode()}", "Content-Type": DISTRIBUTION_EVENTS}

ACR_PUSH = json.dumps(
    {
        "id": "cb8c3971-9adc-488b-bdd8-43cbb4974ff5",
        "timestamp": "2017-11-17T16:52:01.343145347Z",
        "action": "push",
        "target": {
            "mediaType": MANIFEST,
            "size": 524,
            "digest": DIGEST,
            "length": 524,
            "repository": "hello-world",
            "tag": "v1",
        },
        "request": {
            "id": "3cbb6949-7549-4fa1-86cd-a6d5451dffc7",
            "host": "myregistry.azurecr.io",
            "method": "PUT",
            "useragent": "docker/17.09",
        },
    }
).encode()

HUB_PUSH = json.dumps(
    {
        "callback_url": "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
        "push_data": {"pushed_at": 1417566161, "pusher": "trustedbuilder", "tag": "latest"},
        "repository": {
            "name": "testhook",
            "namespace": "svendowideit",
            "repo_name": "svendowideit/testhook",
            "status": "Active",
        },
    }
).encode()


def test_a_distribution_manifest_push_is_a_base_update_of_host_repository_tag() -> None:
    assert read_distribution(BEARER, envelope(event()), SECRET, "Authorization") == (
        BaseUpdate("distribution", "distribution:e-1", "127.0.0.1:5010/upstream/base:1", DIGEST),
    )


def test_distribution_pulls_blob_pushes_and_deletes_are_ignored_and_a_tagless_push_is_a_digest_hint() -> None:
    events = envelope(
        event("pull", event_id="a"),
        event(media_type="application/octet-stream", event_id="b"),
        event("delete", event_id="c"),
        event(tag=None, event_id="d"),
        event(media_type="application/vnd.oci.image.index.v1+json", event_id="e"),
    )
    parsed = read_distribution(BEARER, events, SECRET, "Authorization")
    assert [type(item).__name__ for item in parsed] == ["Ignored", "Ignored", "Ignored", "BaseUpdate", "BaseUpdate"]
    assert isinstance(parsed[0], Ignored) and parsed[0].reason == "action 'pull' is not a push"
    hint, index = parsed[3], parsed[4]
    assert isinstance(hint, BaseUpdate) and hint.reference == f"127.0.0.1:5010/upstream/base@{DIGEST}" and hint.hint
    assert isinstance(index, BaseUpdate) and index.reference == "127.0.0.1:5010/upstream/base:1" and not index.hint


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {SECRET.decode()}"},
        {"Authorization": f"Bearer {SECRET.decode()}x"},
        {"X-Other": f"Bearer {SECRET.decode()}"},
        {"Authorization": "Bearer sécret"},
    ],
)
def test_distribution_and_acr_without_the_secret_header_are_not_authentic(headers: dict[str, str]) -> None:
    with pytest.raises(NotAuthentic):
        read_distribution(headers, envelope(event()), SECRET, "Authorization")
    with pytest.raises(NotAuthentic):
        read_acr(headers, ACR_PUSH, SECRET, "Authorization")


def test_authentication_comes_before_parsing() -> None:
    with pytest.raises(NotAuthentic):
        read_distribution({}, b"not json", SECRET, "Authorization")


def test_the_secret_header_may_be_custom_and_carry_the_bare_secret() -> None:
    headers = {"x-registry-token": SECRET.decode()}  # any case
    assert read_acr(headers, ACR_PUSH, SECRET, "X-Registry-Token") == (
        BaseUpdate("acr", "acr:cb8c3971-9adc-488b-bdd8-43cbb4974ff5", "myregistry.azurecr.io/hello-world:v1", DIGEST),
    )


def test_acr_ping_and_chart_pushes_are_ignored() -> None:
    for action in ("ping", "chart_push", "delete"):
        body = json.dumps({**json.loads(ACR_PUSH), "action": action}).encode()
        (item,) = read_acr(BEARER, body, SECRET, "Authorization")
        assert isinstance(item, Ignored) and action in item.reason


def test_docker_hub_is_authenticated_by_the_url_secret_and_names_docker_io() -> None:
    (update,) = read_dockerhub(HUB_SECRET.decode(), HUB_PUSH, HUB_SECRET)
    assert isinstance(update, BaseUpdate)
    assert (update.source, update.reference, update.digest) == (
        "dockerhub",
        "docker.io/svendowideit/testhook:latest",
        None,
    )
    assert update.delivery_id.startswith("dockerhub:body-sha256:")  # the same delivery twice is a duplicate
    for wrong in ("", "x", HUB_SECRET.decode() + "x", HUB_SECRET.decode()[:-1]):
        with pytest.raises(NotAuthentic):
            read_dockerhub(wrong, HUB_PUSH, HUB_SECRET)


def test_docker_hub_official_images_are_under_library() -> None:
    body = json.dumps({"push_data": {"tag": "22.04"}, "repository": {"repo_name": "ubuntu"}}).encode()
    (update,) = read_dockerhub(HUB_SECRET.decode(), body, HUB_SECRET)
    assert isinstance(update, BaseUpdate) and update.reference == "docker.io/library/ubuntu:22.04"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("repository", "Upper/Case"),
        ("repository", "--option"),
        ("tag", "-x"),
        ("tag", "a b"),
        ("digest", "sha256:short"),
        ("host", "evil host"),
        ("host", "--repo=/etc"),
    ],
)
def test_fields_that_would_not_make_a_reference_are_bad_deliveries(field: str, value: str) -> None:
    item = event()
    (item["request"] if field == "host" else item["target"])[field] = value
    with pytest.raises(BadDelivery):
        read_distribution(BEARER, envelope(item), SECRET, "Authorization")


def test_an_endpoint_without_a_secret_is_not_served() -> None:
    endpoints = RegistryEndpoints({"acr": SECRET})
    for path in (
        "/hooks/registry/distribution",
        "/hooks/registry/dockerhub/" + HUB_SECRET.decode(),
        "/hooks/registry/x",
    ):
        with pytest.raises(DeliveryRejected) as caught:
            read_notification(endpoints, path, BEARER, envelope(event()))
        assert caught.value.http_status == 404
        assert HUB_SECRET.decode() not in str(caught.value)


# --- serve over a loopback socket ------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    # A run only waits (the queue is what these tests look at), and is terminated when the server stops.
    worker = WorkerSettings(
        repo=str(tmp_path),
        runs_dir=tmp_path / "runs",
        command=(sys.executable, "-c", "import time; time.sleep(60)"),
        stop_timeout=0,
    )
    registry = RegistryEndpoints({"distribution": SECRET, "acr": SECRET, "dockerhub": HUB_SECRET}, ref="refs/heads/rel")
    settings = ServeSettings("127.0.0.1", 0, tmp_path / "state", b"git-secret", worker, registry=registry)
    lines: list[str] = []
    redactor = log_redactor({}, "git-secret", tmp_path / "no-docker-config", [SECRET.decode(), HUB_SECRET.decode()])
    running = Service(settings, redactor, Forward(lines.append))
    running.lines = lines  # type: ignore[attr-defined]
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_serve_queues_an_authentic_push_and_nothing_for_a_wrong_secret(service: Service) -> None:
    url = f"{service.url}/hooks/registry/distribution"
    wrong = httpx.post(url, content=envelope(event()), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["status"] == "rejected"
    assert service.queue.recent() == []
    hub_wrong = httpx.post(f"{service.url}/hooks/registry/dockerhub/nope", content=HUB_PUSH)
    assert hub_wrong.status_code == 401 and service.queue.recent() == []

    ok = httpx.post(url, content=envelope(event("pull", event_id="p"), event()), headers=BEARER)
    assert ok.status_code == 202, ok.text
    assert [e["status"] for e in ok.json()["events"]] == ["ignored", "queued"]
    again = httpx.post(url, content=envelope(event()), headers=BEARER)  # Distribution retrying
    assert again.status_code == 200 and again.json()["events"][0] == {
        "id": "distribution:e-1",
        "status": "duplicate",
        "run": ok.json()["events"][1]["run"],
    }
    hub = httpx.post(f"{service.url}/hooks/registry/dockerhub/{HUB_SECRET.decode()}", content=HUB_PUSH)
    assert hub.status_code == 202, hub.text
    runs = {run.reference: run for run in service.queue.recent()}
    assert set(runs) == {"127.0.0.1:5010/upstream/base:1", "docker.io/svendowideit/testhook:latest"}
    assert {(run.kind, run.ref, run.digest) for run in runs.values()} == {
        ("base", "refs/heads/rel", DIGEST),
        ("base", "refs/heads/rel", None),
    }
    page = httpx.get(f"{service.url}/api/runs").json()["runs"]
    assert {(run["kind"], run["reference"]) for run in page} == {("base", ref) for ref in runs}
    index = httpx.get(f"{service.url}/").text
    assert "base update" in index and "127.0.0.1:5010/upstream/base:1" in index
    log = "\n".join(service.lines)  # type: ignore[attr-defined]
    assert "/hooks/registry/dockerhub/*** " in log, log
    assert HUB_SECRET.decode() not in log and SECRET.decode() not in log


@pytest.mark.parametrize(
    ("hook", "variable"), [("distribution", "PIPELINE_REGISTRY_SECRET"), ("dockerhub", "PIPELINE_DOCKERHUB_SECRET")]
)
def test_serve_refuses_to_start_a_registry_endpoint_without_its_secret(
    tmp_path: Path, hook: str, variable: str
) -> None:
    env = {"PIPELINE_WEBHOOK_SECRET": "git-secret", "PIPELINE_REGISTRY_SECRET": "", "PIPELINE_DOCKERHUB_SECRET": ""}
    args = ["serve", "--repo", str(tmp_path), "--port", "0", "--state-dir", str(tmp_path / "state")]
    # --insecure-no-secret (git webhooks on a trusted network) does not open the registry endpoints.
    result = run_cli([*args, "--registry-hook", hook, "--insecure-no-secret"], tmp_path, env=env, timeout=60)
    assert result.code == 2, result.output
    assert f"--registry-hook {hook}: {variable} is not set" in result.stderr
    assert not (tmp_path / "state").exists()  # nothing started


@pytest.mark.parametrize(
    ("hook", "variable"), [("distribution", "PIPELINE_REGISTRY_SECRET"), ("dockerhub", "PIPELINE_DOCKERHUB_SECRET")]
)
@pytest.mark.parametrize(
    "value", ["abc", "fifteen-chars-x", "url%2Fencoded-secret-1", "with space secret 1", "pässwörd-secret-1"]
)
def test_serve_refuses_a_registry_secret_it_could_not_mask_or_compare_as_sent(
    tmp_path: Path, hook: str, variable: str, value: str
) -> None:
    """Shorter than 16 characters (the log redactor skips very short values, and it is guessable) or with
    characters other than letters, digits, `_` and `-` (Docker Hub's URL would carry them percent-encoded,
    logged and compared as sent): refused at start, naming the variable and never the value."""
    env = {
        "PIPELINE_WEBHOOK_SECRET": "git-secret",
        "PIPELINE_REGISTRY_SECRET": value,
        "PIPELINE_DOCKERHUB_SECRET": value,
    }
    args = ["serve", "--repo", str(tmp_path), "--port", "0", "--state-dir", str(tmp_path / "state")]
    result = run_cli([*args, "--registry-hook", hook], tmp_path, env=env, timeout=60)
    assert result.code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: --registry-hook {hook}: {variable} must be at least 16 characters, only letters, digits, '_' and "
        "'-' (e.g. `openssl rand -hex 32`)"
    ]
    assert value not in result.output
    assert not (tmp_path / "state").exists()  # nothing started
