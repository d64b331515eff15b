"""What a push calls for, handed to the run session: the pipelines whose trigger rules match the ref, cut
down to the images the pushed commits affect (`trigger`, hooks, `watch`, `serve`'s worker); and the same
question for a working tree (`changed`, `run --since`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.cache.lastbuild import narrow_plan
from pipeline.common.reporting import Reporter
from pipeline.config import LoadedConfig, load_config
from pipeline.errors import PipelineError, UsageError
from pipeline.plan import Plan, sanitize_tag
from pipeline.report import RunReport
from pipeline.run.executor import RunOptions
from pipeline.run.notifying import notifying
from pipeline.run.report import ProgressMode, check_report_file, emit_report, write_report
from pipeline.run.session import Session, check_result
from pipeline.run.settings import Secrets, Settings
from pipeline.triggers.changed import Affected, affected_for_paths, affected_since
from pipeline.triggers.rules import ZERO_SHA, Match, match_ref, ref_name
from pipeline.vcs.source import GitSource


@dataclass(frozen=True)
class RefUpdate:
    """One ref update: `ref` moved from `before` (ZERO_SHA: a new ref) to `after`."""

    ref: str
    before: str
    after: str


def trigger_push(
    settings: Settings,
    secrets: Secrets,
    repo: str,
    push: RefUpdate,
    config_path: str,
    report_file: Path | None,
    jobs: int,
    reporter: Reporter,
    keep_going: bool = False,
    progress: ProgressMode = "auto",
    locked: bool = False,
) -> bool:
    """Build what a push calls for, in a clean checkout of `push.after`; True when every build succeeded.
    `locked`: only on the base digests the checkout's pipelines.lock names (`--locked`)."""
    source = GitSource(repo, settings.repos_dir)
    source.fetch()
    commit = source.resolve(push.after)
    if commit is None:
        raise UsageError(f"{repo}: no commit {push.after}")
    with source.checkout(commit) as tree:
        # The pushed commit chose what is in the checkout: its config may name nothing outside it.
        config = load_config(tree / config_path, checkout=tree)
        # Claims go to the watched repository itself (a mirror's origin, or the local repository a hook runs in).
        remote = source.spec if source.mirrored else str(Path(source.spec).resolve())
        session = Session(config, settings, reporter, progress, claims_remote=remote)
        matches = match_ref(config.spec, push.ref)
        trigger: dict[str, Any] = {"ref": push.ref, "before": push.before, "after": commit, "affected": []}
        if not matches:
            reporter.say(f"{push.ref}: no trigger rule matches; nothing to build")
            _report_nothing_built(report_file, trigger)
            return True
        ok = True
        options = RunOptions(jobs=jobs, keep_going=keep_going, locked=locked)
        for version in sorted({m.release_version for m in matches}, key=lambda v: v or ""):
            group = [m for m in matches if m.release_version == version]
            plan = _group_plan(session, group, version, push.ref)
            affected = _affected(source, config, plan, tree, push, commit, version)
            trigger["affected"] += [{"image": a.key, "reason": a.reason} for a in affected]
            for item in affected:
                reporter.say(f"{item.key}: {item.reason}")
            if not affected:
                reporter.say(f"{push.ref} {commit[:12]}: no image affected")
                _report_nothing_built(report_file, trigger)
                continue
            if not _build_affected(
                session, source, plan, group, affected, commit, secrets, options, report_file, trigger
            ):
                ok = False
        return ok


def _group_plan(session: Session, group: list[Match], version: str | None, ref: str) -> Plan:
    """The plan of the pipelines of one release group (`version`; None: not a release), with their trigger
    rules' extra tags; a branch push is planned as that branch."""
    kind, name = ref_name(ref)
    tags = {m.pipeline: m.extra_tags for m in group}
    return session.plan(
        [m.pipeline for m in group], version, branch=name if kind == "branch" else None, trigger_tags=tags
    )


def _report_nothing_built(report_file: Path | None, trigger: dict[str, Any]) -> None:
    """With --report, a successful report of no images, saying what the push was."""
    if report_file:
        write_report(report_file, RunReport.model_validate({"ok": True, "images": [], "trigger": trigger}))


def _affected(
    source: GitSource,
    config: LoadedConfig,
    plan: Plan,
    tree: Path,
    push: RefUpdate,
    commit: str,
    version: str | None,
) -> list[Affected]:
    """The images of `plan` the push calls for: a release builds them all; a branch push those whose inputs
    the pushed range changed (all of them for a new branch)."""
    if version is not None:
        return [Affected(key, f"release {version} from {push.ref}") for key in plan.images]
    paths = source.changed_paths(push.before, commit) if push.before != ZERO_SHA else None
    return affected_for_paths(config, plan, tree, paths)


def _build_affected(
    session: Session,
    source: GitSource,
    plan: Plan,
    group: list[Match],
    affected: list[Affected],
    commit: str,
    secrets: Secrets,
    options: RunOptions,
    report_file: Path | None,
    trigger: dict[str, Any],
) -> bool:
    """Build the affected images of `plan` (what they depend on pinned to its last build where the
    pipeline's `reuse:` allows), report and notify; True when every build succeeded. A failure is said,
    not raised, so the push's other release groups still run."""
    with session.registry() as registry:
        fallback = next((t for m in group for t in m.extra_tags if "{{" not in t), None)
        vouch = session.pin_vouch(plan, registry, secrets)
        plan = narrow_plan(
            plan, {a.key for a in affected}, registry, source.history(commit), fallback, vouch, session.reporter
        )
    check_report_file(report_file)
    with notifying(session, plan, "trigger") as outcome:
        result = outcome.result = session.execute(plan, options, secrets)
        emit_report(plan, result, report_file, False, {"trigger": trigger})
    try:
        check_result(result)
    except PipelineError as exc:
        session.reporter.say(f"error: {exc}")
    return result.ok


def resolve_before(settings: Settings, repo: str, before: str) -> str:
    """`--before` as a commit (HEAD~1 works), ZERO_SHA for a new ref."""
    if before == ZERO_SHA:
        return before
    return GitSource(repo, settings.repos_dir).resolve(before) or before


def hook_pushes(settings: Settings, hook: str, git_dir: str, stdin_lines: Iterable[str]) -> list[RefUpdate]:
    """The ref updates an installed git hook stands for, read the way each hook receives them."""
    pushes: list[RefUpdate] = []
    if hook in ("post-commit", "post-merge"):
        source = GitSource(git_dir, settings.repos_dir)
        head = source.resolve("HEAD")
        if head is None:
            return []
        branch = str(source.repo.git.symbolic_ref("-q", "HEAD")) if not source.repo.head.is_detached else "HEAD"
        before = source.resolve("ORIG_HEAD") if hook == "post-merge" else source.first_parent(head)
        pushes.append(RefUpdate(branch, before or ZERO_SHA, head))
        return pushes
    for line in stdin_lines:
        parts = line.split()
        if hook == "pre-push" and len(parts) == 4:
            _local_ref, local_sha, remote_ref, remote_sha = parts
            pushes.append(RefUpdate(remote_ref, remote_sha, local_sha))
        elif hook == "post-receive" and len(parts) == 3:
            old, new, ref = parts
            pushes.append(RefUpdate(ref, old, new))
    return pushes


def narrow_to_changes(session: Session, plan: Plan, since: str, secrets: Secrets) -> Plan:
    """`run --since`: only affected images; unaffected ones they reference resolve to their last pushed
    digest on this line of history (a `reuse: trusted` pipeline's only when its signer signed it, else
    they are built too)."""
    config = session.loaded
    affected = affected_since(config, plan, since)
    source = GitSource(str(config.base_dir), Path("."))
    for item in affected:
        session.reporter.say(f"{item.key}: {item.reason}")
    head = source.resolve("HEAD")
    history = source.history(head) if head else []
    branch = plan.context.git_branch
    with session.registry() as registry:
        fallback = sanitize_tag(branch) if branch else None
        vouch = session.pin_vouch(plan, registry, secrets)
        return narrow_plan(plan, {a.key for a in affected}, registry, history, fallback, vouch, session.reporter)
