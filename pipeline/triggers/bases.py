"""Base image updates turned into builds (`trigger --base`, `watch --bases`, serve's registry notifications):
which images of a branch's pipelines stand on a base reference, whether the digest it resolves to now
differs from the one their last build recorded (its `org.pipeline.bases` label, else the lock), and a run
of exactly those images and their dependants, every other dependency pinned as `run --since` pins it.
A notification only names the reference: the digest is always resolved here."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.bases.resolve import BaseResolver, open_resolver, plan_builds
from pipeline.bases.usage import base_uses
from pipeline.cache.explain import match_children
from pipeline.cache.inputs import BASES_LABEL, variant_labels
from pipeline.cache.lastbuild import last_build
from pipeline.common.reporting import Reporter
from pipeline.config import load_config
from pipeline.errors import UsageError
from pipeline.plan import Plan, PlannedImage, sanitize_tag
from pipeline.registry.client import RegistryClient, image_descriptors
from pipeline.registry.reference import ImageRef, parse_reference
from pipeline.report import RunReport
from pipeline.run.report import ProgressMode, check_report_file, write_report
from pipeline.run.session import Session
from pipeline.run.settings import Secrets, Settings
from pipeline.triggers.base_release import BaseRun, release_groups
from pipeline.triggers.changed import Affected
from pipeline.triggers.rules import match_ref, ref_name
from pipeline.vcs.source import GitSource


@dataclass(frozen=True)
class BaseMove:
    """A base of `image` that resolves to `new` now, where its last build stood on `old` (None: no build
    of it on this history recorded one)."""

    image: str
    reference: str
    old: str | None
    new: str

    @property
    def reason(self) -> str:
        return f"base update: {self.reference} {self.old or '(not recorded)'} → {self.new}"


def normalized(ref: ImageRef) -> ImageRef:
    """`:latest` written out for a reference that names neither a tag nor a digest."""
    return ImageRef(ref.repository, "latest") if ref.tag is None and ref.digest is None else ref


def names_base(requested: ImageRef, written: ImageRef, current: Callable[[ImageRef], str]) -> bool:
    """Whether a notified reference names the base a Dockerfile writes: the same repository and tag
    (normalized); a digest-only reference, the base written with that digest or whose tag points at it now."""
    requested, written = normalized(requested), normalized(written)
    if _repository(requested) != _repository(written):
        return False
    if requested.tag is not None:
        return requested.tag == written.tag
    return written.digest == requested.digest or (written.digest is None and current(written) == requested.digest)


# Docker Hub's other names for itself (its notifications and `docker pull` logs use them).
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


def _repository(ref: ImageRef) -> str:
    registry = "docker.io" if ref.repository.registry in _HUB_ALIASES else ref.repository.registry
    return f"{registry}/{ref.repository.path}"


def recorded_bases(
    registry: RegistryClient, image: PlannedImage, history: list[str], fallback: str | None
) -> dict[str | None, dict[str, str]]:
    """Variant name (None: an image without variants) -> base reference -> the digest the image's last
    build on `history` recorded in its `org.pipeline.bases` label; {} when there is no such build."""
    found = last_build(registry, image, history, fallback)
    if found is None:
        return {}
    manifest = registry.manifest_by_digest(image.repository, found.digest)
    if not (manifest.is_index and image.variants):
        return {None: _label(registry.manifest_labels(image.repository, manifest))}
    children = match_children(image.variants, image_descriptors(manifest.json()))
    return {
        name: _label(
            variant_labels(
                registry.manifest_labels(image.repository, registry.manifest_by_digest(image.repository, child)), name
            )
        )
        for name, child in children.items()
    }


def _label(labels: Mapping[str, str]) -> dict[str, str]:
    try:
        data = json.loads(labels.get(BASES_LABEL) or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def find_moves(
    plan: Plan,
    registry: RegistryClient,
    resolver: BaseResolver,
    requested: Iterable[ImageRef],
    history: list[str],
    fallback: str | None,
) -> tuple[set[str], list[BaseMove]]:
    """(the images that use a requested reference, the moves among them): each use resolved as a build
    resolves it (the lock where it names the base) and compared with what the image's last build recorded."""
    wanted = list(requested)
    recorded: dict[str, dict[str | None, dict[str, str]]] = {}
    moves: dict[tuple[str, str, str | None, str], BaseMove] = {}
    users: set[str] = set()
    # The run's own code path (plan/explain, bases and the build itself find and resolve bases this way).
    for view, args in plan_builds(plan):
        for base in resolver.bases_of(
            view, args, only=lambda ref: any(names_base(r, ref, resolver.current) for r in wanted)
        ):
            users.add(view.key)
            if view.key not in recorded:
                recorded[view.key] = recorded_bases(registry, plan.images[view.key], history, fallback)
            old = recorded[view.key].get(view.variant, {}).get(base.reference)
            if old is None and base.locked:
                old = base.digest  # never built on this history: the lock is what it was meant to stand on
            if old != base.digest:
                move = BaseMove(view.key, base.reference, old, base.digest)
                moves.setdefault((move.image, move.reference, move.old, move.new), move)
    return users, list(moves.values())


def affected_by(plan: Plan, moves: Iterable[BaseMove]) -> list[Affected]:
    """The moved images and every image that depends on one, in plan order, each with why."""
    reasons: dict[str, list[str]] = {}
    for move in moves:
        reasons.setdefault(move.image, []).append(move.reason)
    affected: dict[str, str] = {}
    for key, image in plan.images.items():
        if key in reasons:
            affected[key] = "; ".join(dict.fromkeys(reasons[key]))
        else:
            dep = next((d for d in image.depends_on if d in affected), None)
            if dep is not None:
                affected[key] = f"depends on {dep}"
    return [Affected(key, reason) for key, reason in affected.items()]


def overall_reason(moves: Iterable[BaseMove]) -> str:
    """One line for the report, the notification, the git tag and the provenance: each distinct move."""
    return "; ".join(dict.fromkeys(move.reason for move in moves))


def trigger_bases(
    settings: Settings,
    secrets: Secrets,
    repo: str,
    ref: str,
    references: Iterable[str],
    after: str | None,
    config_path: str,
    report_file: Path | None,
    jobs: int,
    reporter: Reporter,
    progress: ProgressMode = "auto",
    keep_going: bool = False,
    locked: bool = False,
) -> bool:
    """Build what base updates of `references` call for on the tip of branch `ref` (or `after`); True when
    every build succeeded (nothing to build included). `locked` (`--locked`): only on the digests the
    checkout's pipelines.lock names; a base of the plan it does not name is refused (exit 2) before
    anything is looked up or built."""
    requested = [parse_reference(text) for text in references]
    if not requested:
        raise UsageError("--base: name at least one base image reference")
    kind, branch = ref_name(ref)
    if kind != "branch":
        raise UsageError(f"--ref {ref}: a base update builds a branch's tip; give --ref refs/heads/BRANCH")
    check_report_file(report_file)
    source = GitSource(repo, settings.repos_dir)
    source.fetch()
    commit = source.resolve(after or ref)
    if commit is None:
        raise UsageError(f"{source.name}: no commit {after or ref}")
    trigger: dict[str, Any] = {"kind": "base", "ref": ref, "after": commit, "bases": [str(r) for r in requested]}
    trigger.update(moves=[], affected=[])
    shown = ", ".join(str(r) for r in requested)
    with source.checkout(commit) as tree:
        config = load_config(tree / config_path, checkout=tree)
        remote = source.spec if source.mirrored else str(Path(source.spec).resolve())
        session = Session(config, settings, reporter, progress, claims_remote=remote)
        matches = [m for m in match_ref(config.spec, ref) if m.release_version is None]
        if not matches:
            return _nothing(f"{ref}: no trigger rule matches; nothing to build", trigger, report_file, reporter)
        tags = {m.pipeline: m.extra_tags for m in matches}
        plan = session.plan(list(tags), None, branch=branch, trigger_tags=tags)
        history = source.history(commit)
        fallback = sanitize_tag(branch)
        with session.registry() as registry:
            resolver = open_resolver(registry, plan, tree / config_path, locked=locked)
            users, moves = find_moves(plan, registry, resolver, requested, history, fallback)
        if not users:
            return _nothing(f"{shown}: no image of {ref} uses it; nothing to build", trigger, report_file, reporter)
        if not moves:
            message = f"{shown}: nothing moved since the last build of {', '.join(sorted(users))}; nothing to build"
            return _nothing(message, trigger, report_file, reporter)
        affected = affected_by(plan, moves)
        trigger["moves"] = [{"image": m.image, "reference": m.reference, "old": m.old, "new": m.new} for m in moves]
        trigger["affected"] = [{"image": a.key, "reason": a.reason} for a in affected]
        for item in affected:
            reporter.say(f"{item.key}: {item.reason}")
        ok = True
        for pipelines, release in release_groups(config, plan, affected):
            keys = {a.key for a in affected if plan.images[a.key].pipeline in pipelines}
            group_moves = [m for m in moves if m.image in keys]
            run = BaseRun(
                session, secrets, source, tree, commit, history, fallback, report_file, jobs, keep_going, locked
            )
            ok = run.run(plan, pipelines, keys, tags, branch, overall_reason(group_moves), release, trigger) and ok
        return ok


def current_bases(settings: Settings, repo: str, ref: str, config_path: str) -> dict[str, str]:
    """Each external base the pipelines that build `ref` use on its tip (a tag, not a digest) -> the digest
    it points at now: one HEAD request per reference (the registry client's retry policy honours 429 and
    Retry-After)."""
    source = GitSource(repo, settings.repos_dir)
    source.fetch()
    commit = source.resolve(ref)
    if commit is None:
        raise UsageError(f"{source.name}: no branch {ref}")
    _kind, branch = ref_name(ref)
    with source.checkout(commit) as tree:
        config = load_config(tree / config_path, checkout=tree)
        session = Session(config, settings)
        tags = {m.pipeline: m.extra_tags for m in match_ref(config.spec, ref) if m.release_version is None}
        if not tags:
            return {}
        plan = session.plan(list(tags), None, branch=branch, trigger_tags=tags)
        uses = base_uses(plan)
        references = sorted({str(normalized(parse_reference(u.reference))) for u in uses})
        references = [reference for reference in references if parse_reference(reference).digest is None]
        with session.registry() as registry:
            resolver = BaseResolver(registry)
            return {reference: resolver.current(parse_reference(reference)) for reference in references}


def _nothing(message: str, trigger: dict[str, Any], report_file: Path | None, reporter: Reporter) -> bool:
    reporter.say(message)
    if report_file:
        write_report(
            report_file, RunReport.model_validate({"ok": True, "images": [], "reason": None, "trigger": trigger})
        )
    return True
