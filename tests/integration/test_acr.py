"""The ACR Tasks backend end to end, with the real Azure SDK clients against tests/acr/emulator.py
(ARM on https, Azurite for blobs, builds on the local engine pushed to the local registry)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.acr.auth import ACR_USERNAME, AcrExchangeCredentials
from pipeline.acr.client import StaticTokenCredential
from pipeline.acr.sync import GIT_TOKEN_VARIABLE, sync_tasks
from pipeline.builders import BuildOutcome, BuildRequest
from pipeline.builders.acr import AcrBuilder
from pipeline.common.reporting import SILENT
from pipeline.config import load_config
from pipeline.config.schema import AcrSpec
from pipeline.errors import AuthError
from pipeline.plan import RunContext, make_plan
from pipeline.registry.reference import ImageRef, parse_repository
from tests.acr.azurite import Azurite
from tests.acr.emulator import AcrEmulator
from tests.helpers import BASE_DOCKERFILE, git, init_git, run_cli, write_project
from tests.integration.conftest import RegistryPeek, Services, _read_env, _unavailable

PASSWORD = "correct horse battery staple"
ORIGIN = "git@github.com:example/shop.git"
APP_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN echo remote-before-sleep && sleep 3 && echo remote-after-sleep
RUN echo app >> /layers
"""


@pytest.fixture(scope="module")
def emulator(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcrEmulator]:
    executable = _read_env().get("PIPELINE_AZURITE_BLOB", "")
    if not executable or not Path(executable).exists():
        _unavailable(f"azurite is not installed (PIPELINE_AZURITE_BLOB='{executable}')")
    workdir = tmp_path_factory.mktemp("acr-emulator")
    azurite = Azurite(executable, workdir / "azurite").wait()
    emu = AcrEmulator(workdir, azurite.endpoint, services.plain_registry).start()
    try:
        yield emu
    finally:
        emu.stop()
        azurite.stop()


def acr_block(emu: AcrEmulator, timeout: int = 600) -> str:
    settings = {**emu.acr_settings(), "timeout": timeout}
    return "acr:\n" + "".join(f"  {key}: {json.dumps(value)}\n" for key, value in settings.items())


def mixed_project(
    root: Path, services: Services, emu: AcrEmulator, namespace: str, app: str, sign: bool, timeout: int = 600
) -> None:
    write_project(
        root,
        f"registry: {services.plain_registry}/{namespace}\nnetwork: none\n"
        + acr_block(emu, timeout)
        + ("sign: {key: cosign.key, attest: [provenance]}\n" if sign else "")
        + f"""\
pipelines:
  mixed:
    images:
      base: {{context: images/base}}
      app:
        context: images/app
        builder: acr
        repository: {emu.login_server}/{namespace}/app
        build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}
""",
        {"base": BASE_DOCKERFILE, "app": app},
        busybox=("base",),
    )
    (root / "images" / "app" / ".dockerignore").write_text("secret.txt\n")
    (root / "images" / "app" / "secret.txt").write_text("must not be uploaded\n")


def env_for(emu: AcrEmulator) -> dict[str, str]:
    return {**emu.client_environment(), "COSIGN_PASSWORD": PASSWORD}


def remote_lines(stderr: str) -> list[tuple[float, str]]:
    """(elapsed, message) of the progress lines that relay the remote log (`--progress plain`)."""
    found = []
    for line in stderr.splitlines():
        match = re.match(r"\[\s*([\d.]+)s\] mixed/app\s+log\s+(.*)", line)
        if match:
            found.append((float(match.group(1)), match.group(2)))
    return found


def test_mixed_pipeline_builds_locally_and_on_acr_tagged_and_signed(
    tmp_path: Path, services: Services, emulator: AcrEmulator, namespace: str, plain_peek: RegistryPeek
) -> None:
    mixed_project(tmp_path, services, emulator, namespace, APP_DOCKERFILE, sign=True)
    assert run_cli(["keys", "generate"], tmp_path, env=env_for(emulator)).code == 0
    sha = init_git(tmp_path)[:12]
    before = len(emulator.runs)

    result = run_cli(["run", "--version", "1.4.0", "--json", "--progress", "plain"], tmp_path, env=env_for(emulator))

    assert result.code == 0, result.output
    images = {i["image"]: i for i in json.loads(result.stdout)["images"]}
    base, app = images["mixed/base"], images["mixed/app"]
    assert base["status"] == app["status"] == "succeeded"
    # Both images carry the build tag and the release tags, by digest, in the registry.
    for name, image in (("base", base), ("app", app)):
        digest = image["digest"]
        assert plain_peek.digest(f"{namespace}/{name}", f"sha-{sha}") == digest
        assert plain_peek.digest(f"{namespace}/{name}", "1.4.0") == digest
        assert plain_peek.digest(f"{namespace}/{name}", "latest") == digest
        # Signed (cosign's legacy scheme) right after the push.
        assert f"{digest.replace(':', '-')}.sig" in plain_peek.tags(f"{namespace}/{name}")
    assert app["reference"] == f"{emulator.login_server}/{namespace}/app@{app['digest']}"

    # The remote build ran FROM this run's base by digest, and its run reported the pushed digest.
    run = list(emulator.runs.values())[before]
    assert run.status == "Succeeded"
    args = {a["name"]: a["value"] for a in run.request["arguments"]}
    assert args["BASE_IMAGE"] == f"{services.plain_registry}/{namespace}/base@{base['digest']}"
    assert run.output_images[0]["digest"] == app["digest"]
    assert run.request["imageNames"] == [f"{namespace}/app:sha-{sha}"]

    # The OCI labels reached the remote build (written into the uploaded Dockerfile).
    labels = _image_labels(f"{services.plain_registry}/{namespace}/app:sha-{sha}")
    assert labels["org.opencontainers.image.revision"].startswith(sha)
    assert labels["org.opencontainers.image.version"] == "1.4.0"

    # The log streamed during the run: lines before and after the remote `sleep 3` arrived apart.
    lines = remote_lines(result.stderr)
    before_sleep = next(t for t, m in lines if re.search(r"\d\d:\d\d:\d\d remote-before-sleep$", m))
    after_sleep = next(t for t, m in lines if re.search(r"\d\d:\d\d:\d\d remote-after-sleep$", m))
    assert after_sleep - before_sleep >= 2, lines
    assert any("Successfully pushed image" in m for _, m in lines)

    # Its provenance names the ACR builder and the Tasks run that built it; the base's names BuildKit.
    run_id = list(emulator.runs)[before]
    for name, image, builder in (("app", app, "acr"), ("base", base, "buildx")):
        verified = run_cli(
            ["verify", image["reference"], "--key", "cosign.pub", "--type", "provenance", "--json"],
            tmp_path,
            env=env_for(emulator),
        )
        assert verified.code == 0, verified.output
        predicate = json.loads(verified.stdout)["attestations"][0]["predicate"]
        assert predicate["runDetails"]["builder"]["id"].endswith(f"/builders/{builder}"), name
        internal = predicate["buildDefinition"]["internalParameters"]
        if builder == "acr":
            assert internal["acr"]["runId"] == run_id
            assert internal["acr"]["registry"] == emulator.acr_settings()["registry"]
        else:
            assert "acr" not in internal

    # Registry operations on the ACR login server used the exchanged ACR token; nothing unemulated.
    assert emulator.login_server in emulator.exchanges
    assert emulator.unexpected == []


def test_source_upload_honours_dockerignore(
    tmp_path: Path, services: Services, emulator: AcrEmulator, namespace: str
) -> None:
    dockerfile = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /ctx/\nRUN ls -a /ctx\n"
    mixed_project(tmp_path, services, emulator, namespace, dockerfile, sign=False)
    (tmp_path / "images" / "app" / "kept.txt").write_text("kept\n")
    init_git(tmp_path)

    result = run_cli(["run", "--progress", "plain"], tmp_path, env=env_for(emulator))

    assert result.code == 0, result.output
    listed = [m for _, m in remote_lines(result.stderr)]
    assert any(m.endswith("kept.txt") for m in listed), listed
    assert not any("secret.txt" in m for m in listed), listed
    assert not any(".pipeline.Dockerfile" in m for m in listed), listed


def test_failing_remote_build_fails_the_image_with_its_log_tail(
    tmp_path: Path, services: Services, emulator: AcrEmulator, namespace: str, plain_peek: RegistryPeek
) -> None:
    failing = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about-to-fail-remotely && exit 3\n"
    mixed_project(tmp_path, services, emulator, namespace, failing, sign=False)
    init_git(tmp_path)
    before = len(emulator.runs)

    result = run_cli(["run", "--version", "2.0.0", "--report", "report.json"], tmp_path, env=env_for(emulator))

    assert result.code == 1, result.output
    # One error line naming the image and the failing step, then the step's last lines, indented.
    failed = next(line for line in result.stderr.splitlines() if " failed " in line)
    assert "mixed/app: remote build failed at Step 3/3 : RUN echo about-to-fail-remotely && exit 3 (run cb" in failed
    assert failed.endswith("Failed: failed during run, err: exit status 1)"), failed
    tail = [line for line in result.stderr.splitlines() if line.startswith("    | ")]
    assert any(line.endswith(" about-to-fail-remotely") for line in tail), result.stderr
    assert not any("Step 2/3" in line for line in tail)  # only the failing step's lines
    app = next(i for i in json.loads((tmp_path / "report.json").read_text())["images"] if i["image"] == "mixed/app")
    assert app["log_tail"] == [line.removeprefix("    | ") for line in tail]
    assert "\n" not in app["error"] and app["error"] in failed
    assert "Traceback" not in result.output
    assert list(emulator.runs.values())[before].status == "Failed"
    assert "2.0.0" not in plain_peek.tags(f"{namespace}/base")  # nothing released


def test_ctrl_c_cancels_the_remote_run(
    tmp_path: Path, services: Services, emulator: AcrEmulator, namespace: str
) -> None:
    slow = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo remote-started-sleeping && sleep 120\n"
    mixed_project(tmp_path, services, emulator, namespace, slow, sign=False)
    init_git(tmp_path)
    before = len(emulator.runs)
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "--progress", "plain"],
        cwd=tmp_path,
        env={**os.environ, **env_for(emulator), "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test worker (pytest-xdist) may ignore SIGINT, and a child inherits that: Ctrl-C as a user's
        # terminal delivers it needs the default disposition.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            if "remote" in line and "remote-started-sleeping" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(120), "".join(seen)
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(120)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack: where it hangs
            process.wait(30)
            reader.join(10)
            raise AssertionError("no exit 120 s after SIGINT:\n" + "".join(seen)) from None
        assert code == 130, "".join(seen)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(10)
    run = list(emulator.runs.values())[before]
    assert run.run_id in emulator.cancels
    deadline = time.monotonic() + 60
    while run.status != "Canceled" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.status == "Canceled"
    assert "interrupted" in "".join(seen)


def test_a_run_past_the_acr_timeout_is_cancelled(
    tmp_path: Path, services: Services, emulator: AcrEmulator, namespace: str
) -> None:
    slow = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo slow-remote-step && sleep 120\n"
    mixed_project(tmp_path, services, emulator, namespace, slow, sign=False, timeout=4)
    init_git(tmp_path)
    before = len(emulator.runs)

    result = run_cli(["run"], tmp_path, env=env_for(emulator), timeout=120)

    assert result.code == 1, result.output
    assert "took longer than 4s (acr.timeout) and was cancelled" in result.stderr
    run = list(emulator.runs.values())[before]
    assert run.run_id in emulator.cancels


def test_sync_tasks_dry_run_prints_definitions_then_creates_updates_and_prunes(
    tmp_path: Path, services: Services, emulator: AcrEmulator, namespace: str
) -> None:
    mixed_project(tmp_path, services, emulator, namespace, APP_DOCKERFILE, sign=False)
    config = tmp_path / "pipelines.yaml"
    config.write_text(
        config.read_text()
        + f"""\
      worker:
        context: images/app
        repository: {emulator.login_server}/{namespace}/worker
        platform: linux/arm64
        build_args: {{BASE_IMAGE: "{{{{ images.app }}}}"}}
"""
    )
    init_git(tmp_path)
    git(tmp_path, "remote", "add", "origin", "git@github.com:example/shop.git")
    emulator.tasks["someone-elses"] = {"name": "someone-elses", "tags": {"team": "other"}, "properties": {}}
    env = env_for(emulator)

    dry = run_cli(["acr", "sync-tasks", "--dry-run", "--json"], tmp_path, env=env)

    assert dry.code == 0, dry.output
    data = json.loads(dry.stdout)
    assert data["dry_run"] is True
    tasks = {t["name"]: t for t in data["tasks"]}
    assert set(tasks) == {"mixed-app", "mixed-worker"}
    assert {t["action"] for t in tasks.values()} == {"create"}
    app = tasks["mixed-app"]
    assert app["context"] == "https://github.com/example/shop.git#main:images/app"
    assert app["dockerfile"] == "Dockerfile"
    assert app["images"] == [f"{namespace}/app:{{{{.Run.ID}}}}", f"{namespace}/app:sha-{{{{slice .Run.Commit 0 12}}}}"]
    assert app["triggers"]["commit"] == {
        "type": "Github",
        "repository": "https://github.com/example/shop.git",
        "branch": "main",
    }
    assert app["triggers"]["base_image_update"] == "Runtime"
    assert tasks["mixed-worker"]["platform"] == "linux/arm64"
    assert tasks["mixed-worker"]["build_args"]["BASE_IMAGE"] == (
        f"{emulator.login_server}/{namespace}/app:sha-{{{{slice .Run.Commit 0 12}}}}"
    )
    assert data["skipped"][0]["image"] == "mixed/base"
    assert not any(name.startswith("mixed-") for name in emulator.tasks)  # a dry run changes nothing

    human = run_cli(["acr", "sync-tasks", "--dry-run"], tmp_path, env=env)
    assert "would create: emuregistry/mixed-app (mixed/app)" in human.stdout
    assert 'context: "https://github.com/example/shop.git#main:images/app"' in human.stdout

    created = run_cli(["acr", "sync-tasks"], tmp_path, env=env)
    assert created.code == 0, created.output
    assert {"mixed-app", "mixed-worker"} <= set(emulator.tasks)
    stored = emulator.tasks["mixed-app"]
    assert stored["location"] == "westeurope"
    assert stored["tags"]["managed-by"] == "pipeline"
    properties = stored["properties"]
    assert properties["step"]["contextPath"] == "https://github.com/example/shop.git#main:images/app"
    assert properties["trigger"]["sourceTriggers"][0]["sourceTriggerEvents"] == ["commit"]
    assert properties["trigger"]["baseImageTrigger"]["status"] == "Enabled"

    again = run_cli(["acr", "sync-tasks", "--json"], tmp_path, env=env)
    assert {t["action"] for t in json.loads(again.stdout)["tasks"]} == {"unchanged"}

    # The worker leaves the YAML: --prune removes its task, and only tasks this file owns.
    config.write_text(config.read_text().split("      worker:")[0])
    git(tmp_path, "commit", "-qam", "drop worker")
    pruned = run_cli(["acr", "sync-tasks", "--prune"], tmp_path, env=env)
    assert pruned.code == 0, pruned.output
    assert "delete: emuregistry/mixed-worker" in pruned.stdout
    assert "mixed-worker" not in emulator.tasks
    assert {"mixed-app", "someone-elses"} <= set(emulator.tasks)
    assert emulator.unexpected == []


def test_acr_token_exchange_against_the_login_server(emulator: AcrEmulator) -> None:
    credentials = AcrExchangeCredentials(lambda registry: None, lambda: emulator.token, [emulator.login_server])
    found = credentials(emulator.login_server)
    assert found is not None and found.username == ACR_USERNAME and found.password
    assert credentials("127.0.0.1:5999") is None  # not an ACR login server: no exchange

    refused = AcrExchangeCredentials(lambda registry: None, lambda: "not-the-token", [emulator.login_server])
    with pytest.raises(AuthError, match="refused the Azure AD token"):
        refused(emulator.login_server)
    # A registry pipelines.yaml does not build on, found by its ACR domain: no credentials, no error.
    implicit = AcrExchangeCredentials(lambda registry: None, _no_azure_login, [])
    assert implicit("someone-else.azurecr.io") is None
    with pytest.raises(AuthError, match="no Azure login"):
        AcrExchangeCredentials(lambda registry: None, _no_azure_login, ["mine.azurecr.io"])("mine.azurecr.io")


def _no_azure_login() -> str:
    raise AuthError("no Azure login here")


def _image_labels(reference: str) -> dict[str, str]:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", reference],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    labels: dict[str, str] = json.loads(out)
    return labels


def test_sync_tasks_reads_azure_and_git_tokens_from_the_environ_it_is_given(
    tmp_path: Path, services: Services, emulator: AcrEmulator, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI reads the environment once and passes it in; the process's own must not matter (REQUESTS_CA_BUNDLE
    # is the Azure SDK's transport setting, which trusts the emulator's certificate).
    for name in ("PIPELINE_AZURE_ACCESS_TOKEN", GIT_TOKEN_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.client_environment()["REQUESTS_CA_BUNDLE"])
    config_file = write_project(
        tmp_path,
        f"registry: {services.plain_registry}/{namespace}\nnetwork: none\n"
        + acr_block(emulator)
        + f"""\
pipelines:
  environ:
    images:
      app: {{context: images/app, repository: {emulator.login_server}/{namespace}/app}}
""",
        {"app": "FROM scratch\n"},
    )
    init_git(tmp_path)
    config = load_config(config_file)
    plan = make_plan(config.spec, config.base_dir, [], RunContext(git_branch="main", source_url=ORIGIN))
    environ = {**emulator.client_environment(), GIT_TOKEN_VARIABLE: "pat-from-environ"}

    result = sync_tasks(plan, config.file, config.base_dir, None, prune=False, dry_run=False, environ=environ)

    assert [(c.action, c.name) for c in result.changes] == [("create", "environ-app")] and result.skipped == {}
    (trigger,) = emulator.tasks["environ-app"]["properties"]["trigger"]["sourceTriggers"]
    assert trigger["sourceRepository"]["sourceControlAuthProperties"]["token"] == "pat-from-environ"
    assert emulator.unexpected == []


LTSC2019 = "10.0.17763"
WINDOWS_BASE_DOCKERFILE = """\
FROM scratch
ARG PIPELINE_OS_VERSION
COPY base.txt /
LABEL base.os-version=${PIPELINE_OS_VERSION}
"""
WINDOWS_APP_DOCKERFILE = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app.txt /\n"


def build_on_acr(
    emu: AcrEmulator, context: Path, repository: str, base: str | None = None, os_version: str | None = LTSC2019
) -> BuildOutcome:
    """One build through the ACR backend (the builder a run uses for a Windows variant)."""
    credentials = AcrExchangeCredentials(lambda registry: None, lambda: emu.token, [emu.login_server])
    spec = AcrSpec.model_validate(emu.acr_settings())
    request = BuildRequest(
        image=f"win/{context.name}",
        context=context,
        dockerfile=context / "Dockerfile",
        tag=ImageRef(parse_repository(f"{emu.login_server}/{repository}"), tag="sha-0123456789ab"),
        build_args={"BASE_IMAGE": base} if base else {},
        platform="windows/amd64",
        os_version=os_version,
        credentials=credentials(emu.login_server),
    )
    return AcrBuilder(StaticTokenCredential(emu.token), poll_seconds=0.2).for_settings(spec).build(request, SILENT)


def windows_contexts(root: Path) -> tuple[Path, Path]:
    write_project(root, "", {"base": WINDOWS_BASE_DOCKERFILE, "app": WINDOWS_APP_DOCKERFILE})
    (root / "images" / "base" / "base.txt").write_text("base\n")
    (root / "images" / "app" / "app.txt").write_text("app\n")
    return root / "images" / "base", root / "images" / "app"


def test_windows_variant_on_acr_carries_its_platform_and_a_dependant_builds_from_it_by_digest(
    tmp_path: Path, emulator: AcrEmulator, namespace: str, plain_peek: RegistryPeek, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.client_environment()["REQUESTS_CA_BUNDLE"])
    base_context, app_context = windows_contexts(tmp_path)
    before = len(emulator.runs)

    base = build_on_acr(emulator, base_context, f"{namespace}/winbase")

    run = list(emulator.runs.values())[before]
    assert run.request["platform"] == {"os": "Windows", "architecture": "amd64"}
    assert {"name": "PIPELINE_OS_VERSION", "value": LTSC2019, "isSecret": False} in run.request["arguments"]
    # What the registry holds under the build tag: the digest the build reported, a Windows config of
    # the version asked for, built by a Dockerfile that read the version from PIPELINE_OS_VERSION.
    assert base.pushed_digest is not None
    assert plain_peek.digest(f"{namespace}/winbase", "sha-0123456789ab") == base.pushed_digest
    config = plain_peek.image_config(f"{namespace}/winbase", base.pushed_digest)
    assert (config["os"], config["architecture"]) == ("windows", "amd64")
    assert config["os.version"] == LTSC2019 or config["os.version"].startswith(LTSC2019 + ".")
    assert config["config"]["Labels"]["base.os-version"] == LTSC2019

    # A dependant Windows variant FROM the base's Windows variant by digest (as `{{ images.base }}` is).
    base_reference = f"{emulator.login_server}/{namespace}/winbase@{base.pushed_digest}"
    app = build_on_acr(emulator, app_context, f"{namespace}/winapp", base=base_reference)

    assert app.pushed_digest is not None
    app_config = plain_peek.image_config(f"{namespace}/winapp", app.pushed_digest)
    assert (app_config["os"], app_config["os.version"]) == ("windows", LTSC2019)
    base_layers = plain_peek.layers(f"{namespace}/winbase", base.pushed_digest)
    app_layers = plain_peek.layers(f"{namespace}/winapp", app.pushed_digest)
    assert app_layers[: len(base_layers)] == base_layers and len(app_layers) == len(base_layers) + 1
    assert emulator.unexpected == []


def test_a_run_that_pushes_another_platform_than_asked_is_refused(
    tmp_path: Path, services: Services, emulator: AcrEmulator, namespace: str, plain_peek: RegistryPeek
) -> None:
    mixed_project(tmp_path, services, emulator, namespace, "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n", sign=False)
    config = tmp_path / "pipelines.yaml"
    config.write_text(
        config.read_text().replace("        builder: acr\n", "        builder: acr\n        platform: windows/amd64\n")
    )
    init_git(tmp_path)
    emulator.write_windows_platform = False  # the run pushes its Linux stand-in's config: the wrong os
    try:
        result = run_cli(["run", "--version", "3.0.0", "--report", "report.json"], tmp_path, env=env_for(emulator))
    finally:
        emulator.write_windows_platform = True

    assert result.code == 1, result.output
    assert "but its config says linux/amd64, not windows/amd64; not published as that variant" in result.stderr
    report = {i["image"]: i for i in json.loads((tmp_path / "report.json").read_text())["images"]}
    assert report["mixed/app"]["status"] == "failed" and not report["mixed/app"].get("digest")
    assert "mixed/app" in report["mixed/app"]["error"] and "windows/amd64" in report["mixed/app"]["error"]
    # Nothing released: no tag moved on either image (all or nothing).
    assert "3.0.0" not in plain_peek.tags(f"{namespace}/app") and "latest" not in plain_peek.tags(f"{namespace}/app")
    assert "3.0.0" not in plain_peek.tags(f"{namespace}/base")
