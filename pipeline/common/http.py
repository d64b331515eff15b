"""httpx, imported without its command-line client: every module of pipeline takes httpx from here."""

from __future__ import annotations

import sys

# httpx imports its command-line client (rich's progress and syntax, pygments) with the library unless
# that import fails, and then stubs it. pipeline never uses it, so a no-op run does not pay for it.
_blocked = sys.modules.setdefault("httpx._main", None) is None  # type: ignore[arg-type]
try:
    import httpx
finally:
    if _blocked and sys.modules.get("httpx._main") is None:
        del sys.modules["httpx._main"]  # as if never asked for: `import httpx._main` works later

__all__ = ["httpx"]
