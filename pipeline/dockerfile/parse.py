"""A Dockerfile as a list of instructions, split the way BuildKit's parser splits it (`parser/parser.go`). Pure.

Parser directives (`# escape=`), comments, line continuations with the escape character, case-insensitive
instruction names, whitespace of any kind between words, `--flag=value` words before the arguments, and
(when asked) heredoc bodies skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from pipeline.dockerfile.lex import Lex, SubstitutionError

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*")
_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)")
_HEREDOC_INSTRUCTIONS = frozenset({"add", "copy", "run"})


class DockerfileSyntaxError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Instruction:
    keyword: str  # lowercased: "from", "copy", ...
    flags: tuple[str, ...]  # the leading `--name[=value]` words, quotes and escapes processed
    args: str  # the rest, trimmed
    line: int  # 1-based line it starts on
    text: str  # the logical line (continuations joined)
    # Where the logical line (before trimming) comes from: (0-based line, start column, end column) per
    # physical line joined, so a rewrite can edit the file in place (pipeline.dockerfile.pin).
    segments: tuple[tuple[int, int, int], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Dockerfile:
    escape: str
    instructions: tuple[Instruction, ...]


class _Directives:
    """Directives are read only from the comment lines at the very top of the file."""

    def __init__(self) -> None:
        self.done = False
        self.seen: set[str] = set()
        self.escape = "\\"
        self.continuation = _continuation_regex(self.escape)

    def read(self, token: str, line: int) -> None:
        if self.done:
            return
        match = _DIRECTIVE.fullmatch(token[1:].lstrip()) if token.startswith("#") else None
        name = match.group(1).lower() if match else ""
        if not match or name not in _DIRECTIVES:
            self.done = True
            return
        if name in self.seen:
            raise DockerfileSyntaxError(line, f"only one {name} parser directive can be used")
        self.seen.add(name)
        if name == "escape":
            value = match.group(2)
            if value not in ("\\", "`"):
                raise DockerfileSyntaxError(line, f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
            self.continuation = _continuation_regex(value)


def _continuation_regex(escape: str) -> re.Pattern[str]:
    # The escape character ends a line that continues, unless it is itself escaped.
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*\Z|\A{e}[ \t]*\Z")


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def parse(text: str, *, heredocs: bool) -> Dockerfile:
    """Instructions of `text`; with `heredocs`, the bodies of `RUN <<EOF` etc. are not instructions
    (BuildKit with Dockerfile syntax 1.4+), without, every line is read as one (older builders)."""
    directives = _Directives()
    lines = text.removeprefix("\ufeff").split("\n")
    instructions: list[Instruction] = []
    index = 0
    while index < len(lines):
        physical = lines[index].rstrip("\r\n")
        token = physical.lstrip()
        directives.read(token, index + 1)
        index += 1
        start = index
        if _is_comment(token):
            token = ""
        logical, complete = _trim_continuation(token, directives)
        if complete and not logical:
            continue
        indent = len(physical) - len(token)
        segments = [(index - 1, indent, indent + len(logical))]
        while not complete and index < len(lines):
            raw = lines[index].rstrip("\r\n")
            directives.read(raw, index + 1)
            index += 1
            if _is_comment(raw) or not raw.strip():
                continue  # comments and empty lines inside a continued instruction are dropped
            part, complete = _trim_continuation(raw, directives)
            logical += part
            segments.append((index - 1, 0, len(part)))
        instruction = replace(_split(logical, start, directives.escape), segments=tuple(segments))
        instructions.append(instruction)
        if heredocs and "<<" in logical and _can_contain_heredoc(instruction, directives.escape):
            for name, chomp in _heredocs(logical):
                while index < len(lines):
                    candidate = lines[index].rstrip("\r\n")
                    index += 1
                    if (candidate.lstrip("\t") if chomp else candidate) == name:
                        break
    return Dockerfile(directives.escape, tuple(instructions))


def _trim_continuation(line: str, directives: _Directives) -> tuple[str, bool]:
    if directives.continuation.search(line):
        return directives.continuation.sub(lambda m: m.group(1) or "", line), False
    return line, True


def _split(logical: str, line: int, escape: str) -> Instruction:
    parts = _WHITESPACE.split(logical.strip(), maxsplit=1)
    flags: list[str] = []
    args = ""
    if len(parts) == 2:
        args, flags = extract_flags(parts[1], escape)
    return Instruction(parts[0].lower(), tuple(flags), args.strip(), line, logical.strip())


def extract_flags(line: str, escape: str) -> tuple[str, list[str]]:
    """Split the leading `--flag` words off an instruction's arguments (BuildKit's extractBuilderFlags)."""
    rest, words, _ = flag_spans(line, escape)
    return line[rest:], words


def flag_spans(line: str, escape: str) -> tuple[int, list[str], list[tuple[int, int]]]:
    """extract_flags with positions: where the arguments start in `line`, the flags (quotes and escapes
    processed), and the span in `line` of each flag as written."""
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    for word in _words(line, escape, raw=False):
        if not line.startswith("--", word.begin):
            return word.begin, words, spans
        if word.text == "--":
            return word.end, words, spans
        if word.kept:
            words.append(word.text)
            spans.append((word.begin, word.end))
    return len(line), words, spans


def parse_words(rest: str, escape: str) -> list[str]:
    """Whitespace-separated words, quotes and escapes kept as written (BuildKit's parseWords, for ARG)."""
    return [word.text for word in _words(rest, escape, raw=True) if word.kept]


@dataclass(frozen=True)
class _Word:
    text: str
    begin: int  # its span in the line, as written
    end: int
    kept: bool  # BuildKit keeps a word that is not empty or was quoted ("" is a word; a lone escape is not)


def _words(line: str, escape: str, *, raw: bool) -> Iterator[_Word]:
    """The whitespace-separated words of `line`, the one scanner of BuildKit's extractBuilderFlags (quotes
    and escapes processed) and (`raw`) its parseWords (kept as written; in single quotes the escape
    character is an ordinary one). A trailing escape character is dropped (and ends a quote)."""
    text, quote, quoted, begin = "", "", False, -1
    in_quote = False
    pos = 0
    while pos < len(line):
        ch = line[pos]
        if begin < 0:
            if ch.isspace():
                pos += 1
                continue
            begin = pos
        if not in_quote and ch.isspace():
            yield _Word(text, begin, pos, quoted or text != "")
            text, quoted, begin = "", False, -1
        elif not in_quote and ch in ("'", '"'):
            quote, quoted, in_quote = ch, True, True
            text += ch if raw else ""
        elif in_quote and ch == quote:
            in_quote = False
            text += ch if raw else ""
        elif ch == escape and not (raw and in_quote and quote == "'"):
            if pos + 1 == len(line):
                in_quote = False
            else:
                pos += 1
                text += (ch if raw else "") + line[pos]
        else:
            text += ch
        pos += 1
    if begin >= 0:
        yield _Word(text, begin, len(line), quoted or text != "")


def _is_json_array(args: str) -> bool:
    if not args.startswith("["):
        return False
    try:
        value = json.loads(args)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _can_contain_heredoc(instruction: Instruction, escape: str) -> bool:
    if instruction.keyword == "onbuild" and instruction.args:
        instruction = _split(instruction.args, instruction.line, escape)
    return instruction.keyword in _HEREDOC_INSTRUCTIONS and not _is_json_array(instruction.args)


def _heredocs(logical: str) -> list[tuple[str, bool]]:
    """(terminator, strip leading tabs) of each `<<WORD` / `<<-WORD` in the line, as BuildKit finds them."""
    try:
        words = Lex("\\", raw_quotes=True, raw_escapes=True, skip_unset=True).expand(logical, {}).words
    except SubstitutionError:
        return []  # the builder refuses this line; nothing to skip
    found = []
    for word in words:
        match = _HEREDOC.fullmatch(word)
        if not match or not match.group(3):
            continue
        try:
            names = Lex("\\", skip_unset=True).expand(match.group(3), {}).words
        except SubstitutionError:
            continue
        if len(names) == 1:
            found.append((names[0], match.group(2) == "-"))
    return found
