"""Which image store a Docker engine keeps: the classic one (graph drivers: overlay2, ...) or, on Docker
24+ with `features: {containerd-snapshotter: true}` (the default of new installs from Docker 29), the
containerd image store. What differs for a run: on the containerd store an image's ID is the digest of its
manifest (or index), not of its config, an image may be an index of several platforms, and its own
builder can build several platforms in one `docker buildx build --platform a,b`.

Asked once per engine (DOCKER_HOST, DOCKER_CONTEXT) and process: `docker info`'s DriverStatus holds
`["driver-type", "io.containerd.snapshotter.v1"]` on the containerd store."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Mapping

CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"

_STORES: dict[tuple[str | None, str | None], bool] = {}
_GUARD = threading.Lock()


def is_containerd_store(driver_status: str) -> bool:
    """`docker info --format '{{json .DriverStatus}}'` (a JSON list of [key, value] pairs) names the
    containerd snapshotter. Anything else (a graph driver's status, null, not JSON): the classic store."""
    try:
        pairs = json.loads(driver_status)
    except ValueError:
        return False
    if not isinstance(pairs, list):
        return False
    return any(isinstance(pair, list) and pair == ["driver-type", CONTAINERD_SNAPSHOTTER] for pair in pairs)


def docker_output(argv: list[str], environment: Mapping[str, str], timeout: float = 60) -> str | None:
    """What a docker CLI command that asks the engine or builder something prints (stdout); None when it
    cannot be run, takes longer than `timeout` or fails."""
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=dict(environment),
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def containerd_store(environment: Mapping[str, str]) -> bool:
    """Whether the engine this environment names (DOCKER_HOST, DOCKER_CONTEXT) keeps the containerd image
    store. An engine that does not answer counts as classic: its build fails anyway and says why."""
    key = (environment.get("DOCKER_HOST"), environment.get("DOCKER_CONTEXT"))
    with _GUARD:
        if key not in _STORES:
            status = docker_output(["docker", "info", "--format", "{{json .DriverStatus}}"], environment)
            if status is None:
                return False  # not remembered: asked again by the next build
            _STORES[key] = is_containerd_store(status.strip())
        return _STORES[key]
