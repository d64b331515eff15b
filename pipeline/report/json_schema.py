"""The JSON Schema of the run report, made from the models in model.py (schema/report.schema.json)."""

from __future__ import annotations

import json
from typing import Any

from pipeline.report.model import RunReport

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Where the committed copy is served from the project's repository (as pipelines.schema.json's $id).
REPORT_SCHEMA_ID = "https://raw.githubusercontent.com/pipeline-build/pipeline/main/schema/report.schema.json"
REPORT_SCHEMA_FILE = "schema/report.schema.json"


def report_json_schema() -> dict[str, Any]:
    """The schema as a JSON object: $schema and $id first, the models it refers to ($defs) last."""
    generated = RunReport.model_json_schema()
    top = {k: v for k, v in generated.items() if k not in ("title", "$defs")}
    return {"$schema": DIALECT, "$id": REPORT_SCHEMA_ID, "title": "run report", **top, "$defs": generated["$defs"]}


def report_schema_text() -> str:
    """The schema as the committed file holds it: two-space indented JSON, a newline at the end."""
    return json.dumps(report_json_schema(), indent=2, ensure_ascii=False) + "\n"
