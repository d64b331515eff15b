"""Config values that reach a command line, past the grammar the schema gives them: an engine's host is a
DOCKER_HOST URL that no flag hides in, and build args and labels (each one argument of `docker buildx
build`) stay within what a command line holds."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from pipeline.config.positions import KeyPath, PositionIndex
from pipeline.config.resolve import declared_variants
from pipeline.config.schema import ConfigSpec, VariantSpec
from pipeline.errors import ConfigProblem

# Linux holds one argument of at most 128 KiB (MAX_ARG_STRLEN) and all of them within ARG_MAX (2 MiB
# with the usual 8 MiB stack, the environment included): a value well under the first, an image's whole
# set well under the second.
MAX_VALUE_BYTES = 64 * 1024
MAX_IMAGE_BYTES = 256 * 1024
HOST_SCHEMES = ("unix", "tcp", "ssh", "npipe")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*)|[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _shown(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MiB"
    return f"{count / 1024:.1f} KiB" if count >= 1024 else f"{count} bytes"


def host_problem(host: str) -> str | None:
    """Why `host` is not an engine's DOCKER_HOST URL (None: it is one): unix://PATH, npipe://PATH,
    tcp://HOST[:PORT][/PATH] or ssh://[USER@]HOST[:PORT], with no space, control character or leading
    `-` anywhere a program would take it for an option."""
    not_url = f"'{_shown(host)}' is not a Docker host URL ({', '.join(s + '://' for s in HOST_SCHEMES)})"
    if any(c.isspace() or not c.isprintable() for c in host):
        return f"{not_url}: it has a space or a control character"
    try:
        parts = urlsplit(host)
        port = parts.port
    except ValueError as exc:
        return f"{not_url}: {exc}"
    if parts.scheme not in HOST_SCHEMES or "://" not in host:
        return not_url
    if parts.scheme in ("unix", "npipe"):
        path = parts.netloc + parts.path
        if not path or path.startswith("-"):
            return f"{not_url}: {parts.scheme}:// needs the socket's path, e.g. unix:///var/run/docker.sock"
        return None
    if not parts.hostname or not _HOSTNAME.fullmatch(parts.hostname):
        return f"{not_url}: {parts.scheme}:// needs a host name or address"
    if parts.query or parts.fragment or port == 0:
        return f"{not_url}: a host URL has no query or fragment, and a port from 1 to 65535"
    if parts.password is not None:
        return f"{not_url}: no password in a host URL (this file is committed; ssh uses its keys)"
    if parts.scheme == "ssh":
        if parts.username is not None and not _USER.fullmatch(parts.username):
            return f"{not_url}: '{_shown(parts.username)}' is not a user name"
        if parts.path not in ("", "/"):
            return f"{not_url}: ssh:// takes [USER@]HOST[:PORT], no path"
    elif parts.username is not None:
        return f"{not_url}: tcp:// takes no user (TLS certificates go in cert_path)"
    return None


def _sized(values: Mapping[str, str], at: KeyPath, what: str) -> Iterator[tuple[KeyPath, str]]:
    for key, value in values.items():
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_VALUE_BYTES:
            yield (
                (*at, key),
                f"this {what} value is {_size(size)}; a value is at most {MAX_VALUE_BYTES // 1024} KiB, as it is "
                "passed as one command-line argument (put larger data in a file of the build context)",
            )


def _argument_bytes(values: Mapping[str, str]) -> int:
    """The bytes of `--build-arg KEY=VALUE` (or `--label`) as argv holds them: two arguments, each ending
    with a NUL."""
    flag = len("--build-arg") + 1
    return sum(flag + len(f"{key}={value}".encode("utf-8", "surrogatepass")) + 1 for key, value in values.items())


def argument_problems(spec: ConfigSpec, positions: PositionIndex) -> list[ConfigProblem]:
    """Every engine host that is not a DOCKER_HOST URL and every build arg or label too large for a
    command line (one value, and an image's build args and labels together)."""
    found: list[tuple[KeyPath, str, bool]] = []
    for name, engine in spec.engines.items():
        problem = host_problem(engine.host) if engine.host is not None else None
        if problem:
            found.append((("engines", name, "host"), problem, False))
    owners: list[tuple[KeyPath, VariantSpec]] = [(("variants", n), v) for n, v in (spec.variants or {}).items()]
    for pipeline_name, pipeline in spec.pipelines.items():
        at: KeyPath = ("pipelines", pipeline_name)
        owners += [((*at, "variants", n), v) for n, v in (pipeline.variants or {}).items()]
        for image_name, image in pipeline.images.items():
            img: KeyPath = (*at, "images", image_name)
            owners += [((*img, "variants", n), v) for n, v in (image.variants or {}).items()]
            too_large = [*_sized(image.build_args, (*img, "build_args"), "build arg")]
            too_large += _sized(image.labels, (*img, "labels"), "label")
            found += [(where, problem, False) for where, problem in too_large]
            variants = [v.spec.build_args for v in declared_variants(spec, pipeline_name, image_name)] or [{}]
            whole = _argument_bytes(image.labels) + max(_argument_bytes({**image.build_args, **v}) for v in variants)
            if whole > MAX_IMAGE_BYTES and not too_large:  # one value too large is that value's mistake
                found.append(
                    (
                        img,
                        f"its build args and labels together are {_size(whole)} on the command line; at most "
                        f"{MAX_IMAGE_BYTES // 1024} KiB (put larger data in a file of the build context)",
                        True,
                    )
                )
    for where, variant in owners:
        found += [(w, p, False) for w, p in _sized(variant.build_args, (*where, "build_args"), "build arg")]
    return [positions.problem(where, message, at_key=at_key) for where, message, at_key in found]
