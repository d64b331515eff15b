"""The engine check at the start of a run without docker-py (issue 29): the engines it reaches itself,
read from the environment as docker-py reads it, and the ones it leaves to docker-py (TLS, ssh, npipe)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from pipeline.builders.classic import DockerBuilder
from pipeline.builders.endpoint import DEFAULT_SOCKET, plain_endpoint
from pipeline.errors import EnvironmentProblem


@pytest.mark.parametrize(
    ("environment", "where"),
    [
        ({}, (DEFAULT_SOCKET, "", 0)),
        ({"DOCKER_HOST": "unix://"}, (DEFAULT_SOCKET, "", 0)),
        ({"DOCKER_HOST": "unix:///tmp/e.sock"}, ("/tmp/e.sock", "", 0)),
        ({"DOCKER_HOST": "tcp://10.0.0.1:2375"}, (None, "10.0.0.1", 2375)),
        ({"DOCKER_HOST": "tcp://:2375"}, (None, "127.0.0.1", 2375)),
        ({"DOCKER_HOST": "127.0.0.1:2375"}, (None, "127.0.0.1", 2375)),  # no scheme: tcp
        ({"DOCKER_HOST": "tcp://h:2375", "DOCKER_TLS_VERIFY": ""}, (None, "h", 2375)),  # "": TLS off
    ],
)
def test_engines_reached_without_docker_py(environment: dict[str, str], where: tuple[object, ...]) -> None:
    endpoint = plain_endpoint(environment)
    assert endpoint is not None
    assert (endpoint.path, endpoint.host, endpoint.port) == where


@pytest.mark.parametrize(
    "environment",
    [
        {"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1"},
        {"DOCKER_HOST": "tcp://h:2376", "DOCKER_CERT_PATH": "/certs"},
        {"DOCKER_HOST": "https://h:2376"},
        {"DOCKER_HOST": "ssh://me@h"},
        {"DOCKER_HOST": "npipe:////./pipe/docker_engine"},
        {"DOCKER_HOST": "tcp://h"},  # no port: docker-py's own error
        {"DOCKER_HOST": "fd://"},
        {"DOCKER_HOST": "localhost:2375"},  # "localhost" read as a scheme: docker-py refuses it
    ],
)
def test_tls_ssh_and_odd_addresses_are_left_to_docker_py(environment: dict[str, str]) -> None:
    assert plain_endpoint(environment) is None


def _engine(path: Path, os: str, asked: list[str]) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(4)

    def serve() -> None:
        conn, _ = server.accept()
        request = conn.recv(65536).decode()
        asked.append(request.split("\r\n", 1)[0])
        body = b'{"ApiVersion": "1.41", "Version": "20.10.24", "Os": "%s"}' % os.encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        conn.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()


def test_one_version_request_checks_the_engine_its_os_and_version(tmp_path: Path) -> None:
    asked: list[str] = []
    _engine(tmp_path / "e.sock", "linux", asked)
    engine = DockerBuilder({"DOCKER_HOST": f"unix://{tmp_path / 'e.sock'}"}, name="one")
    engine.check("linux")
    assert engine.engine_version() == "20.10.24"  # kept from the check: the engine is not asked again
    assert asked == ["GET /version HTTP/1.1"]


def test_an_engine_of_another_os_is_refused(tmp_path: Path) -> None:
    _engine(tmp_path / "e.sock", "linux", [])
    engine = DockerBuilder({"DOCKER_HOST": f"unix://{tmp_path / 'e.sock'}"}, name="win")
    with pytest.raises(EnvironmentProblem, match=r"^engine win is declared 'os: windows', but .* runs linux"):
        engine.check("windows")


def test_an_engine_that_does_not_answer_is_named(tmp_path: Path) -> None:
    engine = DockerBuilder({"DOCKER_HOST": f"unix://{tmp_path / 'none.sock'}"})
    with pytest.raises(EnvironmentProblem, match=r"^cannot reach the Docker engine at unix://.*none\.sock: "):
        engine.check()
    assert not engine.answers()
