"""`network:` reaches the build: RUN steps see the network the nearest setting names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import image_entry, init_git, run_cli, shop_config, write_project
from tests.integration.conftest import RegistryPeek, Services

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

# The namespace makes the step unique to this test run, so no earlier build's layer answers for it.
DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo {unique} > /unique; /bin/busybox ls /sys/class/net > /networks"]
"""


def test_network_none_and_host_reach_the_run_steps(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    write_project(
        tmp_path,
        shop_config(
            f"{services.plain_registry}/{namespace}",
            {"isolated": "", "hosted": image_entry("hosted", "network: host")},
            pipeline="net",
        ),
        {name: DOCKERFILE.format(unique=f"{namespace}-{name}") for name in ("isolated", "hosted")},
        busybox=("isolated", "hosted"),
    )
    sha = init_git(tmp_path)
    result = run_cli(["run"], tmp_path)
    assert result.code == 0, result.output

    tag = f"sha-{sha[:12]}"
    isolated = plain_peek.files(f"{namespace}/isolated", tag)["networks"].decode().split()
    hosted = plain_peek.files(f"{namespace}/hosted", tag)["networks"].decode().split()
    assert isolated == ["lo"]
    # The engine's own network namespace: more than loopback (here, this machine's interfaces).
    assert "lo" in hosted and len(hosted) > 1, hosted
