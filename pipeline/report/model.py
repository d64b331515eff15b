"""The run report's models: what a `--report` file holds, key for key, in the order it is written.

Readers parse a report with `RunReport.model_validate` (keys a report leaves out take their defaults); the
run builds one with every key set, and `RunReport.data()` gives the JSON object written, holding the keys
that were set (a trigger's "nothing to build" report holds only `ok`, `images` and the trigger).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Bumped when a key is removed or changes its meaning; a new key keeps the version (readers ignore it).
REPORT_VERSION: Literal[1] = 1

Status = Literal["pending", "running", "succeeded", "failed", "skipped", "interrupted"]
Action = Literal["create", "move", "unchanged", "stays", "overwrite", "exists"]


def _every_key_written(schema: dict[str, Any]) -> None:
    # The run writes every key of these objects (its defaults only serve readers of partial data, tests).
    schema["required"] = list(schema.get("properties", {}))


_WRITTEN_WHOLE = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_every_key_written)


class BuiltFrom(BaseModel):
    """A reused image: the version and revision of the build that made it (from its labels)."""

    model_config = _WRITTEN_WHOLE
    version: str | None = None
    revision: str | None = None


class BaseReport(BaseModel):
    """An external base image an image stands on, as the run resolved it."""

    model_config = _WRITTEN_WHOLE
    reference: str = Field(description="As the Dockerfile names it, after ARGs (`:latest` written out).")
    platform: str
    os_version: str | None = None
    digest: str = Field(description="The image the build stood on.")
    index: str | None = Field(None, description="The index the reference pointed at, when it is one.")
    locked: bool = Field(False, description="Taken from pipelines.lock.")
    not_in_lock: bool = Field(False, description="A lock exists but does not name it: the registry's digest.")


class VariantReport(BaseModel):
    """One child of an image index: a variant of the image, built for one platform."""

    model_config = _WRITTEN_WHOLE
    variant: str
    platform: str | None = None
    digest: str | None = None
    reference: str | None = None
    tags: list[str] = []
    status: Status = "pending"
    engine: str | None = None
    reused: bool = False
    bases: list[BaseReport] = []
    build_started_at: str | None = None
    build_finished_at: str | None = None


class ImageReport(BaseModel):
    """One image of the run: what was built or reused, pushed and tagged, or why it failed."""

    model_config = _WRITTEN_WHOLE
    image: str = Field(description="The image's key, `<pipeline>/<name>`.")
    pipeline: str = ""
    name: str = ""
    depends_on: list[str] = Field([], description="The keys of the images it is built from (the DAG).")
    repository: str | None = None
    reference: str | None = Field(None, description="`repository@digest` of the pushed (or reused) image.")
    digest: str | None = None
    image_id: str | None = Field(
        None,
        description="The ID of the built image in the engine that built it (`docker image inspect <id>`): "
        "its config's digest on the classic image store, its manifest's digest on the containerd store.",
    )
    tags: list[str] = []
    status: Status = "pending"
    duration_seconds: float = 0.0
    started_at: str | None = Field(None, description="ISO 8601 UTC, milliseconds (`2024-05-01T12:00:00.000Z`).")
    finished_at: str | None = None
    build_started_at: str | None = None
    build_finished_at: str | None = None
    engine: str | None = Field(None, description="Where it was built, or its last build failed.")
    inputs: str | None = Field(None, description="The input digest (what reuse compares).")
    reused: bool = Field(False, description="Taken from the registry (same inputs), not built.")
    built_from: BuiltFrom | None = None
    not_reused: list[str] = Field([], description="Candidates under the input tags not reused, and why.")
    error: str | None = None
    log_tail: list[str] = Field([], description="A failed build: the failing step's last output lines.")
    failed_step: str | None = Field(None, description="A failed build: the Dockerfile step that failed.")
    bases: list[BaseReport] = Field([], description="The external base images it stands on.")
    variants: list[VariantReport] = Field([], description="An image index's children (empty: one image).")


class TagChangeReport(BaseModel):
    """A tag the run created, moved, kept or left, and why."""

    model_config = _WRITTEN_WHOLE
    image: str
    repository: str = ""
    tag: str
    kind: str = Field("", description="release, floating or extra.")
    action: Action
    digest: str | None = None
    previous: str | None = Field(None, description="The digest the tag pointed at before.")
    reason: str = ""


class ReleaseReport(BaseModel):
    """The release a run made (`pipeline release`, a base update's patch release)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    git_tag: str
    reason: str


class AffectedReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    image: str
    reason: str


class MoveReport(BaseModel):
    """An external base that moved (a base update)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    image: str
    reference: str
    old: str | None = None
    new: str


class TriggerReport(BaseModel):
    """What started a triggered run: a push (`ref`, `before`, `after`) or a base update (`kind: base`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["base"] | None = None
    ref: str
    before: str | None = None
    after: str
    bases: list[str] | None = None
    moves: list[MoveReport] | None = None
    affected: list[AffectedReport] = []


class RunReport(BaseModel):
    """The JSON report of a run (`pipeline run --report FILE`, `--json`; `release`, `trigger`, `watch`)."""

    # Every report holds these; the others a trigger's "nothing to build" report leaves out.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"required": ["report_version", "ok", "images"]}
    )
    report_version: Literal[1] = Field(
        REPORT_VERSION, description="The report format's version: bumped when a key is removed or changes meaning."
    )
    ok: bool = Field(description="Every image succeeded and every tag was published.")
    duration_seconds: float = 0.0
    version: str | None = Field(None, description="The version built (`--version`, a release), else null.")
    git_sha: str | None = None
    published: bool = Field(False, description="Tags were moved in a registry (a failure after it keeps them).")
    error: str | None = Field(None, description="What failed the run beside its images (publishing the tags).")
    interrupted: str | None = Field(None, description="The signal that stopped the run (SIGINT, SIGTERM).")
    tag_changes: list[TagChangeReport] = []
    images: list[ImageReport]
    reason: str | None = Field(None, description="Why a triggered run built what it did (a base update).")
    trigger: TriggerReport | None = None
    release: ReleaseReport | None = None

    def data(self) -> dict[str, Any]:
        """The JSON object written: `report_version` first, then the keys that were set, in this order."""
        written = self.model_dump(mode="json", exclude_unset=True)
        return {"report_version": self.report_version, **{k: v for k, v in written.items() if k != "report_version"}}
