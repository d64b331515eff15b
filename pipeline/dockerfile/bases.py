"""The external images a Dockerfile builds on, resolved as the builder resolves them; what cannot be
resolved is refused, never skipped. Pure."""

from __future__ import annotations

import csv
import platform as host
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.dockerfile.lex import Lex, SubstitutionError
from pipeline.dockerfile.parse import Dockerfile, DockerfileSyntaxError, Instruction, parse, parse_words
from pipeline.errors import ConfigError, VerificationFailed
from pipeline.registry.reference import ImageRef, parse_reference

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*")
_STAGE_INDEX = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.Atoi takes
SCRATCH = "scratch"
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386", "i686": "386"}
_SHOWN = 100


class UnresolvedBaseImage(VerificationFailed):
    """A FROM, COPY --from or RUN --mount from= names an image that cannot be worked out before the build."""


@dataclass(frozen=True)
class BaseImage:
    ref: ImageRef
    line: int  # 1-based line of the instruction in the Dockerfile
    # A stage `FROM --platform=...` names its own platform (`$BUILDPLATFORM` for a cross-compiling stage):
    # the builder picks that platform's image from the reference, not the build's.
    stage_platform: bool = False


def shown_path(path: Path) -> str:
    """The Dockerfile as the user would type it from here: relative when under the working directory."""
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def dockerfile_text(path: Path) -> str:
    """A Dockerfile's text as the engine reads it: bytes that are not UTF-8 (a comment in Latin-1) do not
    stop a build, so they stop nothing that reads the same file (the base resolution, the pinned copy,
    the trust gate, provenance). Raises OSError."""
    return path.read_bytes().decode("utf-8", errors="replace")


def default_platform() -> str:
    """The platform the local engine builds for when none is given (its BUILDPLATFORM and TARGETPLATFORM)."""
    machine = host.machine().lower()
    if machine.startswith("armv"):
        return f"linux/arm/v{machine[4]}"
    return f"linux/{_GOARCH.get(machine, machine)}"


def platform_args(target_platform: str, build_platform: str, target: str | None) -> dict[str, str]:
    """The ARGs BuildKit defines in the global scope before the first FROM."""
    args = {"TARGETSTAGE": target or "default"}
    for prefix, value in (("BUILD", build_platform), ("TARGET", target_platform)):
        os_name, _, rest = value.partition("/")
        arch, _, variant = rest.partition("/")
        args |= {
            f"{prefix}PLATFORM": value,
            f"{prefix}OS": os_name,
            f"{prefix}OSVERSION": "",
            f"{prefix}ARCH": arch,
            f"{prefix}VARIANT": variant,
        }
    return args


def base_images(
    dockerfile: str,
    build_args: Mapping[str, str],
    *,
    platform: str | None = None,
    target: str | None = None,
    source: str = "Dockerfile",
) -> list[BaseImage]:
    """Every external image in FROM, COPY --from and RUN --mount from= (not `scratch`, not a stage), with
    ARG defaults, build args and the platform ARGs substituted. Raise UnresolvedBaseImage, naming
    `source`:line, for one that does not resolve to a valid reference.

    Read once with heredoc bodies skipped (BuildKit) and, if that differs, once with every line an
    instruction (older builders): a builder of either kind pulls nothing that is not listed."""
    env = _environment(build_args, platform, target)
    found: dict[str, BaseImage] = {}
    readings: list[Dockerfile] = []
    for heredocs in (True, False):
        reading = _parse(dockerfile, heredocs, source)
        if reading not in readings:
            readings.append(reading)
            for base in _Resolver(reading, env, build_args, source).bases():
                seen = found.setdefault(str(base.ref), base)
                if base.stage_platform and not seen.stage_platform:
                    found[str(base.ref)] = replace(seen, stage_platform=True)
    return list(found.values())


def bases_by_instruction(
    dockerfile: str,
    build_args: Mapping[str, str],
    *,
    platform: str | None = None,
    target: str | None = None,
    source: str = "Dockerfile",
) -> tuple[str, list[tuple[Instruction, list[BaseImage]]]]:
    """BuildKit's reading of the file (heredoc bodies skipped): its escape character, and each instruction
    with the external images it names, as base_images finds them."""
    reading = _parse(dockerfile, True, source)
    resolver = _Resolver(reading, _environment(build_args, platform, target), build_args, source)
    return reading.escape, [(instruction, resolver.read(instruction)) for instruction in reading.instructions]


def _environment(build_args: Mapping[str, str], platform: str | None, target: str | None) -> dict[str, str]:
    build_platform = default_platform()
    defaults = platform_args(platform or build_platform, build_platform, target)
    return {**defaults, **{k: v for k, v in build_args.items() if k in defaults}}


def _parse(dockerfile: str, heredocs: bool, source: str) -> Dockerfile:
    try:
        return parse(dockerfile, heredocs=heredocs)
    except DockerfileSyntaxError as exc:
        raise UnresolvedBaseImage(f"{source}:{exc.line}: {exc}; refusing to build unchecked") from None


def normal_reference(text: str) -> str | None:
    """How base_images names the image `text` (`:latest` written out when it names no tag and no
    digest); None when it is no image reference."""
    try:
        ref = parse_reference(text)
    except ConfigError:
        return None
    return str(ref if ref.tag or ref.digest else replace(ref, tag="latest"))


class _Resolver:
    def __init__(self, dockerfile: Dockerfile, env: Mapping[str, str], build_args: Mapping[str, str], source: str):
        self.dockerfile = dockerfile
        self.lex = Lex(dockerfile.escape)
        self.global_args = dict(env)
        self.build_args = build_args
        self.source = source
        self.stages: list[str | None] = []  # names of the stages so far, by index
        self.all_stages = {name for name in map(_stage_name, dockerfile.instructions) if name}

    def bases(self) -> list[BaseImage]:
        return [base for instruction in self.dockerfile.instructions for base in self.read(instruction)]

    def read(self, instruction: Instruction) -> list[BaseImage]:
        """The external images of one instruction; the instructions are read in order (ARGs, stages)."""
        if instruction.keyword == "arg" and not self.stages:
            self._global_arg(instruction)
        elif instruction.keyword == "from":
            return self._from(instruction)
        elif instruction.keyword == "copy":
            return self._copy_from(instruction)
        elif instruction.keyword == "run":
            return self._mount_from(instruction)
        return []

    def _refuse(self, instruction: Instruction, what: str, why: str) -> UnresolvedBaseImage:
        text = " ".join(instruction.text.split())
        shown = text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
        return UnresolvedBaseImage(
            f"{self.source}:{instruction.line}: {shown}: cannot resolve the {what} ({why}); refusing to build unchecked"
        )

    def _global_arg(self, instruction: Instruction) -> None:
        """An ARG before the first FROM: a build arg wins, else its default expanded with the ARGs before it."""
        for word in parse_words(instruction.args, self.dockerfile.escape):
            name, has_default, default = word.partition("=")
            if name in self.build_args:
                self.global_args[name] = self.build_args[name]
            elif has_default:
                try:
                    self.global_args[name] = self.lex.expand(default, self.global_args).result
                except SubstitutionError as exc:
                    raise self._refuse(instruction, "value of ARG " + name, str(exc)) from None

    def _from(self, instruction: Instruction) -> list[BaseImage]:
        words = _WHITESPACE.split(instruction.args) if instruction.args else []
        name = _stage_name(instruction)
        if len(words) == 3 and words[1].lower() == "as":
            if not _STAGE_NAME.fullmatch(words[2].lower()):
                raise self._refuse(instruction, "base image", f"'{words[2]}' is not a valid stage name")
        elif len(words) != 1:
            raise self._refuse(instruction, "base image", "FROM takes one image, optionally followed by AS <name>")
        try:
            expansion = self.lex.expand(words[0], self.global_args)
        except SubstitutionError as exc:
            raise self._refuse(instruction, "base image", str(exc)) from None
        unset = "; ".join(f"{n} is not set" for n in expansion.unset)
        found = []
        if not expansion.result:
            raise self._refuse(instruction, "base image", unset or "it is empty")
        if expansion.result.lower() not in self.stages and expansion.result != SCRATCH:
            base = self._reference(instruction, "base image", expansion.result, unset)
            own_platform = any(flag.startswith("--platform=") for flag in instruction.flags)
            found.append(replace(base, stage_platform=True) if own_platform else base)
        self.stages.append(name)
        return found

    def _reference(self, instruction: Instruction, what: str, text: str, unset: str = "") -> BaseImage:
        try:
            ref = parse_reference(text)
        except ConfigError as exc:
            why = f"'{text}' is not an image reference: {exc}" + (f"; {unset}" if unset else "")
            raise self._refuse(instruction, what, why) from None
        # As the builder does: no tag and no digest means `latest`.
        return BaseImage(ref if ref.tag or ref.digest else replace(ref, tag="latest"), instruction.line)

    def _copy_from(self, instruction: Instruction) -> list[BaseImage]:
        found = []
        for value in _flag_values(instruction, "from"):
            if value is None:
                raise self._refuse(instruction, "source image", "--from has no value")
            if not value:
                continue  # `--from=` is the build context
            try:
                literal = self.lex.expand(value, {}).result == value
            except SubstitutionError:
                literal = False
            if not literal:
                why = "the builder does not substitute variables in --from; use a stage FROM the image"
                raise self._refuse(instruction, "source image", why)
            if _STAGE_INDEX.fullmatch(value):
                if not 0 <= int(value) < len(self.stages) - 1:
                    why = f"--from={value} is not the index of an earlier stage"
                    raise self._refuse(instruction, "source image", why)
            elif value.lower() not in self.stages[:-1] and value != SCRATCH:
                found.append(self._reference(instruction, "source image", value))
        return found

    def _mount_from(self, instruction: Instruction) -> list[BaseImage]:
        found = []
        for spec in _flag_values(instruction, "mount"):
            source = None
            for field in next(csv.reader([spec or ""]), []):
                key, has_value, value = field.partition("=")
                if key.lower() == "from" and has_value:
                    source = value
            if not source:
                continue
            if "$" in source[:-1]:
                why = "the builder does not substitute variables in a mount's from=; use a stage FROM the image"
                raise self._refuse(instruction, "source image", why)
            # Any stage of the file can be mounted, an earlier or a later one.
            if source.lower() not in self.all_stages and source != SCRATCH:
                found.append(self._reference(instruction, "source image", source))
        return found


def _stage_name(instruction: Instruction) -> str | None:
    if instruction.keyword != "from":
        return None
    words = _WHITESPACE.split(instruction.args)
    return words[2].lower() if len(words) == 3 and words[1].lower() == "as" else None


def _flag_values(instruction: Instruction, name: str) -> Sequence[str | None]:
    """Values of `--name=value` flags (None for a bare `--name`); flag names are case-sensitive."""
    values: list[str | None] = []
    for flag in instruction.flags:
        key, has_value, value = flag.partition("=")
        if key == f"--{name}":
            values.append(value if has_value else None)
    return values
