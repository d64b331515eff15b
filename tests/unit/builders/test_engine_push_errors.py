"""Which engine push errors are worth another attempt (the engine's own wording, seen through a faulty registry)."""

from __future__ import annotations

import pytest

from pipeline.builders.classic import _is_transient


@pytest.mark.parametrize(
    "message",
    [
        'error parsing HTTP 429 response body: unexpected end of JSON input: ""',
        "error parsing HTTP 503 response body: invalid character '<' looking for beginning of value: \"<html>\"",
        "received unexpected HTTP status: 500 Internal Server Error",
        "toomanyrequests: injected fault",
        'Put "http://127.0.0.1:5000/v2/x/blobs/uploads/1": EOF',
    ],
)
def test_transient_engine_push_errors_are_retried(message: str) -> None:
    assert _is_transient(message)


@pytest.mark.parametrize(
    "message",
    ["denied: requested access to the resource is denied", "manifest invalid: manifest invalid", "HTTP 404 not found"],
)
def test_permanent_engine_push_errors_are_not(message: str) -> None:
    assert not _is_transient(message)
