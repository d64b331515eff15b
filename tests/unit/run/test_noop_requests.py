"""What a no-op run asks the registry for each reused image: the real registry client over a registry in
memory (its transport seam), every request counted. The floor is a HEAD of the input tag (where the image
with these inputs is) and one of the build tag (already on it); the manifest and config behind the digest
are read once (the label check), then come from what the client already holds."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

from pipeline.builders import BuildOutcome, BuildRequest
from pipeline.common.reporting import Reporter
from pipeline.plan import Engine, PlannedImage, RunContext
from pipeline.registry.client import OCI_MANIFEST, RegistryClient
from pipeline.registry.contentcache import ContentCache
from pipeline.run.executor import Executor
from pipeline.run.results import RunOptions, Status
from tests.unit.run.fakes import plan_of

HOST = "127.0.0.1:5000"
IMAGES = "".join(f"      img{n}: {{context: images/img{n}{', depends_on: [img0]' if n else ''}}}\n" for n in range(3))


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class HttpRegistry:
    """An OCI distribution registry in memory (manifests, tags, config blobs), each request counted by
    method and kind (`HEAD manifests`, `GET blobs`)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.tags: dict[tuple[str, str], str] = {}  # (repository path, tag) -> digest
        self.requests: Counter[str] = Counter()

    def push(self, repository: str, tag: str, labels: dict[str, str]) -> str:
        """What a build pushes: its config (with the build's labels) and manifest, under `tag`."""
        config = json.dumps({"os": "linux", "architecture": "amd64", "config": {"Labels": labels}}).encode()
        self.blobs[_sha256(config)] = config
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha256(config)},
            "layers": [],
        }
        body = json.dumps(document).encode()
        self.manifests[_sha256(body)] = body
        self.tags[(repository, tag)] = _sha256(body)
        return _sha256(body)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v2/")
        if not path:
            return httpx.Response(200)
        repository, kind, reference = path.rsplit("/", 2)
        self.requests[f"{request.method} {kind}"] += 1
        if kind == "blobs":
            found = self.blobs.get(reference)
            return httpx.Response(200, content=found) if found is not None else httpx.Response(404)
        if request.method == "PUT":
            self.manifests[_sha256(request.content)] = request.content
            self.tags[(repository, reference)] = _sha256(request.content)
            return httpx.Response(201, headers={"Docker-Content-Digest": _sha256(request.content)})
        digest = reference if reference.startswith("sha256:") else self.tags.get((repository, reference))
        if digest is None or digest not in self.manifests:
            return httpx.Response(404)
        headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest}
        return httpx.Response(200, headers=headers, content=b"" if request.method == "HEAD" else self.manifests[digest])


class PushingBackend:
    """Builds by pushing an image with the request's labels under the request's tag."""

    uses_engines = True
    kind = "fake"

    def __init__(self, registry: HttpRegistry) -> None:
        self.registry = registry
        self.builds = 0

    def versions(self, engine: Engine | None) -> dict[str, str]:
        return {}

    def serves(self, engine: Engine) -> bool:
        return True

    def multi_platform(self, engine: Engine) -> bool:
        return False

    def builder_for(self, image: PlannedImage, engine: Engine | None) -> PushingBackend:
        return self

    def build(self, request: BuildRequest, progress: Reporter) -> BuildOutcome:
        self.builds += 1
        digest = self.registry.push(request.tag.repository.path, request.tag.tag or "", dict(request.labels))
        return BuildOutcome("id-" + digest[7:19], digest)


def run(tmp_path: Path, registry: HttpRegistry, backend: PushingBackend, cache: ContentCache) -> dict[str, Status]:
    """One `pipeline run` of the plan, as the session wires it, with its own registry client."""
    plan = plan_of(tmp_path / "project", IMAGES, ["img0", "img1", "img2"], RunContext(git_sha="ab" * 20))
    transport = httpx.MockTransport(registry.handle)
    with RegistryClient(lambda _: None, cache, insecure_registries=[HOST], transport=transport) as client:
        executor = Executor(plan, {"docker": backend}, client, lambda _: None, RunOptions(jobs=2))
        result = executor.run()
    return {key: row.status for key, row in result.images.items()}


@pytest.mark.parametrize(
    ("store", "each"),
    [
        # The content cache holds the manifest and config from an earlier no-op: the two tags only.
        ("writable", {"HEAD manifests": 2}),
        # No store that keeps anything (read-only cache directory): they are read once, not twice.
        ("read-only", {"HEAD manifests": 2, "GET manifests": 1, "GET blobs": 1}),
    ],
)
def test_a_no_op_run_asks_for_each_reused_image_no_more_than_its_floor(
    tmp_path: Path, store: str, each: dict[str, int]
) -> None:
    if store == "writable":
        cache = ContentCache(tmp_path / "cache")
    else:
        (tmp_path / "cache").write_text("a file, where the store's directory would be\n")
        cache = ContentCache(tmp_path / "cache" / "content")
    registry = HttpRegistry()
    backend = PushingBackend(registry)
    assert set(run(tmp_path, registry, backend, cache).values()) == {Status.SUCCEEDED}
    assert backend.builds == 3
    run(tmp_path, registry, backend, cache)  # the first no-op reads what the store keeps from then on
    registry.requests.clear()

    assert set(run(tmp_path, registry, backend, cache).values()) == {Status.SUCCEEDED}

    assert backend.builds == 3  # nothing built: every image reused
    assert dict(registry.requests) == {kind: count * 3 for kind, count in each.items()}
