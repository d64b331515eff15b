"""Attesting 20 pushed digests with SLSA provenance and a CycloneDX SBOM (issue 15), against
`cosign attest` ×40 on the same kind of digests, in one run.

A project of 20 images (`FROM scratch`, busybox, a dpkg status file) is written and committed; one such
image is built with the engine's BuildKit and pushed with the docker CLI once. Every repetition then gets
fresh digests for every method (that image's layers plus a small top layer with its own dpkg status,
pushed through the registry API, outside the timing), so each side writes 40 new attestations every time:
  pipeline       `RunAttester` as a run calls it after each push (`index_platforms`, provenance from the
                 plan and the build, the SBOM read from the registry's layers, `KeySigner.attest` read and
                 write), the 20 images on an executor-wide thread pool (IO_CONCURRENCY = 8 threads), a
                 new RegistryClient with an empty content cache, its host already probed as a run's is;
                 key decrypted once, before; `signature_storage` legacy, then `both` (legacy + referrers)
  cosign attest  `--key K --type slsaprovenance1|cyclonedx --predicate P --tlog-upload=false
                 --allow-http-registry --yes REPO@DIGEST` ×40 (legacy `.att`, like pipeline's legacy), the
                 predicates made beforehand by pipeline for that digest (cosign makes none), 8 at a time
                 and one after another
A warm-up round comes first (the sequential peer is warmed by the concurrent one: same binary, same work);
the methods rotate who goes first in each repetition; CPU is the process's (pipeline) or its children's (cosign).
                                                    target: pipeline (legacy) <= 1.5 s for the 20 digests
Needs the engine, the plain registry and cosign from scripts/services.

    set -a; . /tmp/pipeline-services/env; set +a
    PYTHONPATH=$PWD .venv/bin/python bench/attest_bench.py [--repetitions 3] [--registry 127.0.0.1:5000]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rotation import rotated_samples

from pipeline.builders import open_backends
from pipeline.config import load_config
from pipeline.plan import PlannedImage
from pipeline.registry.client import DOCKER_MANIFEST, Manifest, RegistryClient
from pipeline.registry.contentcache import ContentCache
from pipeline.registry.reference import Repository, parse_repository
from pipeline.run.attesting import RunAttester
from pipeline.run.executor import IO_CONCURRENCY, Built
from pipeline.run.session import Session
from pipeline.run.settings import Settings
from pipeline.signing import keys
from pipeline.signing.runsigner import RunSigner

SERVICES_ENV = Path(os.environ.get("PIPELINE_SERVICES_DIR", "/tmp/pipeline-services")) / "env"
IMAGES = 20
PASSWORD = "bench-passphrase"
DOCKERFILE = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY status /var/lib/dpkg/status\n"
STATUS = """\
Package: libfoo1
Status: install ok installed
Architecture: amd64
Version: 1.2.3-4
Source: foo

Package: busybox-static
Status: install ok installed
Architecture: amd64
Version: 1:1.36.1-9
"""
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def service(name: str) -> str | None:
    value = os.environ.get(name)
    if not value and SERVICES_ENV.exists():
        value = dict(line.split("=", 1) for line in SERVICES_ENV.read_text().splitlines() if "=" in line).get(name)
    return value


def sh(*command: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def write_project(root: Path, registry: str, busybox: Path) -> dict[str, Path]:
    """The 20-image project, committed, with one config per signature storage; config file by storage."""
    images = "\n".join(f"      img{i:02d}: {{context: images/img{i:02d}}}" for i in range(IMAGES))
    root.mkdir(parents=True)
    configs = {}
    for storage in ("legacy", "both"):
        config = root / f"pipelines-{storage}.yaml"
        config.write_text(
            f"registry: {registry}\nnetwork: none\n"
            f"registries:\n  {registry.split('/')[0]}: {{signature_storage: {storage}}}\n"
            "sign: {key: cosign.key, attest: [provenance, sbom]}\n"
            f"pipelines:\n  bench:\n    images:\n{images}\n"
        )
        configs[storage] = config
    for i in range(IMAGES):
        context = root / "images" / f"img{i:02d}"
        context.mkdir(parents=True)
        (context / "Dockerfile").write_text(DOCKERFILE)
        (context / "status").write_text(STATUS)
        shutil.copy(busybox, context / "busybox")
    (root / ".gitignore").write_text("cosign.key\n")
    git = ("git", "-c", "user.name=bench", "-c", "user.email=bench@example.test")
    sh("git", "init", "-q", "-b", "main", cwd=root)
    sh("git", "remote", "add", "origin", "https://git.example.test/bench.git", cwd=root)
    sh(*git, "add", "-A", cwd=root)
    sh(*git, "commit", "-q", "-m", "bench", cwd=root)
    return configs


def push_base(context: Path, image: str) -> str:
    """One of the images built by BuildKit and pushed by the docker CLI: its digest."""
    sh("docker", "buildx", "build", "-q", "--builder", "default", "-t", image, str(context))
    pushed = sh("docker", "push", image)
    sh("docker", "image", "rm", image)
    return next(w for line in pushed.splitlines() if "digest:" in line for w in line.split()[2:3])


def status_layer(text: str) -> tuple[bytes, str]:
    """A gzip tar layer holding var/lib/dpkg/status: its bytes and its diff id."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        data = text.encode()
        for directory in ("var", "var/lib", "var/lib/dpkg"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        info = tarfile.TarInfo("var/lib/dpkg/status")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    plain = tar_bytes.getvalue()
    return gzip.compress(plain, mtime=0), "sha256:" + hashlib.sha256(plain).hexdigest()


class Images:
    """Fresh digests of the base image in each of the 20 repositories: its layers mounted once, then per
    image a new top layer (its own dpkg status), a config and a manifest, pushed through the API."""

    def __init__(self, registry: RegistryClient, base: Repository, digest: str, repositories: list[Repository]):
        self.registry = registry
        self.manifest = registry.manifest_by_digest(base, digest).json()
        self.config = registry.image_config(base, registry.manifest_by_digest(base, digest))
        self.repositories = repositories
        blobs = [self.manifest["config"]["digest"], *(layer["digest"] for layer in self.manifest["layers"])]
        for repository in repositories:
            for blob in blobs:
                if not registry.mount_blob(repository, blob, base):
                    registry.push_blob(repository, registry.get_blob(base, blob))

    def fresh(self, label: str) -> list[str]:
        with ThreadPoolExecutor(IO_CONCURRENCY) as pool:
            return list(pool.map(lambda i: self._push(i, label), range(len(self.repositories))))

    def _push(self, i: int, label: str) -> str:
        repository = self.repositories[i]
        layer, diff_id = status_layer(
            STATUS + f"\nPackage: bench-{label}\nStatus: install ok installed\n"
            f"Architecture: amd64\nVersion: {i}.0-{uuid.uuid4().hex[:8]}\n"
        )
        config = json.loads(json.dumps(self.config))
        config["rootfs"]["diff_ids"].append(diff_id)
        config_bytes = json.dumps(config).encode()
        manifest = json.loads(json.dumps(self.manifest))
        manifest["config"] = {
            **manifest["config"],
            "size": len(config_bytes),
            "digest": self.registry.push_blob(repository, config_bytes),
        }
        manifest["layers"].append(
            {"mediaType": LAYER_GZIP, "size": len(layer), "digest": self.registry.push_blob(repository, layer)}
        )
        body = json.dumps(manifest).encode()
        made = Manifest(DOCKER_MANIFEST, "sha256:" + hashlib.sha256(body).hexdigest(), body)
        self.registry.put_manifest(repository, f"{label}-{i}", made)
        return made.digest


CPU: dict[str, list[float]] = {"legacy": [], "both": [], "cosign_pool": [], "cosign_seq": []}


def children_cpu() -> float:
    """CPU seconds of the finished child processes (the cosign invocations)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def built(image: PlannedImage, digest: str) -> Built:
    """What the executor records of a build it pushed."""
    now = time.time()
    return Built(image, digest, {}, "sha256:" + hashlib.sha256(digest.encode()).hexdigest(), "default", now - 2, now)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", default="127.0.0.1:5000")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated methods: legacy,both,cosign_pool,cosign_seq")
    args = parser.parse_args()
    cosign, busybox = service("PIPELINE_COSIGN"), service("PIPELINE_BUSYBOX") or "/bin/busybox"
    if not cosign or not Path(cosign).exists() or not shutil.which("docker"):
        raise SystemExit("bench: cosign or docker (the peers) is missing; run bash scripts/services")
    prefix = f"{args.registry}/bench-attest-{uuid.uuid4().hex[:8]}"

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        configs = write_project(root, prefix, Path(busybox))
        key_file, _ = keys.write_key_pair(root / "cosign", keys.generate(), PASSWORD)
        settings = Settings.from_environment(os.environ)
        plans = {s: Session(load_config(c), settings).plan(["bench"], "1.4.0") for s, c in configs.items()}
        images = list(plans["legacy"].images.values())
        base_digest = push_base(root / "images" / "img00", f"{prefix}/base:bench")
        started = time.perf_counter()
        key = keys.read_private_key(key_file, PASSWORD)
        decrypt = time.perf_counter() - started
        # As a run opens them (the engine checked, buildx's version read): provenance asks them for versions.
        backends = open_backends({"docker"}, os.environ, next(iter(plans.values())).engines, lambda _message: None)
        caches = iter(range(1_000_000))

        def client() -> RegistryClient:
            """What a run opens: a new client and content cache, the registry probed before any push."""
            made = RegistryClient(lambda _: None, content_cache=ContentCache(Path(tmp) / f"cache{next(caches)}"))
            made.session.connect(args.registry)
            return made

        def attester(storage: str, registry: RegistryClient) -> RunAttester:
            plan = plans[storage]
            signing = RunSigner(
                registry, {i.sign.key: key for i in plan.images.values() if i.sign and i.sign.key}, None
            )
            return RunAttester(registry, signing, plan, configs[storage], str(uuid.uuid4()), backends)

        with client() as setup, ThreadPoolExecutor(IO_CONCURRENCY, thread_name_prefix="image") as pool:
            fresh = Images(setup, parse_repository(f"{prefix}/base"), base_digest, [i.repository for i in images])

            def pipeline(storage: str, label: str) -> float:
                digests = fresh.fresh(label)
                with client() as registry:
                    plan = plans[storage]
                    run = attester(storage, registry)
                    views = [plan.images[i.key] for i in images]
                    begun, cpu = time.perf_counter(), time.process_time()
                    done = list(
                        pool.map(lambda j: run(views[j], digests[j], [built(views[j], digests[j])]), range(IMAGES))
                    )
                    took = time.perf_counter() - begun
                    CPU[storage].append(time.process_time() - cpu)
                assert all(d and "already" not in d for d in done), done
                return took

            def peer(label: str, concurrent: bool) -> float:
                digests = fresh.fresh(label)
                work_dir = Path(tmp) / label
                work_dir.mkdir()
                commands = []
                with client() as registry:  # the predicates pipeline would write for these digests
                    run = attester("legacy", registry)
                    for image, digest in zip(images, digests, strict=True):
                        for kind, cosign_type in (("provenance", "slsaprovenance1"), ("sbom", "cyclonedx")):
                            make = run._provenance if kind == "provenance" else run._sbom  # noqa: SLF001
                            predicate = work_dir / f"{image.name}-{kind}.json"
                            predicate.write_text(json.dumps(make(image, digest, built(image, digest), [])))
                            commands.append(
                                [
                                    cosign,
                                    "attest",
                                    "--key",
                                    str(key_file),
                                    "--type",
                                    cosign_type,
                                    "--predicate",
                                    str(predicate),
                                    "--tlog-upload=false",
                                    "--allow-http-registry",
                                    "--yes",
                                    f"{image.repository}@{digest}",
                                ]
                            )
                env = {**os.environ, "COSIGN_PASSWORD": PASSWORD}
                attest: Callable[[list[str]], object] = lambda command: sh(*command, env=env)  # noqa: E731
                begun, cpu = time.perf_counter(), children_cpu()
                if concurrent:
                    list(pool.map(attest, commands))
                else:
                    for command in commands:
                        attest(command)
                took = time.perf_counter() - begun
                CPU["cosign_pool" if concurrent else "cosign_seq"].append(children_cpu() - cpu)
                return took

            methods: dict[str, Callable[[str], float]] = {
                "legacy": lambda label: pipeline("legacy", label),
                "both": lambda label: pipeline("both", label),
                "cosign_pool": lambda label: peer(label, True),
                "cosign_seq": lambda label: peer(label, False),
            }
            if args.only:
                methods = {name: methods[name] for name in args.only.split(",")}
            # Warm-up: imports, connections, the cosign binary in the page cache (the sequential peer runs the
            # same binary on the same work as the concurrent one, so that warms both).
            for name, work in methods.items():
                if name != "cosign_seq" or "cosign_pool" not in methods:
                    work(f"warm-{name}")
            for cpu in CPU.values():
                cpu.clear()
            load_before = os.getloadavg()[0]
            samples = rotated_samples(
                {name: (lambda i, name=name: methods[name](f"r{i}-{name}")) for name in methods}, args.repetitions
            )
            load_after = os.getloadavg()[0]

    def median(name: str) -> float:
        return statistics.median(samples[name])

    def row(label: str, name: str) -> str:
        if not samples.get(name):
            return f"   {label:<46} (not run)"
        values: Sequence[float] = sorted(samples[name])
        return (
            f"   {label:<46} {median(name):7.3f} s  (min {values[0]:6.3f}, max {values[-1]:6.3f})"
            f"  {median(name) / IMAGES * 1000:6.1f} ms/digest, CPU {statistics.median(CPU[name]):6.3f} s"
        )

    n = args.repetitions
    print(f"attest provenance + SBOM of {IMAGES} digests, {n} repetitions after a warm-up, {IO_CONCURRENCY} at a time")
    print(f"   load average: {load_before:.1f} before, {load_after:.1f} after ({os.cpu_count()} cores)")
    print(f"   key decryption (once, not timed below): {decrypt:.3f} s")
    print(row("pipeline RunAttester, legacy .att", "legacy"))
    print(row("pipeline RunAttester, both (.att + referrers)", "both"))
    print(row(f"cosign attest x{2 * IMAGES}, {IO_CONCURRENCY} at a time", "cosign_pool"))
    print(row(f"cosign attest x{2 * IMAGES}, one after another", "cosign_seq"))
    if not all(samples.get(name) for name in ("legacy", "both", "cosign_pool", "cosign_seq")):
        return 0
    met = "met" if median("legacy") <= 1.5 else "NOT met"
    print(
        f"pipeline adds {median('legacy'):.3f} s for {IMAGES} digests (target <= 1.5 s: {met}); "
        f"both forms {median('both'):.3f} s"
    )
    print(
        f"   ratio pipeline/cosign: {median('legacy') / median('cosign_pool'):.3f} ({IO_CONCURRENCY} at a time), "
        f"{median('legacy') / median('cosign_seq'):.3f} (one after another)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
