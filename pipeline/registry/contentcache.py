"""A local store of small registry content by digest (image configs, manifests read by digest).

Content under a digest never changes, so what was read once need not be read again: a no-op run then
asks the registry only where its tags point (a HEAD each), not for the bodies behind them. Every read
is checked against its digest (a damaged or edited file is dropped and fetched again), and a failure
to write is ignored: the store only saves round trips.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

MAX_BYTES = 4 * 1024 * 1024  # configs and manifests; layers never come here
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


class ContentCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, digest: str) -> Path | None:
        match = _DIGEST.match(digest)
        return self.directory / "sha256" / match.group(1) if match else None

    def get(self, digest: str) -> bytes | None:
        path = self._path(digest)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            path.unlink(missing_ok=True)
            return None
        return data

    def put(self, digest: str, data: bytes) -> None:
        path = self._path(digest)
        if path is None or len(data) > MAX_BYTES or "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
                handle.write(data)
            os.replace(handle.name, path)
        except OSError:
            pass
