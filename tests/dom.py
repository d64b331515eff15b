"""An HTML page read back as a browser's DOM holds it (Chromium's --dump-dom, or a page as served): tags
with their attributes and text, for tests of serve's pages."""

from __future__ import annotations

from html.parser import HTMLParser


class Dom(HTMLParser):
    """Every start tag with its attributes and the text inside it, in document order."""

    # Elements HTML never closes: nothing nests in them.
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str], list[str]]] = []
        self.open: list[tuple[str, list[str]]] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        texts: list[str] = []
        self.tags.append((tag, {k: v or "" for k, v in attrs}, texts))
        if tag not in self.VOID:
            self.open.append((tag, texts))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}, []))  # <rect .../>: no content

    def handle_endtag(self, tag: str) -> None:
        if any(name == tag for name, _ in self.open):
            while self.open and self.open.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        for _, texts in self.open:
            texts.append(data)

    def find(self, tag: str, **attrs: str) -> list[tuple[dict[str, str], str]]:
        return [
            (a, "".join(t))
            for name, a, t in self.tags
            if name == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]
