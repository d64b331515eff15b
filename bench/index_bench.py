"""Cost of an image index over a single image (issue 14): four per-platform images pushed once, then in
alternating repetitions, each on a fresh RegistryClient (new connections, TLS probe, as a run pays):

  (a) one image: its 4 release/floating tags written by publish (`apply_changes`: manifest read once, 4 PUTs);
  (b) `push_index` of the 4 children (an empty content cache: every child's manifest and config read), then
      the same 4 tags on the index the same way; (b warm) the same with the children already in the cache;
  and the same pair as a run does it, with the executor's tags (`RegistryClient.tag`): the input tag on
  the image, the build and input tags on the index (the image's build tag comes with its `docker push`).
Peers on the same work, warmed first: `docker buildx imagetools create -t` ×4 of the 4 children (and of
the one image, for the CLI's own difference), and `docker manifest create --insecure` + `docker manifest
push --insecure` with the 3 other tags by `docker buildx imagetools create -t`.
                                                       target: (b) - (a) <= 50 ms
Needs the engine and the plain registry from scripts/services (buildx resolves 127.0.0.1 over plain HTTP).

    .venv/bin/python bench/index_bench.py [--registry 127.0.0.1:5000] [--repetitions 40]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from rotation import rotated_samples

from pipeline.registry.client import RegistryClient
from pipeline.registry.contentcache import ContentCache
from pipeline.registry.index import push_index
from pipeline.registry.reference import Repository, parse_repository
from pipeline.release.publish import Action, TagChange, apply_changes

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le")


class RegistryHiccup(Exception):
    """The registry answered 500 to a peer: Docker Distribution's filesystem storage rewrites a digest's
    revision link on each PUT of it, so a HEAD racing the CLI's own concurrent tag PUTs can read it torn."""


def sh(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 and "500 Internal Server Error" in done.stdout + done.stderr:
        raise RegistryHiccup(" ".join(command))
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def push_children(root: Path, image: str) -> list[str]:
    """`FROM scratch` + `COPY` (no RUN: no emulation) for each platform on the engine's BuildKit, pushed
    with the docker CLI; the pushed manifests' digests."""
    digests = []
    for platform in PLATFORMS:
        context = root / platform.replace("/", "-")
        context.mkdir()
        (context / "content").write_text(f"{platform} {uuid.uuid4()}\n")
        (context / "Dockerfile").write_text("FROM scratch\nCOPY content /content\n")
        ref = f"{image}:child-{context.name}"
        sh("docker", "buildx", "build", "-q", "--builder", "default", "--platform", platform, "-t", ref, str(context))
        pushed = sh("docker", "push", ref)
        sh("docker", "image", "rm", ref)
        digest = next(w for line in pushed.splitlines() if "digest:" in line for w in line.split()[2:3])
        digests.append(digest)
    return digests


def tags_of(method: str, repetition: int) -> list[str]:
    """A release's tags: a new version each repetition, the floating tags moved."""
    return [f"{method}-1.{repetition}.0", f"{method}-1.{repetition}", f"{method}-1", f"{method}-latest"]


def publish(client: RegistryClient, repository: Repository, digest: str, tags: list[str], journal: Path) -> None:
    changes = [
        TagChange("app", repository, tag, "release" if i == 0 else "floating", Action.CREATE, digest, None, "bench")
        for i, tag in enumerate(tags)
    ]
    apply_changes(changes, client, lambda *_: None, lambda _c: journal, "bench")


HICCUPS: list[str] = []


def timed(work: Callable[[], object]) -> float:
    """Milliseconds of one sample; a sample a registry hiccup broke is noted and taken again."""
    for _attempt in range(5):
        started = time.perf_counter()
        try:
            work()
        except RegistryHiccup as hiccup:
            HICCUPS.append(str(hiccup))
            continue
        return (time.perf_counter() - started) * 1000
    raise SystemExit(f"bench: the registry kept answering 500 to {HICCUPS[-1]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", default="127.0.0.1:5000")
    parser.add_argument("--repetitions", type=int, default=40)
    args = parser.parse_args()
    if not shutil.which("docker"):
        raise SystemExit("bench: 'docker' (a comparison peer) is missing; install it (bash scripts/services)")
    namespace = f"bench-index-{uuid.uuid4().hex[:8]}"
    image = f"{args.registry}/{namespace}/app"
    repository = parse_repository(image)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        children = push_children(root, image)
        single = children[0]
        journal = root / "journal"
        warm_cache = ContentCache(root / "warm")
        caches = iter(range(1_000_000))

        def client(cache: ContentCache | None = None) -> RegistryClient:
            """What a run opens: a new client, with an empty content cache unless one is given."""
            return RegistryClient(lambda _: None, content_cache=cache or ContentCache(root / f"cold{next(caches)}"))

        def one(i: int) -> None:
            with client() as registry:
                publish(registry, repository, single, tags_of("one", i), journal)

        def index(i: int, cache: ContentCache | None = None, method: str = "idx") -> None:
            with client(cache) as registry:
                made = push_index(registry, repository, children)
                publish(registry, repository, made.digest, tags_of(method, i), journal)

        def one_run(i: int) -> None:
            with client() as registry:
                registry.tag(repository, single, f"one-input-{i}")
                publish(registry, repository, single, tags_of("onerun", i), journal)

        def index_run(i: int) -> None:
            with client() as registry:
                made = push_index(registry, repository, children)
                registry.tag(repository, made.digest, f"idx-build-{i}")
                registry.tag(repository, made.digest, f"idx-input-{i}")
                publish(registry, repository, made.digest, tags_of("idxrun", i), journal)

        def imagetools(method: str, i: int, sources: list[str]) -> None:
            targets = [arg for tag in tags_of(method, i) for arg in ("-t", f"{image}:{tag}")]
            sh("docker", "buildx", "imagetools", "create", *targets, *(f"{image}@{d}" for d in sources))

        def manifest_cli(i: int) -> None:
            first, *others = tags_of("man", i)
            sh("docker", "manifest", "create", "--insecure", f"{image}:{first}", *(f"{image}@{d}" for d in children))
            sh("docker", "manifest", "push", "--insecure", "--purge", f"{image}:{first}")
            targets = [arg for tag in others for arg in ("-t", f"{image}:{tag}")]
            sh("docker", "buildx", "imagetools", "create", *targets, f"{image}:{first}")

        methods: dict[str, Callable[[int], object]] = {
            "a": one,
            "b": index,
            "b_warm": lambda i: index(i, warm_cache, "idxwarm"),
            "a_run": one_run,
            "b_run": index_run,
            "cli_index": lambda i: imagetools("it", i, children),
            "cli_one": lambda i: imagetools("itone", i, [single]),
            "manifest": manifest_cli,
        }
        # Warm every peer (interpreter paths, CLI binaries in the page cache, the registry's own caches)
        # and fill the warm content cache.
        for work in methods.values():
            timed(lambda: work(-1))  # noqa: B023 - called at once
            timed(lambda: work(-2))  # noqa: B023
        load_before = os.getloadavg()[0]
        samples = rotated_samples(
            {name: (lambda i, work=work: timed(lambda: work(i))) for name, work in methods.items()}, args.repetitions
        )
        load_after = os.getloadavg()[0]

    def median(name: str) -> float:
        return statistics.median(samples[name])

    def row(label: str, name: str, against: str | None = None) -> str:
        values = sorted(samples[name])
        q1, _, q3 = statistics.quantiles(values, n=4)
        text = f"   {label:<52} {median(name):7.1f} ms  (IQR {q1:6.1f}–{q3:6.1f}, min {values[0]:6.1f})"
        return text + (f"  {median(name) / median(against):5.2f}x" if against else "")

    n = args.repetitions
    if HICCUPS:
        print(f"   (samples taken again after the registry answered 500 to a peer: {len(HICCUPS)})")
    print(f"index of {len(children)} ({', '.join(PLATFORMS)}) vs one image, {n} alternating repetitions")
    print(f"   load average: {load_before:.1f} before, {load_after:.1f} after ({os.cpu_count()} cores)")
    print(row("(a) one image: 4 tags by publish", "a"))
    print(row("(b) push_index + the 4 tags, empty content cache", "b", "a"))
    print(row("(b) with the children in the content cache", "b_warm", "a"))
    print(row("(a) as a run: input tag + the 4 tags", "a_run"))
    print(row("(b) as a run: push_index + build, input tags + the 4 tags", "b_run", "a_run"))
    print(row("imagetools create -t x4, the 4 children", "cli_index", "cli_one"))
    print(row("imagetools create -t x4, the one image", "cli_one"))
    print(row("manifest create + push --insecure, imagetools -t x3", "manifest", "cli_one"))
    extra, ratio = median("b") - median("a"), median("b") / median("a")
    print(f"index of 4 costs +{extra:.1f} ms over tagging one image (target <= 50 ms); ratio b/a {ratio:.2f}")
    print(
        f"   warm content cache: +{median('b_warm') - median('a'):.1f} ms; as a run: "
        f"+{median('b_run') - median('a_run'):.1f} ms; the docker CLI's own difference: "
        f"+{median('cli_index') - median('cli_one'):.1f} ms"
    )
    print(
        f"   pipeline/peer (b / imagetools create): {median('b') / median('cli_index'):.3f}; "
        f"(b / manifest create + push): {median('b') / median('manifest'):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
