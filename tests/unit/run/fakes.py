"""A registry in memory and a builder that "pushes" into it, for the scheduler's and the image build's
unit tests (no services: the integration tests build on the real engine and registries)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline.builders import BuildOutcome, BuildRequest
from pipeline.common.reporting import Reporter
from pipeline.config import load_config
from pipeline.errors import RegistryError
from pipeline.plan import Engine, Plan, PlannedImage, RunContext, make_plan
from pipeline.registry.client import Manifest
from pipeline.registry.reference import ImageRef, Repository
from pipeline.run.image_build import ImageBuild
from pipeline.run.results import Event, ImageResult, RunOptions
from pipeline.run.scheduler import Scheduler
from pipeline.run.slots import REMOTE, EngineSlots, urgencies
from tests.helpers import write_project
from tests.unit.bases.fakes import IMAGE, INDEX, manifest

REGISTRY = "127.0.0.1:5000/t"


def plan_of(
    root: Path, images: str, dockerfiles: Sequence[str] = ("base", "app"), context: RunContext | None = None
) -> Plan:
    """Pipeline `shop` with `images` (YAML under `images:`, indented 6), each context `FROM scratch`."""
    config = f"registry: {REGISTRY}\npipelines:\n  shop:\n    images:\n{images}"
    loaded = load_config(write_project(root, config, {name: "FROM scratch\n" for name in dockerfiles}))
    return make_plan(loaded.spec, loaded.base_dir, [], context or RunContext())


class MemoryRegistry:
    """Tags -> digests and manifests by digest, each image's labels and platform as its config holds them."""

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}  # "repository:tag" -> digest
        self.manifests: dict[str, Manifest] = {}
        self.configs: dict[str, dict[str, Any]] = {}  # image digest -> config (os, architecture, labels)
        self._lock = threading.Lock()

    def push_image(self, ref: ImageRef, labels: dict[str, str], platform: str) -> str:
        os_name, _, arch = platform.partition("/")
        config = {"os": os_name, "architecture": arch, "config": {"Labels": labels}}
        found = manifest({"mediaType": IMAGE, "config": config, "layers": []}, IMAGE)
        with self._lock:
            self.manifests[found.digest] = found
            self.configs[found.digest] = config
            self.tags[f"{ref.repository}:{ref.tag}"] = found.digest
        return found.digest

    def push_index(self, ref: ImageRef, labels: dict[str, str], platforms: Sequence[str]) -> str:
        """What one build of several platforms pushes: an image per platform and their index, tagged."""
        children = [self.push_image(ref, labels, platform) for platform in platforms]
        found = self.write_index(ref.repository, children)
        return self.put_manifest(ref.repository, ref.tag or "", found)

    def write_index(self, repository: Repository, children: Sequence[str]) -> Manifest:
        descriptors = []
        for child in children:
            config = self.configs[child]
            platform = {"os": config["os"], "architecture": config["architecture"]}
            descriptors.append({"mediaType": IMAGE, "digest": child, "size": 1, "platform": platform})
        found = manifest({"mediaType": INDEX, "manifests": descriptors}, INDEX)
        with self._lock:
            self.manifests[found.digest] = found
        return found

    def get_manifest(self, ref: ImageRef) -> Manifest:
        digest = ref.digest or self.resolve_digest(ref)
        if digest is None or digest not in self.manifests:
            raise RegistryError(f"{ref}: not found in the registry")
        return self.manifests[digest]

    def image_labels(self, ref: ImageRef) -> dict[str, str]:
        return self.manifest_labels(ref.repository, self.get_manifest(ref))

    def delete_tag(self, repository: Repository, tag: str) -> bool:
        with self._lock:
            self.tags.pop(f"{repository}:{tag}", None)
        return True

    def resolve_digest(self, ref: ImageRef) -> str | None:
        with self._lock:
            return self.tags.get(f"{ref.repository}:{ref.tag}")

    def tag(self, repository: Repository, digest: str, tag: str) -> None:
        with self._lock:
            self.tags[f"{repository}:{tag}"] = digest

    def list_tags(self, repository: Repository) -> list[str]:
        with self._lock:
            return [k.rpartition(":")[2] for k in self.tags if k.rpartition(":")[0] == str(repository)]

    def manifest_by_digest(self, repository: Repository, digest: str) -> Manifest:
        return self.manifests[digest]

    def manifest_labels(self, repository: Repository, found: Manifest) -> dict[str, str]:
        if found.is_index:  # its first image's, as the registry client reads them
            return self.manifest_labels(repository, self.manifests[found.json()["manifests"][0]["digest"]])
        return dict(self.configs[found.digest]["config"]["Labels"])

    def image_config(self, repository: Repository, found: Manifest) -> dict[str, Any]:
        return self.configs[found.digest]

    def put_manifest(self, repository: Repository, reference: str, found: Manifest) -> str:
        with self._lock:
            self.manifests[found.digest] = found
            self.tags[f"{repository}:{reference}"] = found.digest
        return found.digest


class FakeBackend:
    """Builds by pushing an image with the request's labels for its platform into the registry; records
    each request, and how many builds ran at once. `wrong_digest`: say the push wrote another digest."""

    uses_engines = True
    kind = "fake"

    def __init__(self, registry: MemoryRegistry, hold: threading.Barrier | None = None) -> None:
        self.registry, self.hold = registry, hold
        self.requests: list[BuildRequest] = []
        self.running = self.most = 0
        self.wrong_digest = False
        self.several_platforms = False  # multi_platform: one build makes an index of every platform asked
        self.index_platforms: tuple[str, ...] | None = None  # what that index holds instead (a faulty build)
        self._lock = threading.Lock()

    def versions(self, engine: Engine | None) -> dict[str, str]:
        return {}

    def serves(self, engine: Engine) -> bool:
        return True

    def multi_platform(self, engine: Engine) -> bool:
        return self.several_platforms

    def builder_for(self, image: PlannedImage, engine: Engine | None) -> FakeBackend:
        return self

    def build(self, request: BuildRequest, progress: Reporter) -> BuildOutcome:
        with self._lock:
            self.requests.append(request)
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self.hold is not None:
                self.hold.wait(timeout=2)  # broken (raises) when fewer builds than its parties run at once
            if request.platforms:
                digest = self.registry.push_index(
                    request.tag, dict(request.labels), self.index_platforms or request.platforms
                )
            else:
                digest = self.registry.push_image(request.tag, dict(request.labels), request.platform or "linux/amd64")
        finally:
            with self._lock:
                self.running -= 1
        return BuildOutcome("id-" + digest[7:19], "sha256:" + "0" * 64 if self.wrong_digest else digest)


def run_images(
    plan: Plan, registry: MemoryRegistry, backend: FakeBackend, options: RunOptions
) -> tuple[dict[str, ImageResult], list[Event]]:
    """The scheduler handing each image to an image build, wired as the Executor wires them."""
    events: list[Event] = []

    def emit(key: str, step: str, message: str, log_tail: tuple[str, ...] = ()) -> None:
        events.append(Event(key, step, message, 0.0, log_tail))

    limits = {name: engine.jobs or max(1, options.jobs) for name, engine in plan.engines.items()}
    slots = EngineSlots({**limits, REMOTE: max(1, options.jobs)})
    urgency = urgencies(plan)
    builds: list[ImageBuild] = []
    scheduler = Scheduler(plan, lambda image, row: builds[0](image, row), emit, 8, options.keep_going, urgency)
    builds.append(
        ImageBuild(
            plan,
            {"docker": backend},
            registry,
            registry.write_index,
            lambda host: None,
            options,
            emit,
            slots,
            urgency,
            scheduler.outcomes,
            {},
        )
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        scheduler.run(pool)
    return scheduler.rows, events
