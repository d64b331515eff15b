"""Which pipelines a pushed ref runs, and how: Docker Hub style branch and tag rules. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.config.schema import ConfigSpec
from pipeline.vcs import ZERO_SHA as ZERO_SHA  # re-exported: what triggers name a missing ref by


@dataclass(frozen=True)
class Match:
    pipeline: str
    extra_tags: tuple[str, ...]
    release_version: str | None  # set when a tag rule with `release: true` matched


def ref_name(ref: str) -> tuple[str, str]:
    """('branch'|'tag', short name) of a full ref; a bare name counts as a branch."""
    if ref.startswith("refs/heads/"):
        return "branch", ref[len("refs/heads/") :]
    if ref.startswith("refs/tags/"):
        return "tag", ref[len("refs/tags/") :]
    return "branch", ref


def match_ref(spec: ConfigSpec, ref: str) -> list[Match]:
    """Pipelines whose rules match `ref`. A pipeline without rules builds on any branch push."""
    kind, name = ref_name(ref)
    matches = []
    for pipeline_name, pipeline in spec.pipelines.items():
        if not pipeline.triggers:
            if kind == "branch":
                matches.append(Match(pipeline_name, (), None))
            continue
        for rule in pipeline.triggers:
            pattern = rule.branch if kind == "branch" else rule.tag
            if pattern is None:
                continue
            found = re.fullmatch(pattern, name)
            if found is None:
                continue
            version = found.group("version") if rule.release else None
            matches.append(Match(pipeline_name, tuple(rule.tags), version))
            break
    return matches
