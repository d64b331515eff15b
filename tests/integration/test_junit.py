"""`--junit FILE` on a real run with a failing image: one test case per image matching the JSON report and
the registry, valid against Jenkins' junit-10.xsd, written although the run failed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from tests.helpers import (
    BASE_DOCKERFILE,
    FROM_BASE,
    assert_valid_report,
    image_entry,
    init_git,
    run_cli,
    shop_config,
    write_project,
)
from tests.integration.conftest import RegistryPeek, Services

XSD = Path(__file__).resolve().parents[1] / "data" / "schemas" / "junit-10.xsd"
# Coloured output (ESC, which XML 1.0 forbids) in the failing step's tail, then a failure.
FAILING_RUN = r"RUN printf 'compiling\n\033[31mERROR\033[0m: no compiler\n'; exit 3"


def failing_project(root: Path, registry: str, builder: str = "docker") -> None:
    write_project(
        root,
        shop_config(
            registry,
            {
                "base": "",
                "app": image_entry("app", FROM_BASE),
                "worker": image_entry("worker", 'build_args: {APP_IMAGE: "{{ images.app }}"}'),
            },
            top=f"builder: {builder}",
            more={"tools": ("lint",)},
        ),
        {
            "base": BASE_DOCKERFILE,
            "app": f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n{FAILING_RUN}\n",
            "worker": "ARG APP_IMAGE\nFROM ${APP_IMAGE}\n",
            "lint": "FROM scratch\nCOPY Dockerfile /lint\n",
        },
        busybox=("base",),
    )
    init_git(root)


def run_with_junit(root: Path, junit: str) -> tuple[ET.Element, dict[str, dict[str, Any]]]:
    result = run_cli(
        ["run", "--version", "1.0.0", "--keep-going", "--report", "report.json", "--junit", junit, "-q"], root
    )
    assert result.code == 1, result.stderr
    document = (root / junit).read_text(encoding="utf-8")
    xmlschema.XMLSchema(XSD).validate(document)
    report = assert_valid_report(root / "report.json")
    return ET.fromstring(document), {image["image"]: image for image in report["images"]}


def outcome(case: ET.Element) -> str:
    children = {child.tag for child in case} - {"system-out"}
    return {"failure": "failed", "skipped": "skipped"}.get(next(iter(children), ""), "succeeded")


@pytest.mark.parametrize("builder", ["docker", "classic"])
def test_the_junit_file_has_one_case_per_image_as_the_report_and_registry_say(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, builder: str
) -> None:
    failing_project(tmp_path, f"{services.plain_registry}/{namespace}", builder)

    root, images = run_with_junit(tmp_path, "junit.xml")

    cases = {f"{case.get('classname')}/{case.get('name')}": case for case in root.iter("testcase")}
    assert {key: outcome(case) for key, case in cases.items()} == {k: i["status"] for k, i in images.items()}
    assert {key: outcome(case) for key, case in cases.items()} == {
        "shop/base": "succeeded",
        "shop/app": "failed",
        "shop/worker": "skipped",
        "tools/lint": "succeeded",
    }, {key: image.get("error") for key, image in images.items()}
    assert [(s.get("name"), s.get("tests"), s.get("failures"), s.get("skipped")) for s in root] == [
        ("shop", "3", "1", "1"),
        ("tools", "1", "0", "0"),
    ]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "0")
    # The failure names the step and carries the report's log tail, ESC shown as text.
    failure = cases["shop/app"].find("failure")
    assert failure is not None and failure.text is not None
    # The step as the builder names it: BuildKit's "[2/2] RUN ...", the classic builder's "Step 3/3 : RUN ..."
    # (its ARG is a step).
    step = {"docker": "[2/2] ", "classic": "Step 3/3 : "}[builder] + FAILING_RUN
    assert failure.get("type") == images["shop/app"]["failed_step"] == step
    assert failure.get("message") == images["shop/app"]["error"].removeprefix("shop/app: ")
    tail = [line.replace("\x1b", "\\x1b") for line in images["shop/app"]["log_tail"]]
    assert "\\x1b[31mERROR\\x1b[0m: no compiler" in tail, tail
    assert failure.text.splitlines() == [images["shop/app"]["error"], *tail]
    skipped = cases["shop/worker"].find("skipped")
    assert skipped is not None and skipped.get("message") == images["shop/worker"]["error"]
    # A passed case names the pushed image: each tag it lists points at that digest in the registry.
    for key in ("shop/base", "tools/lint"):
        reference, tags = str(cases[key].findtext("system-out")).splitlines()
        assert reference == images[key]["reference"]
        name = key.split("/")[1]
        assert tags.removeprefix("tags: ").split(", ") == images[key]["tags"]
        assert {plain_peek.digest(f"{namespace}/{name}", tag) for tag in images[key]["tags"]} == {
            reference.split("@")[1]
        }

    # Run again: base and lint are reused; their cases still pass, saying so.
    again, images = run_with_junit(tmp_path, "junit-again.xml")

    for case in again.iter("testcase"):
        key = f"{case.get('classname')}/{case.get('name')}"
        if images[key]["reused"]:
            assert str(case.findtext("system-out")).startswith("reused: not built; an earlier build"), key
    assert {k for k, i in images.items() if i["reused"]} == {"shop/base", "tools/lint"}


def test_a_release_dry_run_refuses_a_junit_file_under_a_file_and_makes_no_missing_directory(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    failing_project(tmp_path, f"{services.plain_registry}/{namespace}")
    (tmp_path / ".git" / "info" / "exclude").write_text("blocked\n")
    (tmp_path / "blocked").write_text("a file\n")

    result = run_cli(["release", "--bump", "patch", "--dry-run", "--junit", "blocked/junit.xml"], tmp_path)

    assert result.code == 2, result.stderr
    assert f"--junit blocked/junit.xml: {tmp_path / 'blocked'} is not a directory" in result.stderr
    # A missing directory is made when the file is written: a dry run writes nothing, so makes none.
    result = run_cli(["release", "--bump", "patch", "--dry-run", "--junit", "missing/junit.xml"], tmp_path)
    assert "missing" not in result.stderr and not (tmp_path / "missing").exists(), result.stderr
