"""The engine check at the start of a run without docker-py (issue 29): the engines it reaches itself,
read from the environment as docker-py reads it, and the ones it leaves to docker-py (TLS, ssh, npipe)."""

from __future__ import annotations

import itertools
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import docker.errors
import docker.transport
import docker.utils
import pytest

from pipeline.builders.classic import DockerBuilder
from pipeline.builders.endpoint import DEFAULT_SOCKET, PlainEndpoint, plain_endpoint
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


# Every DOCKER_HOST form, each with every way of turning TLS on or off (below).
HOSTS = [
    *("", " ", "unix://", " unix:// ", "unix:", "unix:////", "unix:///var/run/x.sock", "unix:///x.sock/"),
    *("unix://relative", "unix://Rel/x.sock", "http+unix:///x.sock", "unix:///a;b", "unix://h:x/s"),
    *("tcp://host:2375", "tcp://Host:2375/", "tcp://host:2375//", "tcp://host:2375/v", " tcp://host:2375 "),
    *("tcp://:2375", "tcp://[::1]:2375", "tcp://user@host:2375", "tcp://user:pw@host:2375", "tcp://@host:2375"),
    *("tcp://host:0", "tcp://host:99999", "tcp://host:x", "tcp://host:2375?x=1", "tcp://host:2375#f"),
    *("http://host:2375", "http://host:2375/a;b", "https://host:2376", "host:2375", "127.0.0.1:2375"),
    *("tcp://host", "tcp://", "ssh://me@host", "ssh://host:2222", "npipe:////./pipe/docker_engine", "fd://"),
    *("garbage", "::::", "tcp:// host:2375", "tcp://ho st:2375", "TCP://host:2375"),
]
TLS = {
    "off": {},
    "verify-empty": {"DOCKER_TLS_VERIFY": ""},
    "verify-no-files": {"DOCKER_TLS_VERIFY": "1"},  # ~/.docker has no certificates
    "verify-home-files": {"DOCKER_TLS_VERIFY": "0", "HOME_FILES": "1"},  # any value but "": on
    "verify-cert-path": {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "{certs}"},
    "cert-path": {"DOCKER_CERT_PATH": "{certs}"},
    "cert-path-no-ca": {"DOCKER_CERT_PATH": "{no_ca}"},  # ca.pem is only needed to verify
    "cert-path-empty-dir": {"DOCKER_CERT_PATH": "{empty}"},
}


def docker_py_endpoint(environment: dict[str, str]) -> tuple[str | None, str, int] | None:
    """Where docker-py itself connects for `environment` (kwargs_from_env, then APIClient: parse_host and
    its unix adapter) when that is a unix socket or plain HTTP at the URL's root; None otherwise."""
    try:
        kwargs = docker.utils.kwargs_from_env(environment=environment)
        tls = kwargs.get("tls", False)
        if tls and not kwargs.get("base_url"):
            return None  # APIClient: "If using TLS, the base_url argument must be provided."
        url = str(docker.utils.parse_host(kwargs.get("base_url"), False, tls=bool(tls)))
    except (docker.errors.DockerException, ValueError):
        return None
    if url.startswith("http+unix://"):
        return str(docker.transport.UnixHTTPAdapter(url).socket_path), "", 0
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.path or parts.username is not None or parts.port is None:
        return None
    return None, parts.hostname or "", parts.port


@pytest.mark.parametrize(("host", "tls"), list(itertools.product(HOSTS, TLS)))
def test_plain_endpoint_is_where_docker_py_connects(
    host: str, tls: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plain_endpoint answers (a socket path, or host and port) exactly where docker-py reaches the engine
    without TLS, and only there: TLS, ssh, a named pipe and every address docker-py refuses are None."""
    folders = {name: tmp_path / name for name in ("certs", "no_ca", "empty", "home/.docker")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    for name in ("cert.pem", "key.pem", "ca.pem"):
        (folders["certs"] / name).write_text("x")
        if name != "ca.pem":
            (folders["no_ca"] / name).write_text("x")
        if TLS[tls].get("HOME_FILES"):
            (folders["home/.docker"] / name).write_text("x")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # docker-py's ~/.docker, where no DOCKER_CERT_PATH
    environment = {"PATH": "/bin"}  # never empty: kwargs_from_env would read os.environ
    environment.update({k: v.format(**{n: str(f) for n, f in folders.items()}) for k, v in TLS[tls].items()})
    environment.pop("HOME_FILES", None)
    if host:
        environment["DOCKER_HOST"] = host
    endpoint: PlainEndpoint | None = plain_endpoint(environment)
    found = None if endpoint is None else (endpoint.path, endpoint.host, endpoint.port)
    assert found == docker_py_endpoint(environment)
