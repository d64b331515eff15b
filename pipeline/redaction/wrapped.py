"""A secret's base64 wrapped over lines (`base64` wraps at 76 columns, PEM and MIME at 64 or 76): each line
shows a fragment of the encoding and none shows all of it. `Fragments` finds them in a line; what a line
left unfinished is carried to the next (`Pending`), so that a short last line is hidden by where it stands."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# A fragment anywhere in a line is found from GRAM characters (always from GRAM + GRAM_STEP - 1: the
# encodings are indexed every GRAM_STEP characters, which keeps a large secret file's index small).
GRAM = 16
GRAM_STEP = 4
# A fragment at a token's edge, where a line break cut the encoding (its first line's end, its last line's
# start), from EDGE characters: shorter ones (at most 5 bytes of the secret) would hide random words.
EDGE = 8
# A fragment left unfinished at a line's end is looked for in this many following lines (another build
# step's output may come in between).
PENDING_LINES = 3
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]+")
_STANDARD = str.maketrans("-_", "+/")  # URL-safe base64 compared as the standard alphabet


@dataclass(frozen=True)
class Encoding:
    """A secret's base64 when it starts `offset` bytes into a 3-byte group (0, 1 or 2: it may follow
    anything), without the characters that also encode what comes before it, to its end as if the secret
    ended the data (with padding). Its first `determined` characters encode the secret alone."""

    text: str
    determined: int


def encodings(raw: bytes) -> set[Encoding]:
    """`raw`'s encodings at each offset, and those of `raw` and a newline (a secret file ends with one
    more often than not, and `base64 FILE` encodes it too)."""
    return {
        Encoding(encoded_at(data, offset), whole_groups(raw, offset))
        for data in (raw, raw + b"\n")
        for offset in OFFSETS
    }


# Base64 encodes 3 bytes as 4 characters: data after other data starts 0, 1 or 2 bytes into a group, and the
# first 0, 2 or 3 characters of its encoding there also encode the bytes before it.
OFFSETS = (0, 1, 2)
_SHARED = (0, 2, 3)


def encoded_at(raw: bytes, offset: int, encode: Callable[[bytes], bytes] = base64.b64encode) -> str:
    """`raw`'s base64 (by `encode`) when it starts `offset` bytes into a 3-byte group, from the first
    character that encodes nothing before it, to the end as if `raw` ended the data (with padding)."""
    return encode(bytes(offset) + raw).decode()[_SHARED[offset] :]


def whole_groups(raw: bytes, offset: int) -> int:
    """How many of encoded_at's first characters encode `raw` alone, whatever follows it: those up to the
    end of its last whole 3-byte group (0 when there is none)."""
    return max((offset + len(raw)) // 3 * 4 - _SHARED[offset], 0)


Pending = tuple[int, int, int]  # (encoding, position reached in it, lines since)
Span = tuple[int, int]


class Fragments:
    def __init__(self, found: Iterable[Encoding]) -> None:
        self.encodings = sorted(found, key=lambda e: (-len(e.text), e.text))
        self._grams: dict[str, list[tuple[int, int]]] = {}
        self._anchors: dict[str, list[tuple[int, int]]] = {}
        for index, encoding in enumerate(self.encodings):
            text = encoding.text
            for position in range(0, len(text) - GRAM + 1, GRAM_STEP):
                self._grams.setdefault(text[position : position + GRAM], []).append((index, position))
            # Where an edge fragment starts: the encoding's start (a first line's end), and where its last
            # EDGE characters, or the last EDGE of its determined ones, begin (a last line's start).
            for position in {0, len(text) - EDGE, encoding.determined - EDGE}:
                if 0 <= position <= len(text) - EDGE:
                    self._anchors.setdefault(text[position : position + EDGE], []).append((index, position))

    def __bool__(self) -> bool:
        return bool(self.encodings)

    def spans(self, line: str, pending: list[Pending]) -> tuple[list[Span], list[Pending]]:
        """The spans of `line` that are fragments of an encoding, and what is pending after it."""
        found: list[Span] = []
        stripped = len(line.rstrip())
        carried, started = list(pending), []
        for token in _TOKEN.finditer(line):
            text = token.group().translate(_STANDARD)
            final = token.end() == stripped
            fragments = self._in_token(text)
            if final and carried:
                length, going_on, carried = self._continue(text, carried)
                if length:  # the start of this token goes on from a line before
                    found.append((token.start(), token.start() + length))
                    started += going_on
            for start, end, reached in fragments:
                found.append((token.start() + start, token.start() + end))
                if final and end == len(text):
                    started += [(index, at, 0) for index, at in reached if at < len(self.encodings[index].text)]
        return found, started + [(i, at, age + 1) for i, at, age in carried if age + 1 < PENDING_LINES]

    def _continue(self, text: str, pending: list[Pending]) -> tuple[int, list[Pending], list[Pending]]:
        """How much of a line's last token goes on where a line before stopped: the rest of the encoding
        (its last line, however short), a whole line of it, or, right after, the rest of what the secret
        determines followed by other data. With what is pending after it, and what still is from before."""
        best = 0
        going_on: list[Pending] = []
        left: list[Pending] = []
        for index, reached, age in pending:
            encoding = self.encodings[index]
            rest = encoding.text[reached:]
            common = len(os.path.commonprefix([text, rest]))
            exact = common == len(text) == len(rest)
            whole_line = common == len(text) >= EDGE
            determined = age == 0 and common >= encoding.determined - reached > 0
            if not (common and (exact or whole_line or determined)):
                left.append((index, reached, age))
                continue
            best = max(best, common)
            if common == len(text) and reached + common < len(encoding.text):
                going_on.append((index, reached + common, 0))
        return best, going_on, (left if not best else [])

    def _in_token(self, text: str) -> list[tuple[int, int, list[tuple[int, int]]]]:
        """(start, end, [(encoding, end in it)...]) of each fragment in a token: GRAM characters or more
        anywhere, or EDGE or more at an edge: the token ending with the encoding's start, or starting
        with its end (or with the end of its determined characters)."""
        found = []
        position = 0
        while position <= len(text) - EDGE:
            hits = self._anchors.get(text[position : position + EDGE], [])
            if position <= len(text) - GRAM:
                hits = hits + self._grams.get(text[position : position + GRAM], [])
            best: tuple[int, int] | None = None
            reached: list[tuple[int, int]] = []
            for index, at in hits:
                encoding = self.encodings[index]
                start, end, begins, ends = _extend(text, position, encoding.text, at)
                edge_end = end == len(text) and begins == 0
                edge_start = start == 0 and (ends == len(encoding.text) or ends >= encoding.determined)
                if not (end - start >= GRAM or edge_end or edge_start):
                    continue
                if best is None or end > best[1]:
                    best, reached = (start, end), []
                if end == best[1]:
                    best = (min(start, best[0]), end)
                    reached.append((index, ends))
            if best is None:
                position += 1
                continue
            found.append((best[0], best[1], reached))
            position = best[1]
        return found


def _extend(text: str, position: int, encoding: str, at: int) -> tuple[int, int, int, int]:
    """The longest run around text[position] that is encoding[at] onwards: (start, end) in the text and
    (start, end) in the encoding."""
    back = 0
    while position - back > 0 and at - back > 0 and text[position - back - 1] == encoding[at - back - 1]:
        back += 1
    ahead = len(os.path.commonprefix([text[position:], encoding[at:]]))
    return position - back, position + ahead, at - back, at + ahead
