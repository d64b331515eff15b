"""Which images a Dockerfile pulls, read as BuildKit reads it, and refusals of what cannot be resolved."""

from __future__ import annotations

import pytest

from pipeline.dockerfile.bases import UnresolvedBaseImage, base_images
from pipeline.dockerfile.lex import Lex, SubstitutionError
from pipeline.errors import PipelineError

DIGEST = "sha256:" + "b" * 64
HUB = "docker.io/library"

# (id, Dockerfile, build args, expected "reference line" of every external image in order)
FORMS: list[tuple[str, str, dict[str, str], list[str]]] = [
    ("plain", "FROM alpine:3\n", {}, [f"{HUB}/alpine:3 1"]),
    ("no tag means latest", "FROM r.example/base\n", {}, ["r.example/base:latest 1"]),
    ("digest", f"FROM r.example/base@{DIGEST}\n", {}, [f"r.example/base@{DIGEST} 1"]),
    ("lowercase instruction", "from alpine:3\n", {}, [f"{HUB}/alpine:3 1"]),
    ("mixed case AS", "FROM alpine:3 aS build\nFROM build\n", {}, [f"{HUB}/alpine:3 1"]),
    ("tab after FROM", "FROM\talpine:3\n", {}, [f"{HUB}/alpine:3 1"]),
    ("tabs and spaces between words", "FROM \t r.example/b:1 \t AS \t b\n", {}, ["r.example/b:1 1"]),
    ("indented instruction", "   \tFROM r.example/b:1\n", {}, ["r.example/b:1 1"]),
    ("CRLF line ends", "FROM r.example/a:1\r\nFROM r.example/b:1\r\n", {}, ["r.example/a:1 1", "r.example/b:1 2"]),
    ("byte order mark", "\ufeffFROM r.example/a:1\n", {}, ["r.example/a:1 1"]),
    # --- substitution ---
    ("${V:-d}, V unset", "ARG BASE\nFROM ${BASE:-r.example/x:1}\n", {}, ["r.example/x:1 2"]),
    ("${V:-d}, V empty", "ARG BASE\nFROM ${BASE:-r.example/x:1}\n", {"BASE": ""}, ["r.example/x:1 2"]),
    ("${V:-d}, V given", "ARG BASE\nFROM ${BASE:-r.example/x:1}\n", {"BASE": "r.example/y:2"}, ["r.example/y:2 2"]),
    ("${V-d}, V unset", "ARG BASE\nFROM ${BASE-r.example/x:1}\n", {}, ["r.example/x:1 2"]),
    ("${V:+x}, V unset", "ARG SLIM\nFROM r.example/base${SLIM:+-slim}:1\n", {}, ["r.example/base:1 2"]),
    ("${V:+x}, V set", "ARG SLIM\nFROM r.example/base${SLIM:+-slim}:1\n", {"SLIM": "y"}, ["r.example/base-slim:1 2"]),
    ("${V+x}, V empty", "ARG SLIM\nFROM r.example/base${SLIM+-slim}:1\n", {"SLIM": ""}, ["r.example/base-slim:1 2"]),
    ("$V", "ARG B=r.example/b:2\nFROM $B\n", {}, ["r.example/b:2 2"]),
    ("${V}", "ARG B=r.example/b:2\nFROM ${B}\n", {}, ["r.example/b:2 2"]),
    ("$V then text", "ARG REG=r.example\nFROM $REG/app:1\n", {}, ["r.example/app:1 2"]),
    ("${V%pattern}", "ARG V=r.example/app:1.2\nFROM ${V%:*}:2\n", {}, ["r.example/app:2 2"]),
    ("${V##pattern}", "ARG V=x/y/r.example/app\nFROM r.example/${V##*/}:1\n", {}, ["r.example/app:1 2"]),
    ("${V/p/r}", "ARG V=r.example/app-dev\nFROM ${V/-dev/-prod}:1\n", {}, ["r.example/app-prod:1 2"]),
    ("${V:?m}, V set", "ARG V=r.example/a:1\nFROM ${V:?setV}\n", {}, ["r.example/a:1 2"]),
    ("default names an earlier ARG", "ARG REG=r.example\nARG IMG=$REG/app:1\nFROM ${IMG}\n", {}, ["r.example/app:1 3"]),
    ("build arg beats the default", "ARG B=r.example/b:1\nFROM $B\n", {"B": "r.example/b:9"}, ["r.example/b:9 2"]),
    ("build arg not declared by ARG", "FROM ${B:-r.example/dflt:1}\n", {"B": "r.example/b:9"}, ["r.example/dflt:1 1"]),
    ("several ARGs on one line", "ARG REG=r.example NAME=app\nFROM $REG/$NAME:1\n", {}, ["r.example/app:1 2"]),
    ("quoted ARG default", 'ARG B="r.example/q:1"\nFROM $B\n', {}, ["r.example/q:1 2"]),
    (
        "ARG after a FROM is not global",
        "FROM alpine:3 AS a\nARG X=r.example/late:1\nFROM ${X:-r.example/global:1}\n",
        {},
        [f"{HUB}/alpine:3 1", "r.example/global:1 3"],
    ),
    ("double quotes", 'ARG T=1\nFROM "r.example/a:$T"\n', {}, ["r.example/a:1 2"]),
    ("escaped character", "FROM r.example/a\\:1\n", {}, ["r.example/a:1 1"]),
    ("platform ARG", "FROM r.example/base-${TARGETARCH}:1\n", {}, ["r.example/base-arm64:1 1"]),
    (
        "platform ARG from a build arg",
        "FROM r.example/b-${TARGETARCH}:1\n",
        {"TARGETARCH": "s390x"},
        ["r.example/b-s390x:1 1"],
    ),
    # --- lines ---
    ("continuation", "FROM \\\n  r.example/c:1 \\\n  AS c\n", {}, ["r.example/c:1 1"]),
    ("comment and blank inside a continuation", "FROM \\\n# note\n\n r.example/c:2\n", {}, ["r.example/c:2 1"]),
    (
        "comment lines",
        "# FROM r.example/not\n  # FROM r.example/nor\nFROM r.example/yes:1\n",
        {},
        ["r.example/yes:1 3"],
    ),
    ("escape directive", "# escape=`\nFROM r.example/w:1 `\n  AS w\nFROM w\n", {}, ["r.example/w:1 2"]),
    ("escape directive, escaped character", "# escape=`\nFROM r.example/w`:1\n", {}, ["r.example/w:1 2"]),
    (
        "directive after a comment is a comment",
        "# hello\n# escape=`\nFROM r.example/a:1 \\\n  AS a\n",
        {},
        ["r.example/a:1 3"],
    ),
    # --- flags, stages ---
    ("--platform before the image", "FROM --platform=linux/amd64 r.example/p:1\n", {}, ["r.example/p:1 1"]),
    ("--platform with an ARG", "FROM --platform=$BUILDPLATFORM r.example/p:1 AS b\n", {}, ["r.example/p:1 1"]),
    ("quoted --platform", 'FROM --platform="linux/amd64" r.example/p:1\n', {}, ["r.example/p:1 1"]),
    ("tab after --platform", "FROM\t--platform=linux/amd64\tr.example/p:1\n", {}, ["r.example/p:1 1"]),
    ("stage is not external", "FROM r.example/b:1 AS build\nFROM build\n", {}, ["r.example/b:1 1"]),
    ("stage named through an ARG", "ARG S=build\nFROM r.example/b:1 AS build\nFROM $S\n", {}, ["r.example/b:1 2"]),
    ("scratch", "FROM scratch\nCOPY a /a\n", {}, []),
    ("a stage's own name is not itself", "FROM alpine AS alpine\n", {}, [f"{HUB}/alpine:latest 1"]),
    # --- COPY --from ---
    (
        "COPY --from stage index, name and image",
        "FROM r.example/a:1 AS a\nFROM scratch\nCOPY --from=0 /x /x\nCOPY --from=A /y /y\n"
        "COPY --from=r.example/t:2 /z /z\n",
        {},
        ["r.example/a:1 1", "r.example/t:2 5"],
    ),
    (
        "COPY --from after other flags",
        "FROM scratch\nCOPY --chown=1:1 --from=r.example/t:3 / /\n",
        {},
        ["r.example/t:3 2"],
    ),
    ("COPY --from quoted", 'FROM scratch\nCOPY --from="r.example/t:4" / /\n', {}, ["r.example/t:4 2"]),
    ("COPY --from JSON form", 'FROM scratch\nCOPY --from=r.example/j:1 ["a", "b"]\n', {}, ["r.example/j:1 2"]),
    ("COPY --from= empty is the context", "FROM scratch\nCOPY --from= a /a\n", {}, []),
    (
        "COPY --from a later stage",
        "FROM scratch\nCOPY --from=later / /\nFROM scratch AS later\n",
        {},
        [f"{HUB}/later:latest 2"],
    ),
    ("ONBUILD is for builds on this image", "FROM scratch\nONBUILD COPY --from=r.example/o:1 / /\n", {}, []),
    # --- RUN --mount ---
    (
        "RUN --mount from an image",
        "FROM scratch\nRUN --mount=type=bind,from=r.example/m:1,target=/m true\n",
        {},
        ["r.example/m:1 2"],
    ),
    (
        "RUN --mount FROM= key in capitals, second flag",
        "FROM scratch\nRUN --network=none --mount=type=cache,target=/c,FROM=r.example/m:2 true\n",
        {},
        ["r.example/m:2 2"],
    ),
    ("RUN --mount from a stage", "FROM scratch AS s\nRUN --mount=from=s,target=/s true\n", {}, []),
    ("RUN --mount from a later stage", "FROM scratch\nRUN --mount=from=t,target=/t true\nFROM scratch AS t\n", {}, []),
    (
        "RUN --mount quoted csv",
        'FROM scratch\nRUN --mount="type=bind,from=r.example/m:3" true\n',
        {},
        ["r.example/m:3 2"],
    ),
    ("RUN --mount without from", "FROM scratch\nRUN --mount=type=cache,target=/c true\n", {}, []),
    # --- heredocs: a body never hides a FROM, nor makes an image a stage ---
    (
        "FROM after a heredoc",
        "FROM scratch\nRUN <<EOF\necho hi\nEOF\nFROM r.example/after:1\n",
        {},
        ["r.example/after:1 5"],
    ),
    (
        "FROM inside a heredoc body",
        "FROM scratch\nCOPY <<-EOF /f\n\tFROM r.example/body:1\n\tEOF\n",
        {},
        ["r.example/body:1 3"],
    ),
    (
        "stage name inside a heredoc body",
        "FROM scratch\nRUN <<EOF\nFROM r.example/x:1 AS trusted\nEOF\nFROM trusted\n",
        {},
        [f"{HUB}/trusted:latest 5", "r.example/x:1 3"],
    ),
    (
        "continued line inside a heredoc body",
        "FROM scratch\nRUN <<EOF\necho \\\nEOF\nFROM r.example/after:2\n",
        {},
        ["r.example/after:2 5"],
    ),
]


@pytest.mark.parametrize(("dockerfile", "build_args", "expected"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_base_images(dockerfile: str, build_args: dict[str, str], expected: list[str]) -> None:
    found = base_images(dockerfile, build_args, platform="linux/arm64")
    assert [f"{base.ref} {base.line}" for base in found] == expected


# (id, Dockerfile, build args, expected line, expected text of the reason)
REFUSALS: list[tuple[str, str, dict[str, str], int, str]] = [
    ("unset, no default", "ARG BASE\nFROM ${BASE}\n", {}, 2, "(BASE is not set)"),
    ("$V unset", "ARG BASE\nFROM $BASE\n", {}, 2, "(BASE is not set)"),
    ("build arg without ARG", "FROM ${BASE}\n", {"BASE": "r.example/b:1"}, 1, "(BASE is not set)"),
    ("${V-d} with V empty", "ARG B\nFROM ${B-r.example/x}\n", {"B": ""}, 2, "(it is empty)"),
    ("partly unset", "ARG T\nFROM r.example/a:${T}\n", {}, 2, "'r.example/a:' is not an image reference"),
    ("${V:?m}", "ARG B\nFROM ${B:?giveB}\n", {}, 2, "B: giveB"),
    ("missing brace", "FROM r.example/${\n", {}, 1, "missing '}'"),
    ("unclosed brace", "FROM ${B\n", {}, 1, "unsupported modifier"),
    ("bad substitution", "FROM ${}\n", {}, 1, "bad substitution"),
    ("unterminated quote", "FROM 'r.example/a:1\n", {}, 1, "matching single-quote"),
    ("single quotes do not expand", "ARG T=1\nFROM 'r.example/a:$T'\n", {}, 2, "not an image reference"),
    ("escaped dollar", "ARG T=1\nFROM r.example/a:\\$T\n", {}, 2, "not an image reference"),
    ("not a reference", "FROM Alpine\n", {}, 1, "'Alpine' is not an image reference"),
    ("AS without a name", "FROM alpine AS\n", {}, 1, "FROM takes one image"),
    ("flag after the image", "FROM alpine --platform=linux/amd64\n", {}, 1, "FROM takes one image"),
    ("invalid stage name", "FROM alpine AS 1st\n", {}, 1, "'1st' is not a valid stage name"),
    ("COPY --from with a variable", "FROM scratch\nARG X=r.example/t\nCOPY --from=${X} / /\n", {}, 3, "--from"),
    ("COPY --from without a value", "FROM scratch\nCOPY --from / /\n", {}, 2, "--from has no value"),
    ("COPY --from a later index", "FROM scratch\nCOPY --from=1 / /\nFROM scratch\n", {}, 2, "earlier stage"),
    ("COPY --from its own index", "FROM scratch\nCOPY --from=0 / /\n", {}, 2, "earlier stage"),
    ("mount from with a variable", "FROM scratch\nRUN --mount=from=$IMG,target=/x true\n", {}, 2, "from="),
    ("bad escape directive", "# escape=x\nFROM alpine\n", {}, 1, "invalid escape token"),
    ("ARG default that does not parse", "ARG B=${\nFROM alpine\n", {}, 1, "missing '}'"),
    ("continued FROM, line of its start", "FROM alpine:3\n\nFROM \\\n  ${NOPE}\n", {}, 3, "NOPE is not set"),
]


@pytest.mark.parametrize(
    ("dockerfile", "build_args", "line", "why"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_unresolvable_base_is_refused(dockerfile: str, build_args: dict[str, str], line: int, why: str) -> None:
    with pytest.raises(UnresolvedBaseImage) as refused:
        base_images(dockerfile, build_args, source="images/app/Dockerfile")
    message = str(refused.value)
    assert message.startswith(f"images/app/Dockerfile:{line}: ")
    assert why in message
    assert message.endswith("; refusing to build unchecked")


def test_refusal_message_and_exit_code() -> None:
    with pytest.raises(PipelineError) as refused:
        base_images("# base image\nARG BASE\nFROM ${BASE}\n", {}, source="images/app/Dockerfile")
    assert str(refused.value) == (
        "images/app/Dockerfile:3: FROM ${BASE}: cannot resolve the base image (BASE is not set); "
        "refusing to build unchecked"
    )
    assert refused.value.exit_code == 1


# (word, environment, expansion) as BuildKit's shell lexer expands them
WORDS: list[tuple[str, dict[str, str], str]] = [
    ("$V", {"V": "x"}, "x"),
    ("${V}y", {"V": "x"}, "xy"),
    ("$Vy", {"V": "x", "Vy": "z"}, "z"),
    ("${V:-d}", {}, "d"),
    ("${V:-d}", {"V": ""}, "d"),
    ("${V-d}", {"V": ""}, ""),
    ("${V:-$W}", {"W": "w"}, "w"),
    ("${V:-'a b'}", {}, "a b"),
    ("${V:+x}", {"V": "v"}, "x"),
    ("${V:+x}", {"V": ""}, ""),
    ("${V+x}", {"V": ""}, "x"),
    ("${V#*/}", {"V": "a/b/c"}, "b/c"),
    ("${V##*/}", {"V": "a/b/c"}, "c"),
    ("${V%/*}", {"V": "a/b/c"}, "a/b"),
    ("${V%%/*}", {"V": "a/b/c"}, "a"),
    ("${V/b/x}", {"V": "abab"}, "axab"),
    ("${V//b/x}", {"V": "abab"}, "axax"),
    ("\\$V", {"V": "x"}, "$V"),
    ("'$V'", {"V": "x"}, "$V"),
    ('"$V"', {"V": "x"}, "x"),
    ('"a\\"b"', {}, 'a"b'),
    ('"a\\b"', {}, "a\\b"),
    ("a$", {}, "a$"),
    ("$1x", {}, "x"),
    ("a\\", {}, "a"),
]


@pytest.mark.parametrize(("word", "env", "expected"), WORDS)
def test_lexer_expands_like_buildkit(word: str, env: dict[str, str], expected: str) -> None:
    assert Lex().expand(word, env).result == expected


@pytest.mark.parametrize("word", ["${", "${}", "${:x}", "${V:x}", "${V:#x}", "${V", "'a", '"a', "${V:?}"])
def test_lexer_refuses_what_buildkit_refuses(word: str) -> None:
    with pytest.raises(SubstitutionError):
        Lex().expand(word, {})
