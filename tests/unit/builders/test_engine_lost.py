"""An engine that dies while it streams a push: the build is on a lost engine (EngineUnavailable,
which the executor answers by moving the image elsewhere), not an unexpected error.

The engine here is a few lines of HTTP on a unix socket: it answers the client's version check and
ping, starts the push's streamed response, then closes its socket for good, as a kill -9 does. (The
integration tests kill a real dockerd during a build; a push is too short to be hit on purpose.)
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from pipeline.builders import BuildRequest
from pipeline.builders.classic import DockerBuilder
from pipeline.common.reporting import Forward
from pipeline.errors import EngineUnavailable
from pipeline.registry.reference import parse_reference


def _dying_engine(path: Path) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(8)

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            request = conn.recv(65536).decode()
            if request.startswith("GET"):
                body = b"OK" if "/_ping" in request else b'{"ApiVersion": "1.41", "Version": "20.10.24"}'
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                conn.sendall(head % len(body) + body)
                conn.close()
                continue
            assert request.startswith("POST") and "/push" in request.split("\r\n", 1)[0], request
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b'{"status": "The push refers to repository [127.0.0.1:5000/x/app]"}\r\n'
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            server.close()  # gone: no more connections
            conn.close()  # mid-stream
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_an_engine_lost_during_a_push_is_an_unavailable_engine(tmp_path: Path) -> None:
    socket_path = tmp_path / "e.sock"
    server = _dying_engine(socket_path)
    engine = DockerBuilder({"DOCKER_HOST": f"unix://{socket_path}"}, name="three")
    request = BuildRequest(
        image="p/app",
        context=tmp_path,
        dockerfile=tmp_path / "Dockerfile",
        tag=parse_reference("127.0.0.1:5000/x/app:1"),
    )
    lines: list[str] = []

    with pytest.raises(EngineUnavailable, match=r"^p/app: lost the Docker engine three \(.*\) during the push") as lost:
        engine.push(request, Forward(step=lambda _image, step, message: lines.append(message)))

    assert lost.value.engine == "three"
    assert lines == ["pushing 127.0.0.1:5000/x/app:1"]
    server.join(5)
