"""README's promises that had no test of their own, each checked on the real engine, registry and git:
the digest read back after a push, promote against a source tag that moves, `.dockerignore` `!`
exceptions, the same commit rebuilding to the same digest, and the pre-push hook."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path

import httpx

from tests.faults.rewrite import OnFirstBlob, ReadBackRewrite, rewrite_proxy
from tests.helpers import BASE_DOCKERFILE, app_project, git, init_git, run_cli, shop_config, write_project
from tests.integration.conftest import ACCEPT, RegistryPeek, Services

COPY_APP = "FROM scratch\nCOPY app.txt /app.txt\n"


def one_image(root: Path, registry: str, dockerfile: str = COPY_APP, content: str = "v1\n") -> None:
    app_project(root, registry, dockerfile)
    (root / "images/app/app.txt").write_text(content)


def commit_app(root: Path, content: str) -> str:
    (root / "images/app/app.txt").write_text(content)
    git(root, "commit", "-qam", f"app: {content.strip()}")
    return git(root, "rev-parse", "HEAD")


def report(result_stdout: str) -> dict[str, dict[str, object]]:
    return {i["name"]: i for i in json.loads(result_stdout)["images"]}


def image_files(peek: RegistryPeek, repo_path: str, reference: str) -> dict[str, bytes]:
    """The regular files of an image as its layers in the registry hold them (later layers win)."""
    files: dict[str, bytes] = {}
    for digest in peek.layers(repo_path, reference):
        response = httpx.get(f"{peek.base}/{repo_path}/blobs/{digest}", auth=peek.auth, timeout=30)
        response.raise_for_status()
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(response.content))) as layer:
            for member in layer.getmembers():
                extracted = layer.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    files[member.name] = extracted.read()
    return files


def test_a_read_back_digest_other_than_the_pushed_one_fails_the_run(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """README: each image's digest is read back from the registry and compared with what the engine
    pushed. The proxy makes the registry answer another real image for the tag just pushed."""
    answers: dict[str, str] = {}
    rule = ReadBackRewrite(answers)
    with rewrite_proxy(services.plain_registry, rule) as proxy:
        write_project(
            tmp_path,
            shop_config(f"{proxy}/{namespace}", ("app", "other")),
            {"app": COPY_APP, "other": "FROM scratch\nCOPY . /other\n"},
        )
        (tmp_path / "images/app/app.txt").write_text("v1\n")
        first = init_git(tmp_path)
        released = run_cli(["run", "--version", "1.0.0"], tmp_path)
        assert released.code == 0, released.output
        old = plain_peek.digest(f"{namespace}/app", "1.0.0")
        assert old is not None
        before = {name: plain_peek.tags(f"{namespace}/{name}") for name in ("app", "other")}

        answers[f"{namespace}/app"] = old  # from now on sha-… of app reads back as the 1.0.0 image
        second = commit_app(tmp_path, "v2\n")
        result = run_cli(["run", "--version", "1.1.0"], tmp_path)

    assert rule.rewritten, "the proxy never answered a read-back: the test proved nothing"
    pushed = plain_peek.digest(f"{namespace}/app", f"sha-{second[:12]}")  # what the engine really wrote
    assert pushed is not None and pushed != old
    assert result.code == 1, result.output
    assert (
        f"shop/app: {proxy}/{namespace}/app:sha-{second[:12]} points at {old} in the registry, "
        f"but the push wrote {pushed}" in result.output
    ), result.output
    assert f"sha-{first[:12]}" in before["app"]
    for name in ("app", "other"):
        tags = plain_peek.tags(f"{namespace}/{name}")
        assert not {"1.1.0", "1.1"} & tags, (name, tags)
        assert tags - {f"sha-{second[:12]}"} == before[name], (name, tags)
        for tag in ("1.0.0", "1.0", "1", "latest"):
            assert plain_peek.digest(f"{namespace}/{name}", tag) == plain_peek.digest(f"{namespace}/{name}", "1.0.0")
    assert plain_peek.digest(f"{namespace}/app", "latest") == old


def move_tag(registry: str, repo_path: str, tag: str, digest: str) -> None:
    """Another client points `tag` at `digest` (PUT of that manifest's bytes), straight at the registry."""
    base = f"http://{registry}/v2/{repo_path}/manifests"
    manifest = httpx.get(f"{base}/{digest}", headers={"Accept": ACCEPT}, timeout=30)
    manifest.raise_for_status()
    put = httpx.put(
        f"{base}/{tag}",
        content=manifest.content,
        headers={"Content-Type": manifest.headers["Content-Type"]},
        timeout=30,
    )
    put.raise_for_status()


def test_promote_stops_when_a_tag_named_source_moves_during_the_copy(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    one_image(tmp_path, f"{services.plain_registry}/{namespace}")
    first = init_git(tmp_path)
    assert run_cli(["run"], tmp_path).code == 0
    second = commit_app(tmp_path, "v2\n")
    assert run_cli(["run"], tmp_path).code == 0
    repo = f"{namespace}/app"
    tested, other = plain_peek.digest(repo, f"sha-{first[:12]}"), plain_peek.digest(repo, f"sha-{second[:12]}")
    assert tested is not None and other is not None and tested != other

    rule = OnFirstBlob(lambda: move_tag(services.plain_registry, repo, f"sha-{first[:12]}", other))
    with rewrite_proxy(services.plain_registry, rule) as proxy:
        source = f"{proxy}/{repo}:sha-{first[:12]}"
        result = run_cli(["promote", source, f"{proxy}/{namespace}/prod-app", "--version", "1.0.0"], tmp_path)

    assert rule.fired_on is not None, "no blob was requested: the tag did not move during a copy"
    assert plain_peek.digest(repo, f"sha-{first[:12]}") == other  # the move really happened
    assert result.code == 1, result.output
    assert f"{source} moved from {tested} to {other} during the copy; nothing was tagged" in result.output
    assert plain_peek.tags(f"{namespace}/prod-app") == set()


DOCKERIGNORE = "*.txt\n!keep.txt\n"


def ignoring_project(root: Path, registry: str) -> None:
    write_project(
        root,
        shop_config(registry, ("app",)),
        {"app": "FROM scratch\nCOPY . /ctx/\n"},
    )
    (root / "images/app/.dockerignore").write_text(DOCKERIGNORE)
    (root / "images/app/keep.txt").write_text("keep v1\n")
    (root / "images/app/drop.txt").write_text("drop v1\n")


def edit(root: Path, name: str, content: str) -> str:
    (root / "images/app" / name).write_text(content)
    git(root, "commit", "-qam", f"{name}: {content.strip()}")
    return git(root, "rev-parse", "HEAD")


def test_dockerignore_exception_is_built_and_counts_in_the_input_digest(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """A file excluded by a pattern but re-included by `!` is in the image, and a change to it is a
    change of the image's inputs (README: the input digest covers the files `.dockerignore` lets
    through); a change to a file that stays excluded is not."""
    ignoring_project(tmp_path, f"{services.plain_registry}/{namespace}")
    first = init_git(tmp_path)
    built = run_cli(["run", "--json"], tmp_path)
    assert built.code == 0, built.output
    files = image_files(plain_peek, f"{namespace}/app", f"sha-{first[:12]}")
    assert files.get("ctx/keep.txt") == b"keep v1\n", sorted(files)
    assert "ctx/drop.txt" not in files

    dropped = edit(tmp_path, "drop.txt", "drop v2\n")
    reused = run_cli(["run", "--json"], tmp_path)
    assert reused.code == 0, reused.output
    assert report(reused.stdout)["app"]["reused"], reused.stderr
    assert plain_peek.digest(f"{namespace}/app", f"sha-{dropped[:12]}") == report(built.stdout)["app"]["digest"]

    kept = edit(tmp_path, "keep.txt", "keep v2\n")
    rebuilt = run_cli(["run", "--json"], tmp_path)
    assert rebuilt.code == 0, rebuilt.output
    assert not report(rebuilt.stdout)["app"]["reused"], rebuilt.stderr
    assert image_files(plain_peek, f"{namespace}/app", f"sha-{kept[:12]}").get("ctx/keep.txt") == b"keep v2\n"


def test_dockerignore_exception_counts_as_a_change(tmp_path: Path, services: Services, namespace: str) -> None:
    """README: an image is affected by a changed file its `.dockerignore` does not exclude, `!`
    exceptions included."""
    ignoring_project(tmp_path, f"{services.plain_registry}/{namespace}")
    init_git(tmp_path)

    def changed() -> dict[str, str]:
        result = run_cli(["changed", "--since", "HEAD~1", "--json"], tmp_path)
        assert result.code == 0, result.output
        return {i["image"]: i["reason"] for i in json.loads(result.stdout)["images"]}

    edit(tmp_path, "drop.txt", "drop v2\n")
    assert changed() == {}
    edit(tmp_path, "keep.txt", "keep v2\n")
    assert changed() == {"shop/app": "images/app/keep.txt changed"}


def test_same_commit_rebuilds_to_the_same_digest(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """README: `created` is the commit's time, so the same commit rebuilds to the same digest. Two
    `run --no-cache` of one commit, with RUN steps, both really building, push one digest."""
    write_project(
        tmp_path,
        shop_config(f"{services.plain_registry}/{namespace}", ("base",)),
        {"base": BASE_DOCKERFILE},
        busybox=("base",),
    )
    sha = init_git(tmp_path)
    digests = []
    for _ in range(2):
        result = run_cli(["run", "--no-cache", "--json"], tmp_path)
        assert result.code == 0, result.output
        row = report(result.stdout)["base"]
        # Really built (not reused): the report's build window and engine, not progress lines, which a
        # loaded machine may not show for a fast step.
        assert not row["reused"] and row["build_started_at"] and row["engine"], result.stderr
        digests.append(report(result.stdout)["base"]["digest"])
    assert digests[0] == digests[1]
    assert plain_peek.digest(f"{namespace}/base", f"sha-{sha[:12]}") == digests[0]


def test_pre_push_hook_blocks_a_push_whose_build_fails(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """README: pre-push stops the push if the build fails."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    clone = tmp_path / "clone"
    one_image(clone, f"{services.plain_registry}/{namespace}")
    start = init_git(clone)
    git(clone, "remote", "add", "origin", str(remote))
    git(clone, "push", "-q", "origin", "main")
    installed = run_cli(["hooks", "install", "--hook", "pre-push"], clone)
    assert installed.code == 0, installed.output

    def push() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "push", "origin", "main"], cwd=clone, capture_output=True, text=True, check=False)

    dockerfile = clone / "images/app/Dockerfile"
    dockerfile.write_text(COPY_APP + "COPY missing.txt /missing.txt\n")
    git(clone, "commit", "-qam", "break the build")
    broken = git(clone, "rev-parse", "HEAD")
    refused = push()
    assert refused.returncode != 0, refused.stderr
    assert "pipeline: pre-push refs/heads/main" in refused.stderr
    assert git(remote, "rev-parse", "refs/heads/main") == start
    assert f"sha-{broken[:12]}" not in plain_peek.tags(f"{namespace}/app")

    # A fix that also changes the image (a fix alone would leave nothing changed since `start` to build).
    dockerfile.write_text(COPY_APP)
    fixed = commit_app(clone, "v2\n")
    accepted = push()
    assert accepted.returncode == 0, accepted.stderr
    assert "shop/app: images/app/app.txt changed" in accepted.stderr, accepted.stderr
    assert git(remote, "rev-parse", "refs/heads/main") == fixed
    assert f"sha-{fixed[:12]}" in plain_peek.tags(f"{namespace}/app")
