"""How provenance names sources and images: credentials stripped, git remotes as URIs, images as purls."""

from __future__ import annotations

import pytest
from packageurl import PackageURL

from pipeline.attest.uris import git_source_uri, image_purl
from pipeline.common.urls import strip_credentials

DIGEST = "sha256:" + "1f" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:token@host/x.git", "https://host/x.git"),
        ("https://ghp_tokenonly@github.com/org/x.git", "https://github.com/org/x.git"),
        ("https://u:p@ss@host/x.git", "https://host/x.git"),  # a raw `@` in the password
        ("git@host:x/y.git", "git@host:x/y.git"),  # scp-like: a user name, no credential
        ("ssh://git@host/x/y.git", "ssh://git@host/x/y.git"),
        ("ssh://git:secret@host/x/y.git", "ssh://host/x/y.git"),
        ("git+ssh://git:secret@host/x/y.git", "git+ssh://host/x/y.git"),
        ("https://host/x@y", "https://host/x@y"),  # an `@` in the path is not userinfo
        (
            "--index-url https://ci:pw@pypi.example/simple --extra-index-url http://a:b@mirror/simple",
            "--index-url https://pypi.example/simple --extra-index-url http://mirror/simple",
        ),
    ],
)
def test_strip_credentials(text: str, expected: str) -> None:
    assert strip_credentials(text) == expected


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("https://host/x.git", "https://host/x.git"),
        ("https://user:token@Git.Example.COM/Org/X.git", "https://git.example.com/Org/X.git"),
        ("git@github.com:org/repo.git", "ssh://git@github.com/org/repo.git"),
        ("github.com:org/repo.git", "ssh://github.com/org/repo.git"),
        ("/srv/git/repo.git", "file:///srv/git/repo.git"),
        ("file:///srv/git/repo.git", "file:///srv/git/repo.git"),
        ("../repo.git", None),
    ],
)
def test_git_source_uri(remote: str, expected: str | None) -> None:
    assert git_source_uri(remote) == expected


@pytest.mark.parametrize(
    ("reference", "platform", "expected"),
    [
        ("debian:12", None, "pkg:docker/debian@12"),
        (f"docker.io/library/debian@{DIGEST}", None, f"pkg:docker/debian@{DIGEST}"),
        ("bitnami/redis:7.2", "linux/arm64", "pkg:docker/bitnami/redis@7.2?platform=linux/arm64"),
        ("ghcr.io/org/app:1.0", None, "pkg:docker/org/app@1.0?repository_url=ghcr.io"),
        (
            f"localhost:5000/team/base:2.1@{DIGEST}",
            "linux/amd64",
            "pkg:docker/team/base@2.1?platform=linux/amd64&repository_url=localhost:5000",
        ),
        ("not a reference", None, None),
    ],
)
def test_image_purl(reference: str, platform: str | None, expected: str | None) -> None:
    purl = image_purl(reference, platform)
    assert purl == expected
    if purl is not None:  # what a purl reader (the reference implementation) gets back
        parsed = PackageURL.from_string(purl)
        assert (parsed.type, parsed.qualifiers.get("platform")) == ("docker", platform)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://host/x?access_token=qsecret", "https://host/x?access_token=REDACTED"),
        (
            "https://s3.example/b/o?X-Amz-Signature=abc&X-Amz-Credential=AKIA&part=1",
            "https://s3.example/b/o?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&part=1",
        ),
        (
            "https://acct.blob.core.windows.net/c/b?sv=2020&sig=s3cr3t%2B",
            "https://acct.blob.core.windows.net/c/b?sv=2020&sig=REDACTED",
        ),
        (
            "--index-url https://u:p@pypi.example/simple?apikey=k1 --extra",
            "--index-url https://pypi.example/simple?apikey=REDACTED --extra",
        ),
        ("https://host/search?q=token&page=2", "https://host/search?q=token&page=2"),
    ],
)
def test_credentials_in_query_strings_are_redacted(text: str, expected: str) -> None:
    assert strip_credentials(text) == expected
