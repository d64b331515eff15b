"""What differs between Docker's two image stores, read from what the engine says: the pushed digest from
an engine push's stream (an aux record on the classic store, only the status line on the containerd store),
the kind of store from `docker info`'s DriverStatus, and which digest is the built image's ID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.builders import BuildRequest
from pipeline.builders import buildx as buildx_module
from pipeline.builders.buildx import BuildxBuilder
from pipeline.builders.classic import DockerBuilder
from pipeline.builders.store import is_containerd_store
from pipeline.common.reporting import SILENT
from pipeline.errors import RegistryError
from pipeline.plan import Engine
from pipeline.registry.reference import parse_reference

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
CONFIG = "sha256:" + "ef" * 32
LAYERS = [
    {"status": "The push refers to repository [127.0.0.1:5000/demo/app]"},
    {"status": "Preparing", "id": "5c5ee68b93ee"},
    {"status": "Pushed", "id": "5c5ee68b93ee"},
]


class Engine26Push:
    """An engine's push stream as docker-py decodes it."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks

    def push(self, repository: str, **_: object) -> Iterator[dict[str, Any]]:
        return iter(self.chunks)


def pushed(chunks: list[dict[str, Any]]) -> str:
    request = BuildRequest(
        image="shop/app",
        context=Path("."),
        dockerfile=Path("Dockerfile"),
        tag=parse_reference("127.0.0.1:5000/demo/app:sha-1"),
    )
    return DockerBuilder()._push_once(Engine26Push(chunks), request, SILENT)  # type: ignore[arg-type]


def test_the_containerd_store_s_push_gives_its_digest_only_on_the_status_line() -> None:
    assert pushed([*LAYERS, {"status": f"sha-1: digest: {DIGEST} size: 498"}]) == DIGEST


def test_the_classic_store_s_aux_record_still_gives_the_digest_and_wins_over_the_line() -> None:
    line = {"status": f"sha-1: digest: {OTHER} size: 498", "progressDetail": {}}
    assert pushed([*LAYERS, line, {"progressDetail": {}, "aux": {"Tag": "sha-1", "Digest": DIGEST, "Size": 498}}]) == (
        DIGEST
    )
    assert pushed([*LAYERS, {"aux": {"Tag": "sha-1", "Digest": DIGEST, "Size": 498}}]) == DIGEST


@pytest.mark.parametrize(
    "status",
    [
        f"sha-1: digest: {DIGEST[:-2]} size: 498",  # not a whole digest
        f"Pushed {DIGEST}",
        f"sha-1: digest: {DIGEST} size: 498 and more",
    ],
)
def test_a_push_without_a_digest_line_is_an_error(status: str) -> None:
    with pytest.raises(RegistryError, match=r"^shop/app: push to 127.0.0.1:5000/demo/app reported no digest$"):
        pushed([*LAYERS, {"status": status}])


@pytest.mark.parametrize(
    ("driver_status", "containerd"),
    [
        ('[["driver-type","io.containerd.snapshotter.v1"]]', True),
        ('[["Backing Filesystem","extfs"],["Supports d_type","true"],["Using metacopy","false"]]', False),
        ('[["driver-type","io.containerd.snapshotter.v2"]]', False),
        ("null", False),
        ("", False),
        ('{"driver-type": "io.containerd.snapshotter.v1"}', False),
    ],
)
def test_docker_info_s_driver_status_names_the_containerd_store(driver_status: str, containerd: bool) -> None:
    assert is_containerd_store(driver_status) is containerd


@pytest.mark.parametrize(
    ("containerd", "pusher", "metadata", "image_id"),
    [
        # Docker 20.10's BuildKit: the config digest; a build not pushed names only that, as the digest.
        (False, True, {"containerimage.config.digest": CONFIG, "containerimage.digest": DIGEST}, CONFIG),
        (False, True, {"containerimage.digest": CONFIG}, CONFIG),
        # The containerd store names an image by its manifest's digest.
        (True, True, {"containerimage.config.digest": CONFIG, "containerimage.digest": DIGEST}, DIGEST),
        # A buildx builder keeps no image: the config names what it built.
        (True, False, {"containerimage.config.digest": CONFIG, "containerimage.digest": DIGEST}, CONFIG),
    ],
)
def test_the_image_id_is_what_the_engine_that_built_it_calls_it(
    monkeypatch: pytest.MonkeyPatch, containerd: bool, pusher: bool, metadata: dict[str, str], image_id: str
) -> None:
    monkeypatch.setattr(buildx_module, "containerd_store", lambda _environment: containerd)
    engine = Engine("default") if pusher else Engine("kit", buildx_builder="kit")
    builder = BuildxBuilder({}, engine, DockerBuilder() if pusher else None)
    assert builder._image_id(metadata) == image_id
