from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.registry.reference import is_loopback_host, parse_reference, parse_repository, validate_tag


@pytest.mark.parametrize(
    ("text", "registry", "path"),
    [
        ("127.0.0.1:5000/demo/app", "127.0.0.1:5000", "demo/app"),
        ("localhost/app", "localhost", "app"),
        ("myacr.azurecr.io/team/app", "myacr.azurecr.io", "team/app"),
        ("busybox", "docker.io", "library/busybox"),
        ("org/app", "docker.io", "org/app"),
        ("[::1]:5000/a", "[::1]:5000", "a"),
        ("r.io/a__b/c-d.e", "r.io", "a__b/c-d.e"),
    ],
)
def test_parse_repository(text: str, registry: str, path: str) -> None:
    repo = parse_repository(text)
    assert (repo.registry, repo.path) == (registry, path)


@pytest.mark.parametrize("text", ["r.io/App", "r.io/a//b", "r.io/-a", "r.io/a:tag", "r.io/a@sha256:00", "", "r.io/a_"])
def test_invalid_repositories(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_repository(text)


def test_parse_reference_with_tag_and_digest() -> None:
    digest = "sha256:" + "a" * 64
    ref = parse_reference(f"127.0.0.1:5000/demo/app:1.2.3@{digest}")
    assert ref.repository.registry == "127.0.0.1:5000"
    assert ref.tag == "1.2.3"
    assert ref.digest == digest
    assert str(ref) == f"127.0.0.1:5000/demo/app:1.2.3@{digest}"


@pytest.mark.parametrize("tag", [".hidden", "-x", "a+b", "x" * 129, ""])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(ConfigError):
        validate_tag(tag)


def test_loopback_detection() -> None:
    assert is_loopback_host("127.0.0.1:5000")
    assert is_loopback_host("127.8.9.1")
    assert is_loopback_host("localhost:5000")
    assert is_loopback_host("[::1]:5000")
    assert not is_loopback_host("10.0.0.1:5000")
    assert not is_loopback_host("registry.example.com")
