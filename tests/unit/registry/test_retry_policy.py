"""One retry policy for every registry operation: pipeline's HTTP requests, the ACR token exchange and
the engine's pushes wait and stop alike, and the docs (moved from README) state the policy's numbers. Waits are recorded
through the policy's sleep hook, so nothing sleeps."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.acr.auth import AcrExchangeCredentials
from pipeline.builders import BuildRequest
from pipeline.builders.classic import DockerBuilder
from pipeline.common import retry
from pipeline.common.reporting import SILENT
from pipeline.errors import AuthError, RegistryError
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import parse_reference
from tests.helpers import docs_text

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
PUSHED = "sha256:" + "ab" * 32

# What the registry says, attempt by attempt: unavailable (no hint), rate-limited asking for 2 s, fine.
UNAVAILABLE, LIMITED_2S, OK = "unavailable", "limited-2s", "ok"
SEQUENCE = [UNAVAILABLE, LIMITED_2S, OK]


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(retry.POLICY, "sleep", recorded.append)
    return recorded


def http_answer(step: str) -> httpx.Response:
    if step == UNAVAILABLE:
        return httpx.Response(503)
    if step == LIMITED_2S:
        return httpx.Response(429, headers={"Retry-After": "2"})
    return httpx.Response(
        200,
        content=MANIFEST,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": DIGEST},
    )


def engine_chunks(step: str) -> list[dict[str, Any]]:
    """What the engine's push stream gives for the same registry answers (texts as Docker 20.10 prints
    them; the engine drops the Retry-After header, so the hint is in the text only where a registry put it)."""
    if step == UNAVAILABLE:
        message = "received unexpected HTTP status: 503 Service Unavailable"
        return [{"error": message, "errorDetail": {"message": message}}]
    if step == LIMITED_2S:
        message = "toomanyrequests: rate limit exceeded, retry after 2 seconds"
        return [{"error": message, "errorDetail": {"message": message}}]
    return [{"status": "Pushed", "id": "0123"}, {"aux": {"Tag": "sha-1", "Digest": PUSHED, "Size": 1}}]


class EnginePushStub:
    """The engine's push stream, scripted attempt by attempt."""

    def __init__(self, steps: list[str]) -> None:
        self.steps = list(steps)
        self.pushes = 0

    def push(self, repository: str, **_: object) -> Iterator[dict[str, Any]]:
        self.pushes += 1
        return iter(engine_chunks(self.steps.pop(0)))


def registry_request(steps: list[str]) -> tuple[str | None, int]:
    answers = list(steps)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return http_answer(answers.pop(0))

    client = RegistryClient(lambda _: None, transport=httpx.MockTransport(handler))
    return client.resolve_digest(parse_reference("127.0.0.1:5000/demo/app:1.0.0")), calls


def engine_push(engine: EnginePushStub) -> str:
    request = BuildRequest(
        image="shop/app",
        context=Path("."),
        dockerfile=Path("Dockerfile"),
        tag=parse_reference("127.0.0.1:5000/demo/app:sha-1"),
    )
    return DockerBuilder()._push(engine, request, SILENT)  # type: ignore[arg-type]


def token_exchange(steps: list[str]) -> int:
    answers = list(steps)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        step = answers.pop(0)
        return http_answer(step) if step != OK else httpx.Response(200, json={"refresh_token": "R"})

    exchange = AcrExchangeCredentials(lambda _: None, lambda: "aad", transport=httpx.MockTransport(handler))
    assert exchange.exchange("127.0.0.1:5000") == "R"
    return calls


def assert_waits_follow_the_policy(waits: list[float]) -> None:
    """After the 503 (no hint): the first backoff step; after the 429: exactly what Retry-After asked."""
    assert len(waits) == 2, waits
    assert retry.BACKOFF_INITIAL <= waits[0] <= retry.BACKOFF_INITIAL + retry.BACKOFF_JITTER, waits
    assert waits[1] == 2.0, waits


def test_registry_requests_wait_by_the_policy(waits: list[float]) -> None:
    digest, calls = registry_request(SEQUENCE)
    assert (digest, calls) == (DIGEST, 3)
    assert_waits_follow_the_policy(waits)


def test_acr_token_exchange_waits_by_the_policy(waits: list[float]) -> None:
    assert token_exchange(SEQUENCE) == 3
    assert_waits_follow_the_policy(waits)


def test_engine_pushes_wait_by_the_same_policy(waits: list[float]) -> None:
    engine = EnginePushStub(SEQUENCE)
    assert engine_push(engine) == PUSHED
    assert engine.pushes == 3
    assert_waits_follow_the_policy(waits)


def test_every_call_site_stops_after_the_same_number_of_attempts(waits: list[float]) -> None:
    failing = [UNAVAILABLE] * (retry.ATTEMPTS + 1)
    with pytest.raises(RegistryError, match=f"after {retry.ATTEMPTS} attempts"):
        registry_request(failing)
    http_waits = list(waits)
    waits.clear()

    engine = EnginePushStub(failing)
    with pytest.raises(RegistryError, match=f"503 Service Unavailable \\(after {retry.ATTEMPTS} attempts\\)"):
        engine_push(engine)
    assert engine.pushes == retry.ATTEMPTS
    assert len(waits) == len(http_waits) == retry.ATTEMPTS - 1
    for attempt, (engine_wait, http_wait) in enumerate(zip(waits, http_waits, strict=True)):
        low = retry.BACKOFF_INITIAL * 2**attempt
        assert low <= engine_wait <= low + retry.BACKOFF_JITTER
        assert low <= http_wait <= low + retry.BACKOFF_JITTER
    waits.clear()

    with pytest.raises(AuthError, match="kept failing"):
        token_exchange(failing)
    assert len(waits) == retry.ATTEMPTS - 1


def test_retry_after_is_capped() -> None:
    assert retry.parse_retry_after("3600") == retry.RETRY_AFTER_CAP
    assert retry.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: go now
    assert retry.parse_retry_after("soon") is None
    assert retry.retry_after_in_text("toomanyrequests: Retry-After: 90") == retry.RETRY_AFTER_CAP
    assert retry.retry_after_in_text("toomanyrequests: injected fault") is None


def test_readme_states_the_policy() -> None:
    text = " ".join(docs_text("registries.md").split())
    stated = re.search(r"retried up to (\d+) attempts in all; .*?`Retry-After` asks \(capped at (\d+) s\)", text)
    assert stated, "docs/registries.md no longer states the retry policy in 'Registries and credentials'"
    assert (int(stated.group(1)), float(stated.group(2))) == (retry.ATTEMPTS, retry.RETRY_AFTER_CAP)
    backoff = re.search(r"exponential backoff with jitter \(([\d.]+) s, ([\d.]+) s, .*?plus up to ([\d.]+) s\)", text)
    assert backoff, "docs/registries.md no longer states the backoff"
    assert float(backoff.group(1)) == retry.BACKOFF_INITIAL and float(backoff.group(2)) == 2 * retry.BACKOFF_INITIAL
    assert float(backoff.group(3)) == retry.BACKOFF_JITTER
    guarantees = " ".join(docs_text("guarantees.md").split())
    guarantee = re.search(
        r"retried\*\*, bounded \((\d+) attempts, .*? honoured up to (\d+) s\), engine pushes", guarantees
    )
    assert guarantee, "docs/guarantees.md no longer states the retry bound"
    assert (int(guarantee.group(1)), float(guarantee.group(2))) == (retry.ATTEMPTS, retry.RETRY_AFTER_CAP)
