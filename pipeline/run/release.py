"""A release run: the version chosen, HEAD tagged, the plan built and published through the session, the
git tag removed again when nothing was published; and its dry run, which refuses what the run refuses."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.common.reporting import Reporter
from pipeline.errors import PipelineError
from pipeline.plan import Plan
from pipeline.release.cut import BumpChoice, ChosenVersion, check_can_tag, choose_version, tag_refusals
from pipeline.report import RunReport
from pipeline.run.executor import RunOptions, RunResult
from pipeline.run.notifying import notifying
from pipeline.run.report import check_report_file, emit_report
from pipeline.run.session import Preview, Session, check_result
from pipeline.run.settings import Secrets
from pipeline.vcs.tags import ReleaseRepo


@dataclass
class ReleasePreview:
    chosen: ChosenVersion
    plan: Plan
    preview: Preview


class Release:
    """One release of a checkout: `choose` reads the git tags and picks the version (or finds that HEAD
    already is this release: a re-run), then `run` or `dry_run`."""

    def __init__(self, session: Session, bump: BumpChoice | None, version: str | None, pre: str | None) -> None:
        self.session = session
        self.repo = ReleaseRepo(session.loaded.base_dir)
        self.chosen = choose_version(self.repo, bump, version, pre)

    def run(
        self,
        pipelines: Iterable[str],
        options: RunOptions,
        secrets: Secrets,
        report_file: Path | None,
        as_json: bool,
        push_tag: bool,
        progress: Reporter,
        junit_file: Path | None = None,
        also: Callable[[RunReport], None] | None = None,
    ) -> RunResult:
        """`also` gets the report (the CI's outputs), after a failed run too."""
        chosen = self.chosen
        tag_existed = check_can_tag(self.repo, chosen)
        if push_tag:  # before anything is tagged or published: a release must not stop at its last step
            refusals = self.repo.push_refusals(chosen.git_tag)
            if refusals:
                raise refusals[0]
        plan = self.session.plan(pipelines, str(chosen.version))
        progress.step("", "release", f"{chosen.version} ({chosen.reason})")
        if not tag_existed:
            self.repo.create_tag(chosen.git_tag, f"Release {chosen.version}")
        extra = {"release": {"version": str(chosen.version), "git_tag": chosen.git_tag, "reason": chosen.reason}}
        published = False
        # Outside the tag's removal: a failure is sent once the git tag is gone again, a release once pushed.
        with notifying(self.session, plan, "release") as outcome:
            outcome.git_tag = chosen.git_tag
            try:
                check_report_file(report_file)
                check_report_file(junit_file, "--junit")
                result = outcome.result = self.session.execute(plan, options, secrets)
                published = result.published
                emit_report(plan, result, report_file, as_json, extra, junit_file, also)
                check_result(result)
            except BaseException:
                if not tag_existed and not published:
                    self.repo.delete_tag(chosen.git_tag)
                    progress.step("", "release", f"removed git tag {chosen.git_tag}: the release did not complete")
                raise
            if push_tag:
                self.repo.push_tag(chosen.git_tag)
                progress.step("", "release", f"pushed git tag {chosen.git_tag} to origin")
        return result

    def dry_run(
        self,
        pipelines: Iterable[str],
        options: RunOptions,
        secrets: Secrets,
        report_file: Path | None,
        notify: Reporter,
        junit_file: Path | None = None,
        push_tag: bool = False,
    ) -> ReleasePreview:
        """The plan and the tag changes, and every refusal the run would meet, in its order: the git tag,
        `--push-tag`'s remote, the plan, the report path, then the session's pre-build checks and the
        registry's release tags."""
        refusals: list[PipelineError] = list(tag_refusals(self.repo, self.chosen))
        if push_tag:
            refusals += self.repo.push_refusals(self.chosen.git_tag)
        try:
            plan = self.session.plan(pipelines, str(self.chosen.version))
        except PipelineError:
            if refusals:
                raise refusals[0] from None  # the release stops at this one before planning
            raise
        for path, option in ((report_file, "--report"), (junit_file, "--junit")):
            try:
                check_report_file(path, option)
            except PipelineError as exc:
                refusals.append(exc)
        preview = self.session.preview(plan, options, secrets, notify)
        preview.refusals[:0] = refusals
        return ReleasePreview(self.chosen, plan, preview)
