"""README "Platforms and Windows versions", end to end: base -> app, worker, each built for two Linux
platforms and two Windows versions (ltsc2019, ltsc2022; Windows emulated by the ACR emulator), published
as image indexes under X.Y.Z, X.Y, X and latest, each dependant's variant built on the matching base
variant, signed (index and children), verified, promoted to a second repository and verified there."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acr.emulator import AcrEmulator
from tests.helpers import git, init_git, run_cli, write_project
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_acr import PASSWORD, acr_block, emulator  # noqa: F401 - the emulator fixture
from tests.integration.test_signing import cosign_verify

BASE = """\
FROM scratch
ARG FLAVOUR
COPY ${FLAVOUR}.txt /flavour.txt
"""
DEPENDANT = """\
ARG BASE
FROM ${BASE}
COPY own.txt /own.txt
"""
FLAVOURS = {
    "linux-amd64": ("linux/amd64", None),
    "linux-arm64": ("linux/arm64", None),
    "ltsc2019": ("windows/amd64", "10.0.17763"),
    "ltsc2022": ("windows/amd64", "10.0.20348"),
}


def _project(root: Path, emu: AcrEmulator, namespace: str) -> None:
    variants = "".join(
        f"      {name}: {{platform: {platform}"
        + (f", os_version: {version}" if version else "")
        + f", build_args: {{FLAVOUR: {name}}}}}\n"
        for name, (platform, version) in FLAVOURS.items()
    )
    write_project(
        root,
        f"registry: {emu.login_server}/{namespace}\nnetwork: none\n"
        + acr_block(emu)
        + "sign: {key: cosign.key}\n"
        + "pipelines:\n  shop:\n    variants:\n"
        + variants
        + """\
    images:
      base: {context: images/base}
      app: {context: images/app, builder: acr, build_args: {BASE: "{{ images.base }}"}}
      worker: {context: images/worker, builder: acr, build_args: {BASE: "{{ images.base }}"}}
""",
        {"base": BASE, "app": DEPENDANT, "worker": DEPENDANT},
    )
    for name in FLAVOURS:
        (root / "images" / "base" / f"{name}.txt").write_text(f"base {name}\n")
    for image in ("app", "worker"):
        (root / "images" / image / "own.txt").write_text(f"{image}\n")


def _children(peek: RegistryPeek, repo: str, digest: str) -> dict[str, str]:
    return peek.index_children(repo, digest)


def test_linux_and_windows_variants_publish_signed_indexes_and_promote(
    tmp_path: Path,
    services: Services,
    emulator: AcrEmulator,  # noqa: F811 - the fixture imported above
    namespace: str,
    plain_peek: RegistryPeek,
) -> None:
    _project(tmp_path, emulator, namespace)
    env = {**emulator.client_environment(), "COSIGN_PASSWORD": PASSWORD}
    assert run_cli(["keys", "generate"], tmp_path, env=env).code == 0
    init_git(tmp_path)
    result = run_cli(["run", "--version", "1.2.3", "--json", "--progress", "plain"], tmp_path, env=env)
    assert result.code == 0, result.output
    images = {i["name"]: i for i in json.loads(result.stdout)["images"]}
    # The base's Linux variants built on the local engine, its Windows variants on ACR Tasks; app and
    # worker wholly on ACR Tasks (whose emulator builds FROM the base's variant by digest).
    base_engines = {v["variant"]: v["engine"] for v in images["base"]["variants"]}
    assert base_engines["linux-amd64"] and base_engines["linux-arm64"], base_engines
    assert base_engines["ltsc2019"] is None and base_engines["ltsc2022"] is None, base_engines

    wanted = {"linux/amd64", "linux/arm64", "windows/amd64 10.0.17763", "windows/amd64 10.0.20348"}
    children: dict[str, dict[str, str]] = {}
    for name in ("base", "app", "worker"):
        repo = f"{namespace}/{name}"  # the emulator's registry is the plain one behind its login server
        index = str(images[name]["digest"])
        children[name] = _children(plain_peek, repo, index)
        assert set(children[name]) == wanted, children[name]
        for tag in ("1.2.3", "1.2", "1", "latest"):
            assert plain_peek.digest(repo, tag) == index, (name, tag)
        for platform, child in children[name].items():
            config = plain_peek.image_config(repo, child)
            shown = f"{config['os']}/{config['architecture']}"
            assert (f"{shown} {config['os.version']}" if "os.version" in config else shown) == platform

    # Each dependant's variant is built on the base's variant of the same platform and Windows version:
    # its layers start with exactly that variant's layers (and the variants' layers differ).
    base_layers = {p: plain_peek.layers(f"{namespace}/base", d) for p, d in children["base"].items()}
    assert len({tuple(layers) for layers in base_layers.values()}) == 4
    for name in ("app", "worker"):
        for platform, child in children[name].items():
            layers = plain_peek.layers(f"{namespace}/{name}", child)
            assert layers[: len(base_layers[platform])] == base_layers[platform], (name, platform)
            assert len(layers) == len(base_layers[platform]) + 1

    # Only the worker changed: a run of what changed pins the base to its pushed index, and each worker
    # variant (on ACR Tasks) builds on the base's child of its own platform and Windows version.
    (tmp_path / "images" / "worker" / "own.txt").write_text("worker v2\n")
    git(tmp_path, "commit", "-qam", "worker v2")
    partial = run_cli(["run", "--json", "--since", "HEAD~1"], tmp_path, env=env)
    assert partial.code == 0, partial.output
    rebuilt = {i["name"]: i for i in json.loads(partial.stdout)["images"]}
    assert set(rebuilt) == {"worker"}, partial.output
    for platform, child in _children(plain_peek, f"{namespace}/worker", str(rebuilt["worker"]["digest"])).items():
        layers = plain_peek.layers(f"{namespace}/worker", child)
        assert layers[: len(base_layers[platform])] == base_layers[platform], ("partial", platform)

    # Signed: the index and every child verify, with pipeline and with trixie's cosign.
    for name in ("base", "app", "worker"):
        ref = f"{emulator.login_server}/{namespace}/{name}:1.2.3"
        verified = run_cli(["verify", ref, "--key", "cosign.pub", "--json"], tmp_path, env=env)
        assert verified.code == 0, verified.output
    for platform, child in [("index", str(images["app"]["digest"])), *children["app"].items()]:
        cosign = cosign_verify(services, tmp_path / "cosign.pub", f"{services.plain_registry}/{namespace}/app@{child}")
        assert cosign.returncode == 0, (platform, cosign.stderr)

    # Promoted (the index with all four children, and their signatures) to a second repository.
    dest = f"{emulator.login_server}/{namespace}/prod-app"
    promoted = run_cli(
        ["promote", f"{emulator.login_server}/{namespace}/app:1.2.3", dest, "--version", "1.2.3"], tmp_path, env=env
    )
    assert promoted.code == 0, promoted.output
    assert plain_peek.digest(f"{namespace}/prod-app", "1.2.3") == images["app"]["digest"]
    assert _children(plain_peek, f"{namespace}/prod-app", str(images["app"]["digest"])) == children["app"]
    for child in children["app"].values():
        assert plain_peek.layers(f"{namespace}/prod-app", child) == plain_peek.layers(f"{namespace}/app", child)
    # The signatures of the index and of all four children came along: cosign accepts each at the destination
    # (`pipeline verify` of carried signatures at a destination: test_promote_supply_chain).
    for platform, child in [("index", str(images["app"]["digest"])), *children["app"].items()]:
        cosign = cosign_verify(
            services, tmp_path / "cosign.pub", f"{services.plain_registry}/{namespace}/prod-app@{child}"
        )
        assert cosign.returncode == 0, (platform, cosign.stderr)
