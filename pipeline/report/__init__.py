"""The run report (`--report FILE`, `--json`): a typed model that `run`, `release` and the triggers write
and the CI outputs, job summary and JUnit XML read, and its published JSON Schema
(schema/report.schema.json). A stable interface: a change that would break a reader bumps
`report_version`.

Example:
    report = RunReport.model_validate_json(Path("report.json").read_text())
    failed = [image.image for image in report.images if image.status == "failed"]
"""

from pipeline.report.model import (
    REPORT_VERSION,
    BaseReport,
    BuiltFrom,
    ImageReport,
    ReleaseReport,
    RunReport,
    TagChangeReport,
    TriggerReport,
    VariantReport,
)

__all__ = [
    "REPORT_VERSION",
    "BaseReport",
    "BuiltFrom",
    "ImageReport",
    "ReleaseReport",
    "RunReport",
    "TagChangeReport",
    "TriggerReport",
    "VariantReport",
]
