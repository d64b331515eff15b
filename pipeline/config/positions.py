"""YAML parsing that remembers where every key and value stands (file:line:col)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

KeyPath = tuple[str | int, ...]
# libyaml's parser when PyYAML has it (about 10x faster on big files), the pure-Python one otherwise.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_NODES = 100_000


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

    def locate(self, path: KeyPath, *, at_key: bool = False) -> str:
        """`file:line:col` of the nearest known position for `path` (walking up to its parents)."""
        probe = path
        while True:
            # A mapping key that YAML read as a number is stored under its text.
            for candidate in (probe, probe[:-1] + (str(probe[-1]),) if probe else probe):
                table = self.keys if at_key and candidate in self.keys else self.values
                if candidate in table:
                    pos = table[candidate]
                    return f"{self.file}:{pos.line}:{pos.column}"
            if not probe:
                return f"{self.file}:1:1"
            probe = probe[:-1]

    def error(self, path: KeyPath, message: str, *, at_key: bool = False) -> ConfigError:
        where = self.locate(path, at_key=at_key)
        shown = format_path(path)
        return ConfigError(f"{where}: {shown}: {message}" if shown else f"{where}: {message}")


def format_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _index(node: yaml.Node, path: KeyPath, index: PositionIndex, active: frozenset[int] = frozenset()) -> None:
    index.values[path] = _mark(node)
    index.nodes += 1
    if index.nodes > MAX_NODES:  # aliases can expand a small file enormously ("billion laughs")
        raise ConfigError(f"{index.file}: more than {MAX_NODES} values after expanding aliases")
    if id(node) in active:
        raise ConfigError(f"{index.locate(path)}: {format_path(path)}: a YAML alias refers to itself")
    active = active | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise index.error(path, "mapping keys must be plain strings")
            key = str(key_node.value)
            if key in seen:
                pos = _mark(key_node)
                child = format_path((*path, key))
                raise ConfigError(f"{index.file}:{pos.line}:{pos.column}: {child}: duplicate key '{key}'")
            seen.add(key)
            index.keys[(*path, key)] = _mark(key_node)
            _index(value_node, (*path, key), index, active)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), index, active)


def parse_yaml(file: Path) -> tuple[Any, PositionIndex]:
    """Load `file` as data plus a position index; YAML errors become one-line ConfigErrors."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file (pass the config with -f FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    index = PositionIndex(file)
    try:
        node = yaml.compose(text, Loader=_LOADER)
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if node is not None:
        try:
            _index(node, (), index)
        except RecursionError:
            raise ConfigError(f"{file}: nested too deeply (or an alias refers to itself)") from None
    return data, index
