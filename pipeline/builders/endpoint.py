"""What a run asks a Docker engine before it builds anything (does it answer, its version and OS), over the
stdlib's http.client: a run that builds nothing (every image reused) never loads docker-py and requests,
~70 ms of a no-op's start-up (issue 29). The engine is the one DOCKER_HOST names, read as docker-py reads
it; one reached over TLS, ssh or a named pipe, or an address docker-py would refuse, has no `PlainEndpoint`
(None), and the caller asks it through docker-py, as a build does."""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

DEFAULT_SOCKET = "/var/run/docker.sock"  # docker-py's, where DOCKER_HOST is unset
_DEFAULT_HTTP_HOST = "127.0.0.1"  # docker-py's, for "tcp://:2375"


class EngineError(Exception):
    """The engine did not answer, or answered with an error."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class PlainEndpoint:
    """An engine on a unix socket (`path`) or plain TCP (`host`, `port`)."""

    def __init__(self, path: str | None = None, host: str = "", port: int = 0) -> None:
        self.path, self.host, self.port = path, host, port

    def get(self, url: str, timeout: float) -> bytes:
        connection = (
            _UnixConnection(self.path, timeout)
            if self.path is not None
            else http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        )
        try:
            connection.request("GET", url)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError(str(exc) or type(exc).__name__) from None
        finally:
            connection.close()
        if response.status != 200:
            raise EngineError(f"{response.status} {response.reason}: {body.decode(errors='replace').strip()}")
        return body

    def version(self, timeout: float) -> dict[str, Any]:
        """The engine's `GET /version` (Version, ApiVersion, Os, ...), the first request docker-py makes."""
        try:
            found = json.loads(self.get("/version", timeout))
        except ValueError as exc:
            raise EngineError(f"not an engine's version: {exc}") from None
        if not isinstance(found, dict):
            raise EngineError("not an engine's version")
        return found

    def ping(self, timeout: float) -> bool:
        try:
            self.get("/_ping", timeout)
        except EngineError:
            return False
        return True


def plain_endpoint(environment: Mapping[str, str]) -> PlainEndpoint | None:
    """The engine `environment` names (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) where docker-py
    (kwargs_from_env, then APIClient's parse_host) would reach it without TLS, on a unix socket or over
    plain HTTP; None where it would use TLS, ssh or a named pipe, or raise (docker-py's own business).
    tests/unit/builders/test_endpoint.py compares this with docker-py itself, address by address."""
    # kwargs_from_env: a non-empty DOCKER_CERT_PATH or any DOCKER_TLS_VERIFY but "" turn TLS on.
    verify = environment.get("DOCKER_TLS_VERIFY") not in (None, "")
    cert_path = environment.get("DOCKER_CERT_PATH") or ""
    address = environment.get("DOCKER_HOST") or ""
    if cert_path or verify:
        # Its TLSConfig refuses missing files, and APIClient refuses TLS without a DOCKER_HOST; else a
        # unix socket or an http:// address is still reached in plain (only tcp:// turns into https).
        directory = cert_path or os.path.join(os.path.expanduser("~"), ".docker")
        needed = ("cert.pem", "key.pem", "ca.pem") if verify else ("cert.pem", "key.pem")
        if not address or not all(os.path.isfile(os.path.join(directory, name)) for name in needed):
            return None
    if not address or address.strip() == "unix://":
        return None if sys.platform == "win32" else PlainEndpoint(DEFAULT_SOCKET)
    # parse_host, for the addresses it reaches without TLS.
    address = address.strip()
    parsed = urlparse(address)
    scheme = parsed.scheme
    if not scheme or any(c not in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+" for c in scheme):
        parsed, scheme = urlparse(f"//{address}", "tcp"), "tcp"
    if scheme not in ("tcp", "http", "unix", "http+unix"):  # https, ssh, npipe (or refused: fd, others)
        return None
    if (scheme in ("tcp", "http") and not parsed.netloc) or parsed.params or parsed.query or parsed.fragment:
        return None
    if parsed.password:
        return None
    if scheme in ("unix", "http+unix"):
        path = parsed.path if parsed.hostname is None else f"{parsed.hostname}/{parsed.path}"
        # The URL it makes, as APIClient and its UnixHTTPAdapter turn it into a socket path ("unix:" and
        # "unix:////" make "http+unix:", which no adapter takes).
        url = f"http+unix://{path}".rstrip("/")
        if not url.startswith("http+unix://"):
            return None
        socket_path = url.replace("http+unix://", "")
        return PlainEndpoint(socket_path if socket_path.startswith("/") else f"/{socket_path}")
    if scheme == "tcp" and (cert_path or verify):
        return None  # https
    try:
        port = parsed.port or 0
    except ValueError:
        return None
    if port <= 0:
        return None  # "port is required"
    # Past the port, a path or a user name would be part of every request's URL: docker-py's business.
    if parsed.path.rstrip("/") or parsed.username is not None:
        return None
    return PlainEndpoint(host=parsed.hostname or _DEFAULT_HTTP_HOST, port=port)
