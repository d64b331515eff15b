"""buildx stands on the run's resolved base digests: as named contexts where the builder's BuildKit takes
them (the name as the Dockerfile frontend matches it), else in a copy of the Dockerfile with the digests
written in, line numbers kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.builders.buildx import BuildxBuilder, _takes_named_contexts, engine_buildkit
from pipeline.dockerfile.bases import UnresolvedBaseImage
from pipeline.dockerfile.pin import pin_bases
from pipeline.plan import Engine
from tests.helpers import build_request

UP = "sha256:" + "a" * 64
TOOLS = "sha256:" + "b" * 64
BUSYBOX = "sha256:" + "c" * 64
PINNED = {
    "127.0.0.1:5000/up/base:1": f"127.0.0.1:5000/up/base@{UP}",
    "127.0.0.1:5000/up/tools:2": f"127.0.0.1:5000/up/tools@{TOOLS}",
    "docker.io/library/busybox:latest": f"docker.io/library/busybox@{BUSYBOX}",
}


def test_named_contexts_name_each_base_as_resolved(tmp_path: Path) -> None:
    request = build_request(tmp_path, "r.example/p/app:sha-1", bases=PINNED)
    argv = BuildxBuilder({}, Engine("default"), None).command(request, tmp_path / "meta.json")
    contexts = [argv[i + 1] for i, word in enumerate(argv) if word == "--build-context"]
    # buildx and the frontend both normalize the name (docker.io/library/busybox:latest -> busybox).
    assert contexts == [f"{ref}=docker-image://{pinned}" for ref, pinned in sorted(PINNED.items())]
    written = BuildxBuilder({}, Engine("default"), None).command(
        request, tmp_path / "meta.json", tmp_path / "pinned" / "Dockerfile", contexts=False
    )
    assert "--build-context" not in written
    assert written[written.index("--file") + 1] == str(tmp_path / "pinned" / "Dockerfile")


def test_buildkit_takes_named_contexts_from_0_10() -> None:
    assert not _takes_named_contexts((0, 8))  # Docker 20.10's own BuildKit refuses the frontend capability
    assert _takes_named_contexts((0, 10)) and _takes_named_contexts((0, 13))
    assert not _takes_named_contexts(None)


def test_a_pinned_dockerfile_has_each_base_written_as_its_digest_where_it_is_read() -> None:
    dockerfile = (
        "ARG BASE=127.0.0.1:5000/up/base:1\n"
        "FROM --platform=$TARGETPLATFORM ${BASE} AS build\n"
        "COPY --from=127.0.0.1:5000/up/tools:2 /bin/tool /bin/tool\n"
        "RUN --mount=type=bind,from=busybox,target=/bb \\\n"
        "    /bb/bin/true\n"
        "FROM build\n"
        "FROM busybox\n"
    )
    assert pin_bases(dockerfile, PINNED, {}) == (
        "ARG BASE=127.0.0.1:5000/up/base:1\n"
        f"FROM --platform=$TARGETPLATFORM 127.0.0.1:5000/up/base@{UP} AS build\n"
        f"COPY --from=127.0.0.1:5000/up/tools@{TOOLS} /bin/tool /bin/tool\n"
        f"RUN --mount=type=bind,from=docker.io/library/busybox@{BUSYBOX},target=/bb \\\n"
        "    /bb/bin/true\n"
        "FROM build\n"
        f"FROM docker.io/library/busybox@{BUSYBOX}\n"
    )
    # A build arg that names another base: that one is pinned, as the build reads it.
    assert pin_bases("ARG BASE\nFROM $BASE\n", PINNED, {"BASE": "127.0.0.1:5000/up/tools:2"}) == (
        f"ARG BASE\nFROM 127.0.0.1:5000/up/tools@{TOOLS}\n"
    )


def test_a_base_that_cannot_be_written_in_is_refused() -> None:
    # The image word split over a continuation: not rewritten silently, refused.
    with pytest.raises(UnresolvedBaseImage, match=r"Dockerfile:1: cannot write 127.0.0.1:5000/up/base:1"):
        pin_bases("FROM 127.0.0.1:5000/up/\\\nbase:1\n", PINNED, {})


def test_an_engine_that_hides_its_buildkit_version_is_judged_by_its_own_version() -> None:
    # Debian's docker.io 26 reports its built-in BuildKit as v0.0.0+unknown; Docker 23+ vendors v0.11+.
    assert engine_buildkit("26.1.5+dfsg1") == (0, 11) and _takes_named_contexts(engine_buildkit("23.0.0"))
    assert engine_buildkit("20.10.24+dfsg1") is None and engine_buildkit(None) is None
