"""YAML parsing that remembers where every key and value stands (file:line:col)."""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError, ConfigProblem
from pipeline.files import read_regular_file

KeyPath = tuple[str | int, ...]
# libyaml's parser when PyYAML has it (about 10x faster on big files), the pure-Python one otherwise.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_NODES = 100_000
# Real configs nest about 8 levels; anything near Python's recursion limit is hostile.
MAX_DEPTH = 64


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class PositionIndex:
    """Where each key path's key and value start in the file."""

    file: Path
    values: dict[KeyPath, Position] = field(default_factory=dict)
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    nodes: int = 0

    def position(self, path: KeyPath, *, at_key: bool = False) -> Position:
        """The nearest known position for `path` (walking up to its parents)."""
        probe = path
        while True:
            # A mapping key that YAML read as a number is stored under its text.
            for candidate in (probe, probe[:-1] + (str(probe[-1]),) if probe else probe):
                table = self.keys if at_key and candidate in self.keys else self.values
                if candidate in table:
                    return table[candidate]
            if not probe:
                return Position(1, 1)
            probe = probe[:-1]

    def locate(self, path: KeyPath, *, at_key: bool = False) -> str:
        """`file:line:col` of the nearest known position for `path` (walking up to its parents)."""
        pos = self.position(path, at_key=at_key)
        return f"{self.file}:{pos.line}:{pos.column}"

    def problem(
        self, path: KeyPath, message: str, *, at_key: bool = False, shown: KeyPath | None = None
    ) -> ConfigProblem:
        """The mistake at `path` (named as `shown`, when it is written otherwise than it is located)."""
        pos = self.position(path, at_key=at_key)
        key = format_path(path if shown is None else shown)
        return ConfigProblem(str(self.file), pos.line, pos.column, one_line(key), one_line(message))

    def error(self, path: KeyPath, message: str, *, at_key: bool = False) -> ConfigError:
        return ConfigError(problems=[self.problem(path, message, at_key=at_key)])


def format_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def one_line(text: str) -> str:
    """`text` with line breaks and other invisible characters escaped: an error is one line, always."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode() for c in text)


def ordered(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    """`problems` in the file's order, each once (a check may meet one mistake from several sides)."""
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (p.file, p.line, p.column))


def located_error(file: Path, position: Position | None, message: str, key: str = "") -> ConfigError:
    at = position or Position(1, 1)
    return ConfigError(problems=[ConfigProblem(str(file), at.line, at.column, one_line(key), one_line(message))])


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _mark_position(mark: Any) -> Position | None:
    return Position(mark.line + 1, mark.column + 1) if mark else None


_TAG_PREFIX = "tag:yaml.org,2002:"


class _Constructor(yaml.constructor.SafeConstructor):
    """SafeConstructor whose value errors (`!!int abc`, `2001-02-30`, a 5000-digit number) are YAML
    errors at the value, instead of whatever Python raised."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            tag = node.tag.removeprefix(_TAG_PREFIX)
            reason = str(exc).split(";")[0] or type(exc).__name__
            problem = f"cannot read this value as {tag}: {reason}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def _key_value(key_node: yaml.ScalarNode, constructor: _Constructor) -> Hashable:
    """The key as the loaded data has it: `1`, `true` and `null` keys are not strings there."""
    if key_node.tag in (_TAG_PREFIX + "str", _TAG_PREFIX + "merge"):
        return str(key_node.value)
    try:
        value = constructor.construct_object(key_node)
    except yaml.YAMLError:
        return str(key_node.value)
    return value if isinstance(value, Hashable) else str(key_node.value)


def _loc_form(key: Hashable) -> str | int:
    """How pydantic names a key in an error's location: bools and ints as ints, anything else as text."""
    return int(key) if isinstance(key, bool | int) else str(key)


def _index(
    node: yaml.Node,
    path: KeyPath,
    index: PositionIndex,
    constructor: _Constructor,
    active: frozenset[int] = frozenset(),
) -> None:
    index.values[path] = _mark(node)
    index.nodes += 1
    if index.nodes > MAX_NODES:  # aliases can expand a small file enormously ("billion laughs")
        raise located_error(index.file, _mark(node), f"more than {MAX_NODES} values after expanding aliases")
    if len(path) > MAX_DEPTH:  # aliases can nest deeper than the text does
        raise located_error(
            index.file, _mark(node), f"nested more than {MAX_DEPTH} levels deep after expanding aliases"
        )
    if id(node) in active:
        raise index.error(path, "a YAML alias refers to itself")
    active = active | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: dict[Hashable, str] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise index.error(path, "mapping keys must be plain strings")
            text = str(key_node.value)
            key = _key_value(key_node, constructor)
            if key in seen:
                child = format_path((*path, text))
                same = f"'{text}'" if seen[key] == text else f"'{text}' (the same key as '{seen[key]}')"
                raise located_error(index.file, _mark(key_node), f"duplicate key {same}", child)
            seen[key] = text
            _index(value_node, (*path, text), index, constructor, active)
            # An empty value ('key:' and nothing) starts after the colon; the key is where to look.
            empty = isinstance(value_node, yaml.ScalarNode) and value_node.value == "" and not value_node.style
            for form in {text, _loc_form(key)}:
                index.keys[(*path, form)] = _mark(key_node)
                index.values[(*path, form)] = _mark(key_node if empty else value_node)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), index, constructor, active)


_LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
# What YAML allows in a stream (PyYAML's Reader.NON_PRINTABLE, inverted).
_NOT_ALLOWED = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _position_of(text: str, offset: int) -> Position:
    """Line and column (1-based) of character `offset` in `text`, counting YAML's line breaks."""
    line, start = 1, 0
    for brk in _LINE_BREAK.finditer(text, 0, offset):
        line, start = line + 1, brk.end()
    return Position(line, offset - start + 1)


def _culprit(text: str, line: int, column: int) -> str:
    """Name the character a scanner error points at (libyaml's messages don't)."""
    lines = _LINE_BREAK.split(text)
    char = lines[line][column : column + 1] if line < len(lines) else ""
    if char == "\t":
        return " (a tab: indent with spaces)"
    return f" ({char!r})" if char else ""


def _decode(file: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8", "replace")
        byte = raw[exc.start : exc.start + 1].hex()
        raise located_error(
            file,
            _position_of(before, len(before)),
            f"not UTF-8: byte 0x{byte} can't be decoded (save the file as UTF-8)",
        ) from None


def _check_size(file: Path, text: str) -> None:
    """Refuse deep nesting and alias bombs from the event stream, before anything is built from it:
    the composer recurses (in C with libyaml) once per level, and a few aliases can stand for
    billions of values. Each alias counts as the values and levels of what it names."""
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (values, levels) it expands to
    open_: list[tuple[str | None, int, int]] = []  # collections being read: anchor, start count, levels below
    count = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            count += 1
            open_.append((event.anchor, count, 0))
            levels = 0
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start, levels = open_.pop()
            levels += 1
            if anchor is not None:
                anchors[anchor] = (count - start + 1, levels)
        elif isinstance(event, yaml.AliasEvent):
            values, levels = anchors.get(event.anchor or "", (1, 0))
            count += values
        elif isinstance(event, yaml.ScalarEvent):
            count += 1
            levels = 0
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
        else:
            continue
        if open_:
            anchor, start, below = open_[-1]
            open_[-1] = (anchor, start, max(below, levels))
        if count > MAX_NODES:
            raise located_error(
                file, _mark_position(event.start_mark), f"more than {MAX_NODES} values after expanding aliases"
            )
        if len(open_) + levels > MAX_DEPTH:
            how = " after expanding aliases" if isinstance(event, yaml.AliasEvent) else ""
            raise located_error(
                file, _mark_position(event.start_mark), f"nested more than {MAX_DEPTH} levels deep{how}"
            )


def parse_yaml(file: Path) -> tuple[Any, PositionIndex]:
    """Load `file` as data plus a position index; YAML errors become one-line ConfigErrors."""
    try:
        raw = read_regular_file(file, "pipelines file")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file (pass the config with -f FILE)") from None
    except OSError as exc:
        raise ConfigError(one_line(f"{file}: cannot read: {exc.strerror or exc}")) from None
    text = _decode(file, raw)
    index = PositionIndex(file)
    constructor = _Constructor()
    try:
        _check_size(file, text)
        node = yaml.compose(text, Loader=_LOADER)
        data = None if node is None else constructor.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is not None and "cannot start any token" in problem:
            problem += _culprit(text, mark.line, mark.column)
        raise located_error(file, _mark_position(mark), f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        bad = _NOT_ALLOWED.search(text)
        where = _position_of(text, bad.start() if bad else min(exc.position, len(text)))
        code = ord(bad.group()) if bad else exc.character
        shown = f"U+{code:04X}" if isinstance(code, int) else repr(code)
        raise located_error(file, where, f"invalid YAML: character {shown} is not allowed in YAML") from None
    except yaml.YAMLError as exc:
        raise located_error(
            file, None, f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"
        ) from None
    if node is not None:
        _index(node, (), index, constructor)
    return data, index
