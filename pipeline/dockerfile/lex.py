"""Variable substitution in a Dockerfile word, by the rules of BuildKit's frontend (`shell/lex.go`). Pure.

Quotes, the escape character, `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?m}`, `${V?m}`,
`${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}` and `${V/p/r}`, `${V//p/r}`; an unset name expands to nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

EOF = ""  # what the scanner reads past the end; compared with ==, never with `in` on a string
_SPECIAL_PARAMETERS = frozenset("@*#?-$!0")
_PATTERN_SPECIALS = frozenset("[]{}.+()|^$")
_GO_TEMPLATE_REF = re.compile(r"\$(?:\$|\{\w*\}|\w+)")


class SubstitutionError(ValueError):
    """The word is not valid Dockerfile syntax (the builder would refuse it too)."""


@dataclass
class Expansion:
    result: str
    words: list[str]
    unset: list[str] = field(default_factory=list)  # names referenced but not set, in order


@dataclass(frozen=True)
class Lex:
    escape: str = "\\"
    raw_quotes: bool = False  # keep quote characters in the result
    raw_escapes: bool = False  # keep escape characters in the result
    skip_unset: bool = False  # leave a reference to an unset name as written

    def expand(self, word: str, env: Mapping[str, str]) -> Expansion:
        """Expand `word` against `env`; raise SubstitutionError where BuildKit would fail."""
        return _Word(self, word, env).process()


class _Words:
    """Splits the expanded text into words as the shell would (quoted parts never split)."""

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _Word:
    def __init__(self, lex: Lex, text: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.text = text
        self.pos = 0
        self.env = env
        self.raw_escapes = lex.raw_escapes
        self.unset: list[str] = []

    def process(self) -> Expansion:
        try:
            result, words = self._until(None, self.raw_escapes)
        except SubstitutionError as exc:
            raise SubstitutionError(f"{exc} in {self.text!r}") from None
        return Expansion(result, words, self.unset)

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else EOF

    def _next(self) -> str:
        ch = self._peek()
        self.pos += 1 if ch != EOF else 0
        return ch

    def _until(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._scan(stop)
        finally:
            self.raw_escapes = saved

    def _scan(self, stop: str | None) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        # What starts at these characters is read whole: an expansion (its value splits into words like
        # any string), or quoted text and a heredoc (kept as one piece of a word).
        readers = {
            "$": (self._dollar, words.add_string),
            "'": (lambda: self._quoted("'", "single-quote"), words.add_raw),
            '"': (lambda: self._quoted('"', "double-quote"), words.add_raw),
            "<": (self._possible_heredoc, words.add_raw),
        }
        while (ch := self._peek()) != EOF:
            if ch == stop:
                self._next()
                return "".join(result), words.result()
            if (reader := readers.get(ch)) is not None:
                read, add = reader
                text = read()
                result.append(text)
                add(text)
            else:
                self._next()
                if ch == self.lex.escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self._next()
                    if ch == EOF:  # a trailing escape character is dropped
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop is not None:
            raise SubstitutionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def _quoted(self, quote: str, name: str) -> str:
        """Text up to the closing `quote` (the quotes kept with raw_quotes). Inside double quotes `$` expands
        and the escape character escapes only `"`, `$` and itself; inside single quotes nothing is special."""
        double = quote == '"'
        opening = self._next()
        out = [opening] if self.lex.raw_quotes else []
        while True:
            ch = self._peek()
            if ch == EOF:
                raise SubstitutionError(f"unexpected end of statement while looking for matching {name}")
            if ch == quote:
                self._next()
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if double and ch == "$":
                out.append(self._dollar())
                continue
            ch = self._next()
            if double and ch == self.lex.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self._peek()
                if following == EOF:
                    continue
                if following in ('"', "$", self.lex.escape):
                    ch = self._next()
            out.append(ch)

    def _possible_heredoc(self) -> str:
        self._next()
        if self._peek() != "<":
            return "<"
        self._next()
        space = ""
        while self._peek() in ("\t", "\r", " "):
            space += self._next()
        return "<<" + space

    def _name(self) -> str:
        name = ""
        while (ch := self._peek()) != EOF:
            if not name and ch.isdecimal():
                while self._peek() != EOF and self._peek().isdecimal():
                    name += self._next()
                return name
            if not name and ch in _SPECIAL_PARAMETERS:
                return self._next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            name += self._next()
        return name

    def _get(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        if name not in self.unset:
            self.unset.append(name)
        return "", False

    def _dollar(self) -> str:
        self._next()
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            value, found = self._get(name)
            return "$" + name if not found and self.lex.skip_unset else value
        self._next()
        if self._peek() == EOF:
            raise SubstitutionError("syntax error: missing '}'")
        if self._peek() in ("{", "}", ":"):
            raise SubstitutionError("syntax error: bad substitution")
        name = self._name()
        ch = self._next()
        if ch == "}":
            value, found = self._get(name)
            return f"${{{name}}}" if not found and self.lex.skip_unset else value
        if ch == ":":
            modifier = self._next()
            return self._modified(name, ":" + modifier, modifier, null_is_unset=True)
        if ch in ("+", "-", "?", "#", "%"):
            return self._modified(name, ch, ch, null_is_unset=False)
        if ch == "/":
            return self._replaced(name)
        raise SubstitutionError(f"unsupported modifier ({ch or 'end of word'}) in substitution")

    def _modified(self, name: str, written: str, modifier: str, *, null_is_unset: bool) -> str:
        trims = modifier in ("#", "%")
        if null_is_unset and trims:
            raise SubstitutionError(f"unsupported modifier ({written}) in substitution")
        word = self._closing_brace(raw_escapes=trims)
        value, found = self._get(name)
        if self.lex.skip_unset and not found:
            return f"${{{name}{written}{word}}}"
        empty = not found or (null_is_unset and value == "")
        if modifier == "-":
            return word if empty else value
        if modifier == "+":
            return "" if empty else word
        if modifier == "?":
            if empty:
                unset_or_empty = "unset" if not found else "empty"
                raise SubstitutionError(f"{name}: {word or f'is not allowed to be {unset_or_empty}'}")
            return value
        if trims:
            greedy = word.startswith(modifier)
            pattern = word[1:] if greedy else word
            return _trim_suffix(pattern, value, greedy) if modifier == "%" else _trim_prefix(pattern, value, greedy)
        raise SubstitutionError(f"unsupported modifier ({written}) in substitution")

    def _closing_brace(self, *, raw_escapes: bool) -> str:
        try:
            return self._until("}", raw_escapes)[0]
        except SubstitutionError:
            if self._peek() == EOF:
                raise SubstitutionError("syntax error: missing '}'") from None
            raise

    def _replaced(self, name: str) -> str:
        replace_all = self._peek() == "/"
        if replace_all:
            self._next()
        try:
            pattern = self._until("/", True)[0]
        except SubstitutionError:
            if self._peek() == EOF:
                raise SubstitutionError("syntax error: missing '/' in ${}") from None
            raise
        replacement = self._closing_brace(raw_escapes=True)
        value, found = self._get(name)
        if self.lex.skip_unset and not found:
            return f"${{{name}/{pattern}/{replacement}}}"
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        if replace_all:
            # Go's ReplaceAllString expands $-templates; the pattern has no groups, so each is empty.
            literal = _GO_TEMPLATE_REF.sub(lambda m: "$" if m.group(0) == "$$" else "", replacement)
            return regex.sub(lambda _: literal, value)
        match = regex.search(value)
        return value[: match.start()] + replacement + value[match.end() :] if match else value


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell wildcard pattern (`*`, `?`, escapes; no brackets) as a regular expression."""
    out = "^" if anchored else ""
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out += star
        elif ch == "?":
            out += "."
        elif ch == "\\":
            following = pattern[i] if i < len(pattern) else EOF
            if following in ("}", "/"):  # escaped only to get past ${…} parsing
                continue
            if following not in ("*", "?", "\\"):
                raise SubstitutionError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{following}'")
            out += "\\" + following
            i += 1
        else:
            out += "\\" + ch if ch in _PATTERN_SPECIALS else ch
    try:
        return re.compile(out)
    except re.error as exc:
        raise SubstitutionError(f"invalid pattern ({pattern}) in substitution: {exc}") from None


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[match.end() :] if match else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern but keep each escape before the character it escapes (a\\*c -> c\\*a)."""
    units: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i != len(pattern) - 1:
            units.append(pattern[i : i + 2])
            i += 2
        else:
            units.append(pattern[i])
            i += 1
    return "".join(reversed(units))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # A regex finds the leftmost match, not the shortest rightmost one: search the reversed value.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]
