"""A base update's runs (see triggers/bases.py): the affected pipelines grouped by `on_base_update`, and
each group run, as a patch release (its git tag made, removed or pushed) or as a build of the branch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.cache.lastbuild import narrow_plan
from pipeline.common.reporting import Reporter
from pipeline.config import LoadedConfig
from pipeline.errors import PipelineError, UsageError
from pipeline.plan import Plan
from pipeline.run.executor import RunOptions
from pipeline.run.notifying import notifying
from pipeline.run.report import emit_report
from pipeline.run.session import Session, check_result
from pipeline.run.settings import Secrets
from pipeline.triggers.changed import Affected
from pipeline.vcs.source import GitSource
from pipeline.vcs.tags import ReleaseRepo
from pipeline.versioning import next_version


def release_groups(config: LoadedConfig, plan: Plan, affected: list[Affected]) -> list[tuple[list[str], bool]]:
    """The affected pipelines split by `on_base_update`: those that cut a patch release, then the others."""
    pipelines = list(dict.fromkeys(plan.images[a.key].pipeline for a in affected))
    releasing = [p for p in pipelines if config.spec.pipelines[p].on_base_update.release == "patch"]
    others = [p for p in pipelines if p not in releasing]
    return [(group, group is releasing) for group in (releasing, others) if group]


@dataclass
class BaseRun:
    """One group's run of a base update: with `release` a patch release (its git tag made before the run,
    removed when nothing was published, pushed to a mirrored source), else a build of the branch."""

    session: Session
    secrets: Secrets
    source: GitSource
    tree: Path
    commit: str
    history: list[str]
    fallback: str
    report_file: Path | None
    jobs: int
    keep_going: bool
    locked: bool

    def run(
        self,
        plan: Plan,
        pipelines: list[str],
        keys: set[str],
        tags: dict[str, tuple[str, ...]],
        branch: str,
        reason: str,
        release: bool,
        trigger: dict[str, Any],
    ) -> bool:
        session, reporter = self.session, self.session.reporter
        repo = ReleaseRepo(self.tree) if release else None
        version = self._next_patch(repo) if repo is not None else None
        if version is not None:
            plan = session.plan(pipelines, version, branch=branch, trigger_tags=tags)
            reporter.say(f"release {version} ({reason})")
        plan = replace(plan, context=replace(plan.context, reason=reason))
        with session.registry() as registry:
            vouch = session.pin_vouch(plan, registry, self.secrets)
            plan = narrow_plan(plan, keys, registry, self.history, self.fallback, vouch, reporter)
        git_tag = f"v{version}" if version is not None else None
        extra: dict[str, Any] = {"reason": reason, "trigger": trigger}
        if repo is not None and git_tag is not None:
            extra["release"] = {"version": version, "git_tag": git_tag, "reason": reason}
            repo.create_tag(git_tag, f"Release {version}\n\n{reason}")
        published = False
        with notifying(session, plan, "trigger") as outcome:
            outcome.reason, outcome.git_tag = reason, git_tag
            try:
                options = RunOptions(jobs=self.jobs, keep_going=self.keep_going, locked=self.locked)
                result = outcome.result = session.execute(plan, options, self.secrets)
                published = result.published
                emit_report(plan, result, self.report_file, False, extra)
            except BaseException:
                if repo is not None and git_tag is not None and not published:
                    _withdraw(repo, git_tag, reporter)
                raise
            if repo is not None and git_tag is not None:
                if not result.ok and not published:
                    _withdraw(repo, git_tag, reporter)
                elif self.source.mirrored:
                    repo.push_tag(git_tag)
                    reporter.say(f"pushed git tag {git_tag} to {self.source.name}")
        try:
            check_result(result)
        except PipelineError as exc:
            reporter.say(f"error: {exc}")
        return result.ok

    def _next_patch(self, repo: ReleaseRepo) -> str:
        """The next patch version after the highest stable `vX.Y.Z` on the branch's history (the book's rule:
        a new build is a new patch tag)."""
        latest = repo.latest_release()
        existing = [t.version for t in repo.version_tags()]
        version = next_version(latest.version if latest else None, "patch", None, existing)
        taken = repo.existing_tag(f"v{version}")
        if taken is not None:
            raise UsageError(
                f"git tag v{version} already exists on commit {taken[:12]}, not on this branch's history; "
                "a base update cannot cut it"
            )
        return str(version)


def _withdraw(repo: ReleaseRepo, git_tag: str, reporter: Reporter) -> None:
    repo.delete_tag(git_tag)
    reporter.say(f"removed git tag {git_tag}: the release did not complete")
