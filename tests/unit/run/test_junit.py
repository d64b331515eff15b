"""`--junit FILE`: the run's report as JUnit XML, exactly, and valid against Jenkins' junit-10.xsd."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import semver
import xmlschema

from pipeline.config import load_config
from pipeline.plan import Plan, RunContext, make_plan
from pipeline.report import RunReport
from pipeline.run.executor import ImageResult, RunResult, Status
from pipeline.run.junit import junit_xml, write_junit
from pipeline.run.report import report_data
from tests.helpers import image_entry, init_git, run_cli, shop_config, write_project

XSD = Path(__file__).resolve().parents[2] / "data" / "schemas" / "junit-10.xsd"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DIGEST = "sha256:" + "ab" * 32
INPUTS = "sha256:" + "cd" * 32
FAILURE = 'shop/app: build failed at [2/2] RUN make: process "/bin/sh -c make" did not complete successfully: exit 2'


def fixture_plan(tmp_path: Path) -> Plan:
    """shop: base, app and worker (each built from the one before); tools: lint."""
    config = load_config(
        write_project(
            tmp_path,
            shop_config(
                "127.0.0.1:5000/local",
                {
                    "base": "",
                    "app": image_entry("app", "depends_on: [base]"),
                    "worker": image_entry("worker", "depends_on: [app]"),
                },
                network=None,
                more={"tools": ("lint",)},
            ),
            {name: "FROM scratch\n" for name in ("base", "app", "worker", "lint")},
        )
    )
    context = RunContext(version=semver.Version.parse("1.2.0"), git_sha="f" * 40)
    return make_plan(config.spec, config.base_dir, [], context)


def fixture_report(
    tmp_path: Path, app_tail: tuple[str, ...] = ("cc -o app app.c", "app.c:1: error: oops")
) -> RunReport:
    """shop: base reused, app failed with a log tail, worker skipped after it; tools: lint built."""
    plan = fixture_plan(tmp_path)
    base = ImageResult("shop/base", "127.0.0.1:5000/local/base", Status.SUCCEEDED, digest=DIGEST, cached=True)
    base.tags, base.inputs = ["1.2.0", "sha-ffffffffffff"], INPUTS
    base.started_at, base.finished_at, base.duration = T0, T0 + 0.5, 0.5
    app = ImageResult("shop/app", "127.0.0.1:5000/local/app", Status.FAILED, error=FAILURE, log_tail=app_tail)
    app.failed_step = "[2/2] RUN make"
    app.started_at, app.finished_at, app.duration = T0 + 0.5, T0 + 12.25, 11.75
    skip = "not built: depends on shop/app, which failed"
    worker = ImageResult("shop/worker", "127.0.0.1:5000/local/worker", Status.SKIPPED, error=skip)
    lint = ImageResult("tools/lint", "127.0.0.1:5000/local/lint", Status.SUCCEEDED, digest=DIGEST, tags=["1.2.0"])
    lint.started_at, lint.finished_at, lint.duration = T0 + 1, T0 + 4.25, 3.25
    images = {"shop/base": base, "shop/app": app, "shop/worker": worker, "tools/lint": lint}
    return report_data(plan, RunResult({key: images[key] for key in plan.images}, duration=12.5))


EXPECTED = f"""\
<?xml version='1.0' encoding='utf-8'?>
<testsuites name="pipeline" tests="4" failures="1" errors="0" time="12.500">
  <testsuite name="shop" tests="3" failures="1" errors="0" skipped="1" time="12.250" timestamp="2026-01-01T00:00:00.000Z">
    <properties>
      <property name="version" value="1.2.0" />
      <property name="git_sha" value="{"f" * 40}" />
    </properties>
    <testcase classname="shop" name="base" time="0.500">
      <system-out>reused: not built; an earlier build with the same inputs ({INPUTS})
127.0.0.1:5000/local/base@{DIGEST}
tags: 1.2.0, sha-ffffffffffff</system-out>
    </testcase>
    <testcase classname="shop" name="app" time="11.750">
      <failure message="build failed at [2/2] RUN make: process &quot;/bin/sh -c make&quot; did not complete successfully: exit 2" type="[2/2] RUN make">{FAILURE}
cc -o app app.c
app.c:1: error: oops</failure>
    </testcase>
    <testcase classname="shop" name="worker" time="0.000">
      <skipped message="not built: depends on shop/app, which failed" />
    </testcase>
  </testsuite>
  <testsuite name="tools" tests="1" failures="0" errors="0" skipped="0" time="3.250" timestamp="2026-01-01T00:00:01.000Z">
    <properties>
      <property name="version" value="1.2.0" />
      <property name="git_sha" value="{"f" * 40}" />
    </properties>
    <testcase classname="tools" name="lint" time="3.250">
      <system-out>127.0.0.1:5000/local/lint@{DIGEST}
tags: 1.2.0</system-out>
    </testcase>
  </testsuite>
</testsuites>
"""  # noqa: E501 - the exact document, one line per element as written


def validate(document: bytes) -> None:
    xmlschema.XMLSchema(XSD).validate(document.decode("utf-8"))


def test_one_testcase_per_image_in_one_suite_per_pipeline(tmp_path: Path) -> None:
    document = junit_xml(fixture_report(tmp_path))

    assert document.decode("utf-8") == EXPECTED
    validate(document)


def test_a_publishing_failure_is_an_error_of_the_run_even_when_every_image_passed(tmp_path: Path) -> None:
    report = fixture_report(tmp_path)
    error_message = "127.0.0.1:5000/local/base: tag 1.2.0 names another image (use --force)"
    images = [image for image in report.images if image.status == "succeeded"]

    document = junit_xml(report.model_copy(update={"images": images, "error": error_message}))

    validate(document)
    root = ET.fromstring(document)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "0", "1")
    error = root.find("testsuite[@name='pipeline run']/testcase[@name='publish tags']/error")
    assert error is not None and error.get("message") == error_message


def test_control_characters_xml_forbids_are_shown_escaped(tmp_path: Path) -> None:
    # Coloured compiler output (ESC), a form feed, a NUL and an undecodable byte kept by surrogateescape.
    tail = ("\x1b[31merror\x1b[0m: bad\x0c", "nul\x00here", "byte \udcff", "tab\tand unicode ✓")
    document = junit_xml(fixture_report(tmp_path, app_tail=tail))

    validate(document)
    failure = ET.fromstring(document).find("testsuite/testcase[@name='app']/failure")  # expat is strict XML 1.0
    assert failure is not None and failure.text is not None
    assert failure.text.splitlines()[1:] == [
        "\\x1b[31merror\\x1b[0m: bad\\x0c",
        "nul\\x00here",
        "byte \ufffd",
        "tab\tand unicode ✓",
    ]


def test_the_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "out" / "junit.xml"
    target.parent.mkdir()
    target.write_text("an earlier run's report")

    write_junit(target, fixture_report(tmp_path / "project"))

    assert target.read_text(encoding="utf-8") == EXPECTED
    assert sorted(p.name for p in target.parent.iterdir()) == ["junit.xml"]


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["run"], "--junit"),
        (["run"], "--report"),
        (["run"], "--dotenv"),
        (["release", "--version", "1.0.0"], "--junit"),
    ],
)
def test_a_file_where_a_directory_would_be_is_refused_before_anything_is_built(
    tmp_path: Path, command: list[str], option: str
) -> None:
    # Missing directories are made when the file is written; a file in their place cannot become one.
    write_project(
        tmp_path,
        """\
        registry: 127.0.0.1:1/nowhere
        pipelines:
          shop:
            images:
              app: {context: images/app}
        """,
        {"app": "FROM scratch\n"},
    )
    (tmp_path / ".gitignore").write_text("blocked\n")
    init_git(tmp_path)
    (tmp_path / "blocked").write_text("a file\n")

    result = run_cli([*command, option, "blocked/out/file"], tmp_path)

    assert result.code == 2, result.stderr
    assert f"{option} blocked/out/file: {tmp_path / 'blocked'} is not a directory" in result.stderr
    assert "127.0.0.1:1" not in result.stderr  # refused before the engine or the registry was asked
