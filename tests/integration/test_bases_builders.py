"""The builders without named contexts stand on the resolved base digest too: the classic builder and ACR
Tasks (its emulator) build a Dockerfile with `repository@digest` written in, never the engine's stale copy
of a moved tag; a Windows-style index base gives each Windows variant its own child, and a Windows build
the base lacks is refused before anything builds."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

from tests.acr.emulator import AcrEmulator
from tests.helpers import git, init_git, run_cli, write_project
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_acr import acr_block, emulator, env_for  # noqa: F401 - the emulator fixture
from tests.integration.test_bases_run import docker, push_upstream, report

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
# The app copies its whole context: .dockerignore must still keep secret.txt out, and the pinned
# Dockerfile pipeline adds to the context must not end up in the image.
APP_FILES = {"app.txt": "app\n", "secret.txt": "must stay out\n", ".dockerignore": "secret.txt\n"}


def _app(root: Path, config: str, upstream: str) -> str:
    dockerfile = f"# the upstream base, by tag\nFROM {upstream}\nCOPY . /ctx/\n"
    write_project(root, config, {"app": dockerfile})
    for name, text in APP_FILES.items():
        (root / "images" / "app" / name).write_text(text)
    init_git(root)
    return dockerfile


def _moved_upstream_rebuilds_on_the_registry_digest(
    root: Path,
    work: Path,
    upstream: str,
    app_repo: str,
    peek: RegistryPeek,
    env: dict[str, str] | None = None,
) -> None:
    """The flow both builders go through: first build on the old upstream, then move the tag while the
    engine keeps the old image under it, and build again (with and without the input cache)."""
    upstream_repo = upstream.split("/", 1)[1].rsplit(":", 1)[0]
    old_id = push_upstream(work, upstream, "old upstream\n")
    old = peek.digest(upstream_repo, "1")
    first = run_cli(["run", "--json"], root, env=env)
    assert first.code == 0, first.output
    files = peek.files(app_repo, report(first.stdout)["app"]["digest"])
    assert files["up.txt"] == b"old upstream\n"

    push_upstream(work, upstream, "new upstream\n")
    new = peek.digest(upstream_repo, "1")
    assert new is not None and new != old
    docker("tag", old_id, upstream)  # the engine's copy of the tag is stale now
    for args in (["run", "--json"], ["run", "--json", "--no-cache"]):
        moved = run_cli(args, root, env=env)
        assert moved.code == 0, moved.output
        app = report(moved.stdout)["app"]
        assert app["reused"] is False
        assert [base["digest"] for base in app["bases"]] == [new]
        files = peek.files(app_repo, app["digest"])
        # Built on the registry's new image, not the stale copy: the upstream's file is the new one.
        assert files["up.txt"] == b"new upstream\n", args
        # The user's context, as their .dockerignore says, and their own Dockerfile (not the pinned one).
        assert files["ctx/app.txt"] == b"app\n"
        assert "ctx/secret.txt" not in files and "ctx/.pipeline.Dockerfile" not in files
        assert files["ctx/Dockerfile"] == (root / "images/app/Dockerfile").read_bytes()
        # The stale copy is still there, untouched: the build neither read nor replaced it.
        assert docker("image", "inspect", "--format", "{{.Id}}", upstream) == old_id


def test_classic_builder_builds_a_moved_upstream_on_the_registry_digest_not_the_stale_local_copy(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    registry = f"{services.plain_registry}/{namespace}"
    upstream = f"{registry}-upstream/base:1"
    root = tmp_path / "project"
    config = f"""\
        registry: {registry}
        network: none
        builder: classic
        pipelines:
          shop:
            images:
              app: {{context: images/app}}
        """
    _app(root, config, upstream)
    _moved_upstream_rebuilds_on_the_registry_digest(root, tmp_path, upstream, f"{namespace}/app", plain_peek)


def test_acr_builds_a_moved_upstream_on_the_registry_digest_not_the_stale_local_copy(
    tmp_path: Path,
    services: Services,
    emulator: AcrEmulator,  # noqa: F811 - the fixture imported above
    namespace: str,
    plain_peek: RegistryPeek,
) -> None:
    registry = f"{services.plain_registry}/{namespace}"
    upstream = f"{registry}-upstream/base:1"
    root = tmp_path / "project"
    config = (
        f"registry: {registry}\nnetwork: none\n"
        + acr_block(emulator)
        + f"""\
pipelines:
  shop:
    images:
      app: {{context: images/app, builder: acr, repository: {emulator.login_server}/{namespace}/app}}
"""
    )
    dockerfile = _app(root, config, upstream)
    before = len(emulator.runs)
    _moved_upstream_rebuilds_on_the_registry_digest(
        root, tmp_path, upstream, f"{namespace}/app", plain_peek, env_for(emulator)
    )
    # What ACR was sent: the Dockerfile with the digest written in, each line where the user wrote it.
    runs = list(emulator.runs.values())[before:]
    assert len(runs) == 3 and all(run.status == "Succeeded" for run in runs)
    new = plain_peek.digest(f"{namespace}-upstream/base", "1")
    uploaded = runs[-1].dockerfile_text
    assert uploaded.splitlines()[:3] == [
        "# the upstream base, by tag",
        f"FROM {registry}-upstream/base@{new}",
        "COPY . /ctx/",
    ], uploaded
    assert len(dockerfile.splitlines()) == 3


# --- a Windows-style index base -------------------------------------------------------------------

WINDOWS = {"ltsc2019": "10.0.17763.6293", "ltsc2022": "10.0.20348.2700"}


def _put_blob(http: httpx.Client, base: str, blob: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    started = http.post(f"{base}/blobs/uploads/")
    started.raise_for_status()
    location = urllib.parse.urljoin(base, started.headers["Location"])
    separator = "&" if "?" in location else "?"
    http.put(
        f"{location}{separator}digest={digest}", content=blob, headers={"Content-Type": "application/octet-stream"}
    ).raise_for_status()
    return digest


def push_windows_index(work: Path, registry: str, repo: str, emu: AcrEmulator) -> dict[str, tuple[str, str]]:
    """Push `registry/repo:1`, an index of two windows/amd64 images, one per WINDOWS version: each a tiny
    Linux image (/flavour.txt) whose config says windows and that os.version (no Windows engine here), its
    Linux original kept in the same repository for the ACR emulator to build on (`standins`).
    Returns {flavour: (windows child digest, Linux original digest)}."""
    base = f"http://{registry}/v2/{repo}"
    children = {}
    descriptors: list[dict[str, Any]] = []
    with httpx.Client(timeout=60) as http:
        for flavour, version in WINDOWS.items():
            context = work / f"win-{flavour}"
            context.mkdir(parents=True)
            (context / "Dockerfile").write_text("FROM scratch\nCOPY flavour.txt /flavour.txt\n")
            (context / "flavour.txt").write_text(f"{flavour} base\n")
            reference = f"{registry}/{repo}:linux-{flavour}"
            docker("buildx", "build", "--builder", "default", "--load", "-q", "-t", reference, str(context))
            docker("push", "-q", reference)
            got = http.get(
                f"{base}/manifests/linux-{flavour}", headers={"Accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"}
            )
            got.raise_for_status()
            linux = got.headers["Docker-Content-Digest"]
            media_type = got.headers["Content-Type"].split(";")[0]
            manifest = got.json()
            config = http.get(f"{base}/blobs/{manifest['config']['digest']}").json()
            config.update({"os": "windows", "architecture": "amd64", "os.version": version})
            blob = json.dumps(config, separators=(",", ":")).encode()
            manifest["config"] = {**manifest["config"], "digest": _put_blob(http, base, blob), "size": len(blob)}
            body = json.dumps(manifest).encode()
            windows = "sha256:" + hashlib.sha256(body).hexdigest()
            http.put(
                f"{base}/manifests/{windows}", content=body, headers={"Content-Type": media_type}
            ).raise_for_status()
            descriptors.append(
                {
                    "mediaType": media_type,
                    "digest": windows,
                    "size": len(body),
                    "platform": {"architecture": "amd64", "os": "windows", "os.version": version},
                }
            )
            emu.standins[windows] = linux
            children[flavour] = (windows, linux)
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}).encode()
        http.put(f"{base}/manifests/1", content=index, headers={"Content-Type": OCI_INDEX}).raise_for_status()
    return children


def _windows_project(root: Path, emu: AcrEmulator, namespace: str, upstream: str, versions: dict[str, str]) -> None:
    variants = "".join(
        f"      {name}: {{platform: windows/amd64, os_version: {version}}}\n" for name, version in versions.items()
    )
    write_project(
        root,
        f"registry: {emu.login_server}/{namespace}\nnetwork: none\n"
        + acr_block(emu)
        + "pipelines:\n  shop:\n    variants:\n"
        + variants
        + "    images:\n      app: {context: images/app, builder: acr}\n",
        {"app": f"FROM {upstream}\nCOPY own.txt /own.txt\n"},
    )
    (root / "images" / "app" / "own.txt").write_text("own\n")


def test_windows_index_base_gives_each_variant_its_child_and_a_missing_windows_build_is_refused(
    tmp_path: Path,
    services: Services,
    emulator: AcrEmulator,  # noqa: F811 - the fixture imported above
    namespace: str,
    plain_peek: RegistryPeek,
) -> None:
    upstream_repo = f"{namespace}-upstream/winbase"
    upstream = f"{services.plain_registry}/{upstream_repo}:1"
    children = push_windows_index(tmp_path, services.plain_registry, upstream_repo, emulator)
    env = env_for(emulator)

    # A variant for a Windows build the base has no image for: refused before anything builds.
    refused_root = tmp_path / "refused"
    _windows_project(refused_root, emulator, namespace, upstream, {"ltsc2019": "10.0.17763", "ltsc2025": "10.0.26100"})
    init_git(refused_root)
    runs_before = len(emulator.runs)
    refused = run_cli(["run"], refused_root, env=env)
    assert refused.code != 0, refused.output
    assert upstream in refused.output and "10.0.26100" in refused.output, refused.output
    assert "10.0.17763.6293" in refused.output and "10.0.20348.2700" in refused.output, refused.output
    assert len(emulator.runs) == runs_before  # nothing was sent to ACR
    assert plain_peek.all_tags(f"{namespace}/app") == set()  # nothing pushed

    root = tmp_path / "project"
    _windows_project(root, emulator, namespace, upstream, {"ltsc2019": "10.0.17763", "ltsc2022": "10.0.20348"})
    init_git(root)
    result = run_cli(["run", "--json"], root, env=env)
    assert result.code == 0, result.output
    app = report(result.stdout)["app"]
    built = plain_peek.index_children(f"{namespace}/app", str(app["digest"]))
    assert set(built) == {"windows/amd64 10.0.17763", "windows/amd64 10.0.20348"}
    for flavour, version in (("ltsc2019", "10.0.17763"), ("ltsc2022", "10.0.20348")):
        child = built[f"windows/amd64 {version}"]
        files = plain_peek.files(f"{namespace}/app", child)
        # Built on the base's child for its own Windows build: that child's file and layers.
        assert files["flavour.txt"] == f"{flavour} base\n".encode(), flavour
        assert files["own.txt"] == b"own\n"
        windows, _linux = children[flavour]
        base_layers = plain_peek.layers(upstream_repo, windows)
        assert plain_peek.layers(f"{namespace}/app", child)[: len(base_layers)] == base_layers, flavour
    bases = {(v["variant"], b["digest"]) for v in app["variants"] for b in v["bases"]}
    assert bases == {("ltsc2019", children["ltsc2019"][0]), ("ltsc2022", children["ltsc2022"][0])}


# --- ACR's own base-image trigger on the tasks `acr sync-tasks` writes ------------------------------


def test_sync_tasks_sets_acr_base_image_trigger_on_every_task_and_restores_it(
    tmp_path: Path,
    services: Services,
    emulator: AcrEmulator,  # noqa: F811 - the fixture imported above
    namespace: str,
) -> None:
    write_project(
        tmp_path,
        f"registry: {emulator.login_server}/{namespace}\nnetwork: none\n"
        + acr_block(emulator)
        + """\
pipelines:
  triggered:
    images:
      base: {context: images/base, builder: acr}
      app: {context: images/app, builder: acr, build_args: {BASE: "{{ images.base }}"}}
      tool: {context: images/tool, builder: acr, platform: linux/arm64}
""",
        {
            "base": f"FROM {services.plain_registry}/{namespace}-upstream/base:1\n",
            "app": "ARG BASE\nFROM ${BASE}\n",
            "tool": "FROM scratch\n",
        },
    )
    init_git(tmp_path)
    git(tmp_path, "remote", "add", "origin", "git@github.com:example/shop.git")
    env = env_for(emulator)
    names = {"triggered-base", "triggered-app", "triggered-tool"}
    wanted = {"name": "baseimage", "baseImageTriggerType": "Runtime", "status": "Enabled"}

    dry = run_cli(["acr", "sync-tasks", "--dry-run", "--json"], tmp_path, env=env)
    assert dry.code == 0, dry.output
    tasks = {t["name"]: t for t in json.loads(dry.stdout)["tasks"]}
    assert set(tasks) == names
    assert {name: t["triggers"]["base_image_update"] for name, t in tasks.items()} == dict.fromkeys(names, "Runtime")

    created = run_cli(["acr", "sync-tasks"], tmp_path, env=env)
    assert created.code == 0, created.output
    for name in names:
        assert emulator.tasks[name]["properties"]["trigger"]["baseImageTrigger"] == wanted, name

    # Someone turns ACR's trigger off on one task and removes it from another: the next sync puts it back.
    emulator.tasks["triggered-app"]["properties"]["trigger"]["baseImageTrigger"]["status"] = "Disabled"
    del emulator.tasks["triggered-tool"]["properties"]["trigger"]["baseImageTrigger"]
    again = run_cli(["acr", "sync-tasks", "--json"], tmp_path, env=env)
    assert again.code == 0, again.output
    actions = {t["name"]: t["action"] for t in json.loads(again.stdout)["tasks"]}
    assert actions == {"triggered-base": "unchanged", "triggered-app": "update", "triggered-tool": "update"}
    for name in names:
        assert emulator.tasks[name]["properties"]["trigger"]["baseImageTrigger"] == wanted, name
    assert emulator.unexpected == []
