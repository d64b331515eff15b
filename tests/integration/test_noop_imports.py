"""A no-op `pipeline run` (every image reused by its input digest) is mostly start-up, so what it imports
is most of its time (issue 29): run in a fresh interpreter, it must not load libraries only a build, a
signature or another backend needs."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import init_git, run_cli, write_project
from tests.integration.conftest import Services
from tests.unit.cli.test_startup import loaded_modules

# Nothing here builds, signs (no key configured) or talks to Azure; httpx's own command-line client
# (rich's syntax highlighting through pygments) is no part of pipeline. The engine is asked whether it
# answers without docker-py (builders.endpoint): docker-py and requests load for a build or push only.
NOT_LOADED = (
    "docker",
    "requests",
    "urllib3",
    "git",  # GitPython: the checkout is read by plain `git` calls (vcs.info), claims load it when they claim
    "pipeline.report",  # the report's models: made for --report, --json, --junit or CI outputs, not for the table
    "pygments",
    "sigstore",
    "cryptography",
    "nacl",
    "azure",
    "pipeline.acr.client",
    "pipeline.builders.acr",
    "pipeline.signing.keys",
    "pipeline.signing.keyless",
    "pipeline.sbom",
    "pipeline.attest",
)


def test_a_no_op_run_loads_no_engine_client_signing_azure_or_http_cli_library(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    write_project(
        tmp_path,
        f"""\
        registry: {services.plain_registry}/{namespace}
        pipelines:
          shop:
            images:
              base: {{context: images/base}}
              app: {{context: images/app, build_args: {{BASE: "{{{{ images.base }}}}"}}}}
        """,
        {"base": "FROM scratch\nCOPY Dockerfile /base\n", "app": "ARG BASE\nFROM ${BASE}\nCOPY Dockerfile /app\n"},
    )
    init_git(tmp_path)
    assert run_cli(["run"], tmp_path).code == 0
    again = run_cli(["run"], tmp_path)
    assert again.code == 0
    assert sorted(re.findall(r"(shop/\w+) +reuse ", again.stderr)) == ["shop/app", "shop/base"]
    assert loaded_modules(["run"], tmp_path, NOT_LOADED) == []
