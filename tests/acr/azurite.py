"""Azurite (npm `azurite`, installed by scripts/services) as a throwaway blob store on loopback."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

# Azurite's documented development account (public, well known; it only opens this local emulator).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Azurite:
    """`azurite-blob` on 127.0.0.1, storing under `workdir`; `endpoint` is the account's blob URL."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "azurite.log"
        self._process = subprocess.Popen(
            [
                executable,
                "--blobHost", "127.0.0.1",
                "--blobPort", str(self.port),
                "--location", str(workdir),
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait(self, timeout: float = 30) -> Azurite:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"azurite exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"azurite did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
