"""A Dockerfile rewritten to stand on resolved digests, in place (every line where it was), for the
builders without named contexts; a base the mapping does not pin is refused."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.dockerfile.bases import base_images
from pipeline.dockerfile.pin import UnpinnedBaseImage, pin_bases
from pipeline.errors import VerificationFailed
from pipeline.registry.reference import parse_reference
from tests.unit.dockerfile.test_dockerfile import FORMS

# The forms whose heredoc body holds a FROM: a builder without heredocs reads it as an instruction the
# rewrite (BuildKit's reading) leaves alone, so they are refused rather than built half pinned.
HEREDOC_BODIES = {"FROM inside a heredoc body", "stage name inside a heredoc body"}


def _digest(reference: str) -> str:
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def _pins(references: list[str]) -> dict[str, str]:
    return {ref: f"{parse_reference(ref).repository}@{_digest(ref)}" for ref in references}


@pytest.mark.parametrize(("dockerfile", "build_args", "expected"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_every_form_is_pinned_on_its_own_line(dockerfile: str, build_args: dict[str, str], expected: list[str]) -> None:
    found = [item.split(" ")[0] for item in expected]
    pins = _pins(found)
    form = next(f[0] for f in FORMS if f[1] == dockerfile)
    if form in HEREDOC_BODIES:
        with pytest.raises(UnpinnedBaseImage, match="still unpinned"):
            pin_bases(dockerfile, pins, build_args, platform="linux/arm64")
        return
    pinned = pin_bases(dockerfile, pins, build_args, platform="linux/arm64")
    assert pinned.count("\n") == dockerfile.count("\n")
    again = base_images(pinned, build_args, platform="linux/arm64")
    # Each base now names its pinned digest, on the line that named the tag.
    assert [f"{base.ref} {base.line}" for base in again] == [
        f"{pins[ref]} {item.split(' ')[1]}" for ref, item in zip(found, expected, strict=True)
    ]
    # Lines without a base are untouched.
    lines = {int(item.split(" ")[1]) for item in expected}
    for number, (old, new) in enumerate(zip(dockerfile.split("\n"), pinned.split("\n"), strict=True), start=1):
        if number not in lines and not old.rstrip().endswith(("\\", "`")):
            assert old == new or any(p in new for p in pins.values()), (number, old, new)


DIGEST = "sha256:" + "a" * 64
UP = "127.0.0.1:5000/up/base"
PINS = {
    f"{UP}:1": f"{UP}@{DIGEST}",
    "docker.io/library/busybox:latest": f"docker.io/library/busybox@{'sha256:' + 'b' * 64}",
}


def test_a_multistage_file_keeps_lines_flags_stage_names_and_heredocs() -> None:
    dockerfile = (
        "# syntax=docker/dockerfile:1\n"
        f"ARG BASE={UP}:1\n"
        "FROM --platform=$BUILDPLATFORM ${BASE} AS build\n"
        "RUN --mount=type=bind,from=busybox,target=/b \\\n"
        "    --mount=type=cache,target=/c \\\n"
        "    make\n"
        "FROM \\\n"
        "   build AS again\n"
        "COPY --from=busybox /bin/sh /sh\n"
        "COPY --from=build /x /y\n"
        "RUN <<EOF\n"
        "echo FROM in a heredoc: untouched\n"
        "EOF\n"
        "FROM scratch\n"
        "COPY --chown=1:1 \\\n"
        '  --from="busybox" \\\n'
        "  /a /b\n"
    )
    pinned = pin_bases(dockerfile, PINS, {})
    busybox = PINS["docker.io/library/busybox:latest"]
    assert pinned == (
        "# syntax=docker/dockerfile:1\n"
        f"ARG BASE={UP}:1\n"
        f"FROM --platform=$BUILDPLATFORM {UP}@{DIGEST} AS build\n"
        f"RUN --mount=type=bind,from={busybox},target=/b \\\n"
        "    --mount=type=cache,target=/c \\\n"
        "    make\n"
        "FROM \\\n"
        "   build AS again\n"
        f"COPY --from={busybox} /bin/sh /sh\n"
        "COPY --from=build /x /y\n"
        "RUN <<EOF\n"
        "echo FROM in a heredoc: untouched\n"
        "EOF\n"
        "FROM scratch\n"
        "COPY --chown=1:1 \\\n"
        f"  --from={busybox} \\\n"
        "  /a /b\n"
    )


def test_build_args_platform_args_crlf_bom_and_the_escape_directive() -> None:
    dockerfile = "\ufeff# escape=`\r\nARG BASE\r\nFROM ${BASE} `\r\n  AS b\r\nRUN echo `\r\n  hi\r\n"
    pinned = pin_bases(dockerfile, PINS, {"BASE": f"{UP}:1"})
    assert pinned == f"\ufeff# escape=`\r\nARG BASE\r\nFROM {UP}@{DIGEST} `\r\n  AS b\r\nRUN echo `\r\n  hi\r\n"
    arch = pin_bases(
        "FROM 127.0.0.1:5000/up/base-${TARGETARCH}:1\n",
        {f"{UP}-s390x:1": f"{UP}-s390x@{DIGEST}"},
        {},
        platform="linux/s390x",
    )
    assert arch == f"FROM {UP}-s390x@{DIGEST}\n"


def test_own_images_and_stages_are_left_as_written() -> None:
    own = f"127.0.0.1:5000/shop/base@{DIGEST}"
    dockerfile = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY --from=127.0.0.1:5000/shop/tools:sha-1 / /\n"
    pinned = pin_bases(
        dockerfile, {}, {"BASE_IMAGE": own}, own={"127.0.0.1:5000/shop/base", "127.0.0.1:5000/shop/tools"}
    )
    assert pinned == dockerfile
    assert pin_bases("FROM scratch\nCOPY a /a\n", {}, {}) == "FROM scratch\nCOPY a /a\n"
    # `{{ images.X }}` renders to a digest: content-addressed already, left as written when not mapped.
    assert pin_bases(dockerfile, {}, {"BASE_IMAGE": own}, own={"127.0.0.1:5000/shop/tools"}) == dockerfile
    # A digest the mapping names (an index, whose child for the platform the resolver picked) is replaced.
    child = f"127.0.0.1:5000/shop/base@{'sha256:' + 'c' * 64}"
    assert pin_bases("FROM " + own + "\n", {own: child}, {}) == f"FROM {child}\n"


@pytest.mark.parametrize(
    ("dockerfile", "line", "reference"),
    [
        ("FROM scratch\nFROM 127.0.0.1:5000/up/other:1\n", 2, "127.0.0.1:5000/up/other:1"),
        ("FROM scratch\nCOPY --from=alpine:3 / /\n", 2, "docker.io/library/alpine:3"),
        ("FROM scratch\nRUN --mount=from=alpine,target=/a true\n", 2, "docker.io/library/alpine:latest"),
    ],
)
def test_a_base_the_mapping_does_not_pin_is_refused(dockerfile: str, line: int, reference: str) -> None:
    with pytest.raises(UnpinnedBaseImage) as refused:
        pin_bases(dockerfile, PINS, {})
    assert isinstance(refused.value, VerificationFailed)
    assert str(refused.value).startswith(f"Dockerfile:{line}: base image {reference}")
    assert str(refused.value).endswith("refusing to build unpinned")


def test_a_reference_split_over_lines_is_refused() -> None:
    with pytest.raises(
        UnpinnedBaseImage, match=r"Dockerfile:1: cannot write 127.0.0.1:5000/up/base:1 .*split over lines"
    ):
        pin_bases("FROM 127.0.0.1:5000/up/\\\nbase:1\n", PINS, {})
