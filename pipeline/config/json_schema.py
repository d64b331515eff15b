"""The JSON Schema of pipelines.yaml, made from the pydantic models in schema.py, for editors and CI.

It says what the loader's schema step accepts, no less: a YAML number where a string is meant is read as
its text (the models' `coerce_numbers_to_str`), so such fields take a number too. What checks.py checks
across fields (paths exist, names resolve, templates parse) is left to `pipeline validate`.

    >>> schema = pipelines_json_schema()
    >>> schema["$schema"]
    'https://json-schema.org/draft/2020-12/schema'
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from pipeline.config.schema import ConfigSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Where the committed copy (schema/pipelines.schema.json) is served from the project's repository:
# a URL that names the file it identifies, so an editor or SchemaStore entry given the $id can fetch it.
SCHEMA_ID = "https://raw.githubusercontent.com/pipeline-build/pipeline/main/schema/pipelines.schema.json"
# Where the repository keeps it, relative to its root (and to the bundled pipelines.yaml).
SCHEMA_FILE = "schema/pipelines.schema.json"


class _PipelinesSchema(GenerateJsonSchema):
    """pydantic's generator, with the loader's number-as-text rule, dict keys as propertyNames, and
    defaults that name only what is set."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        if self._config.coerce_numbers_to_str and not schema.get("strict") and not self._config.strict:
            json_schema["type"] = ["string", "number"]
        return json_schema

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        # pydantic writes a patterned key type as patternProperties, which lets any other key through with
        # any value; propertyNames refuses the key itself, as the loader does.
        json_schema: JsonSchemaValue = {"type": "object"}
        keys = self.generate_inner(schema["keys_schema"]) if "keys_schema" in schema else {}
        values = self.generate_inner(schema["values_schema"]) if "values_schema" in schema else {}
        json_schema["additionalProperties"] = {k: v for k, v in values.items() if k != "title"} or True
        names = {k: v for k, v in keys.items() if k != "title"}
        if set(names) - {"type"}:
            json_schema["propertyNames"] = names
        self.update_with_validations(json_schema, schema, self.ValidationsMapping.object)
        return json_schema

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        # `default_factory=list` is a default of [] to a reader too.
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return super().get_default_value(schema)

    def encode_default(self, dft: Any) -> Any:
        return _without_nulls(super().encode_default(dft))


def _without_nulls(value: Any) -> Any:
    """`tags: {}` rather than `tags: {floating: null, extra: null, ...}`: a default model names nothing."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def pipelines_json_schema() -> dict[str, Any]:
    """The schema as a JSON object: $schema and $id first, then pydantic's (descriptions from the models'
    docstrings and fields)."""
    generated = ConfigSpec.model_json_schema(schema_generator=_PipelinesSchema)
    # The top level's keys first, the models they refer to ($defs) last: the order a reader wants.
    top = {k: v for k, v in generated.items() if k not in ("title", "$defs")}
    return {"$schema": DIALECT, "$id": SCHEMA_ID, "title": "pipelines.yaml", **top, "$defs": generated["$defs"]}


def schema_text() -> str:
    """The schema as the committed file holds it: two-space indented JSON, a newline at the end."""
    return json.dumps(pipelines_json_schema(), indent=2, ensure_ascii=False) + "\n"
