"""The run's report as JUnit XML (`--junit FILE`) for the test views of GitLab, Jenkins and Azure Pipelines:
one <testsuite> per pipeline, one <testcase> per image, written from the run report (pipeline.report.RunReport).

Valid against Jenkins' junit-10.xsd (xunit-plugin), the loosest common denominator the CI servers read:
<testsuites> carries no `skipped` or `timestamp` there, so those live on each <testsuite>.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from pipeline.files import write_text
from pipeline.report import ImageReport, RunReport

CLASSNAME_OF_RUN = "pipeline"
# A suite for what fails the run beside its images (publishing the tags); pipeline names have no spaces.
RUN_SUITE = "pipeline run"
# XML 1.0 allows only tab, newline, carriage return and the code points from U+0020 on, minus the
# surrogates and U+FFFE/U+FFFF; a build's log tail can hold any of them (ANSI colours: ESC).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def junit_xml(report: RunReport) -> bytes:
    """The JUnit XML document (UTF-8, indented) for a run's report."""
    root = ET.Element("testsuites", name=CLASSNAME_OF_RUN)
    suites: dict[str, list[ImageReport]] = {}
    for image in report.images:
        suites.setdefault(image.pipeline, []).append(image)
    for pipeline, images in suites.items():
        suite = _suite(root, pipeline, images, _properties(report))
        for image in images:
            _testcase(suite, image)
    if report.error:
        _run_error(root, report.error)
    for count in ("tests", "failures", "errors"):
        root.set(count, str(sum(int(suite.get(count, "0")) for suite in root)))
    root.set("time", _seconds(report.duration_seconds))
    ET.indent(root, "  ")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)  # typeshed: Any for an encoding
    return document + b"\n"


def write_junit(path: Path, report: RunReport) -> None:
    """Write the JUnit XML atomically: a CI server collecting the file never reads half of it."""
    write_text(path, junit_xml(report).decode("utf-8"), "JUnit report")


def _suite(root: ET.Element, pipeline: str, images: list[ImageReport], properties: dict[str, str]) -> ET.Element:
    statuses = [image.status for image in images]
    suite = ET.SubElement(
        root,
        "testsuite",
        name=_text(pipeline),
        tests=str(len(images)),
        failures=str(statuses.count("failed")),
        errors=str(sum(s not in ("succeeded", "failed", "skipped") for s in statuses)),
        skipped=str(statuses.count("skipped")),
        time=_seconds(_span(images)),
    )
    started = [image.started_at for image in images if image.started_at]
    if started:
        suite.set("timestamp", min(started))  # the report's ISO 8601 UTC times sort as text
    if properties:
        element = ET.SubElement(suite, "properties")
        for name, value in properties.items():
            ET.SubElement(element, "property", name=name, value=_text(value))
    return suite


def _testcase(suite: ET.Element, image: ImageReport) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_text(image.pipeline),
        name=_text(image.name),
        time=_seconds(image.duration_seconds),
    )
    status, error = image.status, image.error or ""
    if status == "failed":
        # type: the Dockerfile step that failed (what Jenkins shows as the exception's class), else "error"
        # (a push, a signature, a refusal: the message says which).
        kind = image.failed_step or "error"
        failure = ET.SubElement(case, "failure", message=_text(_unprefixed(error, image.image)), type=_text(kind))
        failure.text = _text("\n".join([error, *image.log_tail]))
    elif status == "skipped":
        ET.SubElement(case, "skipped", message=_text(_unprefixed(error, image.image)))
    elif status != "succeeded":  # an image the run never finished (it stopped on a refusal)
        ET.SubElement(case, "error", message=_text(error or f"not finished: {status}"), type=status)
    else:
        ET.SubElement(case, "system-out").text = _text("\n".join(_success_lines(image)))


def _success_lines(image: ImageReport) -> Iterable[str]:
    if image.reused:
        # A CI view would otherwise show a passed build that built nothing.
        yield f"reused: not built; an earlier build with the same inputs ({image.inputs})"
    if image.reference:
        yield image.reference
    if image.tags:
        yield f"tags: {', '.join(image.tags)}"


def _run_error(root: ET.Element, error: str) -> None:
    suite = ET.SubElement(root, "testsuite", name=RUN_SUITE, tests="1", failures="0", errors="1", skipped="0")
    suite.set("time", _seconds(0.0))
    case = ET.SubElement(suite, "testcase", classname=CLASSNAME_OF_RUN, name="publish tags", time=_seconds(0.0))
    ET.SubElement(case, "error", message=_text(error), type="publish").text = _text(error)


def _properties(report: RunReport) -> dict[str, str]:
    git_tag = report.release.git_tag if report.release is not None else None
    found = {"version": report.version, "git_sha": report.git_sha, "git_tag": git_tag}
    return {name: value for name, value in found.items() if value}


def _span(images: list[ImageReport]) -> float:
    """The suite's wall time, first start to last finish: its images build in parallel, so not their sum."""
    times = [
        (datetime.fromisoformat(i.started_at), datetime.fromisoformat(i.finished_at))
        for i in images
        if i.started_at and i.finished_at
    ]
    if not times:
        return 0.0
    return (max(end for _, end in times) - min(start for start, _ in times)).total_seconds()


def _unprefixed(error: str, key: str) -> str:
    """The testcase already names the image: its message needn't repeat `shop/app: `."""
    return error.removeprefix(f"{key}: ")


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"  # junit-10.xsd's SUREFIRE_TIME: at most three decimals


def _text(value: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else "\ufffd", value)
