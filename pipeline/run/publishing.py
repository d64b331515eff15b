"""A run's last step, once every image succeeded: release, floating and extra tags (and each variant's
own) decided, written and read back for every image at once (release.publish), under the release claim."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from pipeline.common.reporting import Forward
from pipeline.errors import PipelineError
from pipeline.plan import Plan
from pipeline.registry.client import RegistryClient
from pipeline.release.claims import ReleaseClaims
from pipeline.release.publish import Action, Target, apply_changes, decide_changes, revision_of, verify_published
from pipeline.run.results import Emit, ImageOutcome, ImageResult, RunResult


def publish(
    plan: Plan,
    registry: RegistryClient,
    outcomes: Mapping[str, ImageOutcome],
    result: RunResult,
    force: bool,
    emit: Emit,
    journals: Callable[[str], Path] | None = None,
    claims: ReleaseClaims | None = None,
) -> None:
    """Publish every image's tags; `result` says what moved (`tag_changes`, the rows' `tags`), or the
    run-level `error`. `journals`: a pipeline's name -> the directory of its publish journal."""
    targets, owners = _targets(plan, outcomes)
    # With a git remote, the read-decide-write below is this runner's alone per repository (a lease).
    guard: AbstractContextManager[object] = claims.publishing() if claims is not None else nullcontext()
    try:
        with guard:
            _write(plan, registry, targets, owners, result, force, emit, journals, claims)
    except PipelineError as exc:
        result.error = str(exc)
        return
    result.published = True
    _report_tags(result, owners)


def _write(
    plan: Plan,
    registry: RegistryClient,
    targets: list[Target],
    owners: Mapping[str, tuple[str, str]],
    result: RunResult,
    force: bool,
    emit: Emit,
    journals: Callable[[str], Path] | None,
    claims: ReleaseClaims | None,
) -> None:
    """Decide, write (journalled) and read back every tag change, under the claim's lease."""
    result.tag_changes = decide_changes(targets, registry, force)
    journal_dir = (
        (lambda c: journals(plan.images[owners.get(c.image, (c.image, ""))[0]].pipeline))
        if journals is not None
        else None
    )
    ctx = plan.context
    what = f"version {ctx.template_values()['version']}" + (f" of commit {ctx.git_sha[:12]}" if ctx.git_sha else "")
    if claims is not None:
        claims.check("writing any tag")  # a lost lease: another runner may be writing these tags
        claims.started_writing()  # from here the claims stay (some tags may be in the registry)
    apply_changes(result.tag_changes, registry, Forward(step=emit), journal_dir, what)
    # Another runner (or one without the remote) may have written meanwhile: floating tags end on the
    # highest version present, and every tag this run reports is read back.
    result.tag_changes = verify_published(
        result.tag_changes,
        targets,
        registry,
        Forward(step=emit),
        revision_of(registry),
        guard=claims.check if claims is not None else None,
        released=claims.released if claims is not None else None,
    )


def _targets(plan: Plan, outcomes: Mapping[str, ImageOutcome]) -> tuple[list[Target], dict[str, tuple[str, str]]]:
    """What to tag: each image's digest, and each variant's own (its tags `2.1.5-ltsc2019` follow the same
    rules); with the variants' labels -> (image key, variant name)."""
    targets = [Target(k, i.repository, i.tags, outcomes[k].digest) for k, i in plan.images.items()]
    owners: dict[str, tuple[str, str]] = {}
    for key, image in plan.images.items():
        for name, variant_tags in image.variant_tags.items():
            label = f"{key}[{name}]"
            owners[label] = (key, name)
            targets.append(Target(label, image.repository, variant_tags, outcomes[key].variants[name]))
    return targets, owners


def _report_tags(result: RunResult, owners: Mapping[str, tuple[str, str]]) -> None:
    """Each tag that now points at an image (or variant) on its report row."""
    rows: Mapping[str, ImageResult] = result.images
    for change in result.tag_changes:
        if change.image in owners:
            key, name = owners[change.image]
            tags = rows[key].variants[name].tags
        else:
            tags = rows[change.image].tags
        if change.action != Action.STAYS and change.tag not in tags:
            tags.append(change.tag)
