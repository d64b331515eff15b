"""README "Platforms and Windows versions", linux/arm64 with a RUN step: on this amd64 machine the arm64
variant's RUN executes under Debian's qemu-aarch64, registered with binfmt_misc by scripts/services.
Each child of the published index holds what its own architecture's RUN wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import BUSYBOX, app_project, init_git, run_cli
from tests.integration.conftest import RegistryPeek, Services, _read_env, _unavailable

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

BINFMT_ENTRY = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")

DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY busybox-${TARGETARCH} /bin/busybox
COPY run-id /run-id
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox uname -m > /arch"]
"""


@pytest.fixture(scope="session")
def busybox_arm64(services: Services) -> Path:
    """Debian's static busybox for arm64, when an arm64 binary can run here (qemu-aarch64 in binfmt_misc)."""
    env = _read_env()
    state = env.get("PIPELINE_QEMU_AARCH64")
    if state is None:
        _unavailable("the services env has no PIPELINE_QEMU_AARCH64 (scripts/services predates arm64 RUN steps)")
    if state != "registered":
        _unavailable(f"scripts/services could not register qemu-aarch64 with binfmt_misc ({state}); run it as root")
    # The registration is kernel state: it may be gone since scripts/services ran (reboot, `echo -1`).
    entry = BINFMT_ENTRY.read_text().splitlines() if BINFMT_ENTRY.exists() else []
    flags = next((line.removeprefix("flags: ") for line in entry if line.startswith("flags: ")), "")
    if "enabled" not in entry or "F" not in flags:
        _unavailable(f"qemu-aarch64 is not registered (enabled, F flag) in {BINFMT_ENTRY}: {entry or 'no entry'}")
    found = Path(env.get("PIPELINE_BUSYBOX_ARM64", ""))
    if not found.is_file():
        _unavailable(f"the arm64 busybox '{found}' (PIPELINE_BUSYBOX_ARM64) is missing")
    return found


def test_arm64_run_step_runs_under_qemu(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, busybox_arm64: Path
) -> None:
    app_project(
        tmp_path, f"{services.plain_registry}/{namespace}", DOCKERFILE, platforms=("linux/amd64", "linux/arm64")
    )
    context = tmp_path / "images" / "app"
    shutil.copy(BUSYBOX, context / "busybox-amd64")
    shutil.copy(busybox_arm64, context / "busybox-arm64")
    # A layer no earlier run built, so BuildKit's cache cannot stand in for running the RUN step.
    (context / "run-id").write_text(f"{namespace}\n")
    init_git(tmp_path)

    result = run_cli(["run", "--json", "--version", "1.0.0"], tmp_path)
    assert result.code == 0, result.output
    (app,) = json.loads(result.stdout)["images"]
    repo = f"{namespace}/app"
    assert plain_peek.digest(repo, "1.0.0") == app["digest"]
    children = plain_peek.index_children(repo, str(app["digest"]))
    assert set(children) == {"linux/amd64", "linux/arm64"}, children
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        config = plain_peek.image_config(repo, children[platform])
        assert f"{config['os']}/{config['architecture']}" == platform
        # What the RUN step itself saw: the arm64 one ran as an aarch64 process, not on the host's CPU.
        assert plain_peek.files(repo, children[platform])["arch"] == f"{machine}\n".encode(), platform
