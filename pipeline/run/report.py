"""Run results for people (a table, progress lines) and machines (the JSON report)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.segment import Segment, Segments
from rich.style import Style
from rich.table import Table

from pipeline.ci.commands import Command, GroupSyntax, inert_json, write_command
from pipeline.ci.groups import GroupedLines, Line, on_interrupt
from pipeline.common.fields import fields_of
from pipeline.errors import UsageError
from pipeline.files import write_text
from pipeline.plan import Plan
from pipeline.release.publish import TagChange
from pipeline.run.executor import Event, RunResult, Status

# Defined with the settings (the CLI's options need them without loading this module); kept importable here.
from pipeline.run.settings import PROGRESS_MODES as PROGRESS_MODES
from pipeline.run.settings import ProgressMode as ProgressMode

if TYPE_CHECKING:
    # The report's models (~25 ms of pydantic classes) load when a report is made: a run's summary table
    # needs none of them (emit_report).
    from pipeline.report import RunReport, TagChangeReport

STATUS_STYLE = {
    Status.SUCCEEDED: "green",
    Status.FAILED: "red",
    Status.SKIPPED: "yellow",
    Status.PENDING: "dim",
    Status.RUNNING: "cyan",
    Status.INTERRUPTED: "magenta",
}


def report_data(plan: Plan, result: RunResult) -> RunReport:
    from pipeline.report import BaseReport, BuiltFrom, ImageReport, RunReport, VariantReport

    ctx = plan.context
    return RunReport(
        ok=result.ok,
        duration_seconds=round(result.duration, 3),
        version=str(ctx.version) if ctx.version else None,
        git_sha=ctx.git_sha,
        published=result.published,
        error=result.error,
        interrupted=result.interrupted,  # the signal that stopped the run (SIGINT, SIGTERM), else null
        tag_changes=[tag_change_report(c) for c in result.tag_changes],
        images=[
            ImageReport(
                image=key,
                **fields_of(plan.images[key], "pipeline", "name"),
                depends_on=list(plan.images[key].depends_on),  # the DAG, for pictures of the run (serve)
                **fields_of(r, "repository", "reference", "digest", "image_id", "tags"),
                status=r.status.value,
                duration_seconds=round(r.duration, 3),
                **_times(r, "started_at", "finished_at", "build_started_at", "build_finished_at"),
                **fields_of(r, "engine", "inputs", "error", "failed_step"),
                reused=r.cached,
                # a reused image: {version, revision} of the build that made it
                built_from=BuiltFrom(**r.built_from) if r.built_from is not None else None,
                # Candidates under the input tags that were not reused, and why (`not reused: sha256:… is
                # not signed by this pipeline's key …`), the image's and its variants'.
                not_reused=[*r.not_reused, *(line for v in r.variants.values() for line in v.not_reused)],
                log_tail=list(r.log_tail),
                # Each external base image it stands on, as the run resolved it (an index: its variants').
                bases=[BaseReport(**base.as_dict()) for base in r.bases],
                # An image index's children, one per variant (empty: one image, no index).
                variants=[
                    VariantReport(
                        variant=name,
                        **fields_of(v, "platform", "digest", "reference", "tags", "engine"),
                        status=v.status.value,
                        reused=v.cached,
                        bases=[BaseReport(**base.as_dict()) for base in v.bases],
                        **_times(v, "build_started_at", "build_finished_at"),
                    )
                    for name, v in r.variants.items()
                ],
            )
            for key, r in result.images.items()
        ],
    )


def with_extra(report: RunReport, extra: dict[str, Any] | None) -> RunReport:
    """The report with a caller's sections (`release`, `trigger`, `reason`), checked against the model."""
    if not extra:
        return report
    from pipeline.report import RunReport

    return RunReport.model_validate({**report.data(), **extra})


def tag_change_report(change: TagChange) -> TagChangeReport:
    from pipeline.report import TagChangeReport

    return TagChangeReport(
        **fields_of(change, "image", "tag", "kind", "digest", "previous", "reason"),
        repository=str(change.repository),
        action=change.action.value,
    )


def tag_change_data(change: TagChange) -> dict[str, Any]:
    """A tag change as the report's JSON writes it (also in `release --dry-run --json` and `promote --json`)."""
    return tag_change_report(change).model_dump(mode="json")


def _times(obj: object, *names: str) -> dict[str, str | None]:
    """{name: obj.name as ISO 8601 UTC} for each of `names` (epoch seconds; None stays None)."""
    return {name: _iso(getattr(obj, name)) for name in names}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_report(path: Path, report: RunReport) -> None:
    write_text(path, json.dumps(report.data(), indent=2) + "\n", "report")


SUMMARY_COLUMNS = ("image", "status", "digest", "tags", "time")
SUMMARY_WIDTH = 160


def print_summary(result: RunResult, stream: TextIO | None = None) -> None:
    rows = [
        (key, r.status.value, (r.digest or "-")[:19], ", ".join(r.tags) or "-", f"{r.duration:.1f}s")
        for key, r in result.images.items()
    ]
    styles = [STATUS_STYLE[r.status] for r in result.images.values()]
    console = Console(file=stream or sys.stdout, width=SUMMARY_WIDTH)
    drawn = None if console.options.ascii_only or console.legacy_windows else _drawn_table(rows, styles)
    console.print(drawn or _rich_table(rows, styles))
    # The lines below are printed whole (soft_wrap): a break rich would insert could start a line with
    # text of the build's (`::warning::...` 110 characters into an error message); the terminal wraps.
    for key, r in result.images.items():
        if r.status in (Status.FAILED, Status.INTERRUPTED) and r.error:
            message = r.error[len(key) + 2 :] if r.error.startswith(f"{key}: ") else r.error
            # escape: a failing step's text ("[2/2] RUN ...", '["/bin/sh", ...]') is not markup
            console.print(f"[red]{escape(key)}[/red]: {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    lines: list[str] = []
    for key, r in result.images.items():
        made = r.built_from
        if made and made["version"] and made["version"] not in r.tags:  # its labels name another version
            at = f" at {made['revision'][:12]}" if made["revision"] else ""
            lines.append(f"{key}: reused, built as {made['version']}{at}")
    for key, r in result.images.items():
        lines += [f"{key}: {line}" for line in [*r.not_reused, *(n for v in r.variants.values() for n in v.not_reused)]]
    if lines:  # one print: the same text as a print each, without rich's cost per call (an image each)
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
    stays = [c for c in result.tag_changes if c.action.value == "stays"]
    for change in stays:
        line = f"{change.image}: {change.tag} stays: {change.reason}"
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if result.error:
        console.print(f"[red]run[/red]: {escape(result.error)}", markup=True, highlight=False, soft_wrap=True)
    if result.interrupted:
        line = f"run: interrupted by {result.interrupted}; no release or floating tag was moved by it"
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _rich_table(rows: Sequence[tuple[str, ...]], styles: Sequence[str]) -> Table:
    table = Table(title=None, show_lines=False)
    for column in SUMMARY_COLUMNS:
        table.add_column(column, overflow="fold")
    for row, style in zip(rows, styles, strict=True):
        table.add_row(row[0], f"[{style}]{row[1]}[/{style}]", *row[2:])
    return table


def _drawn_table(rows: Sequence[tuple[str, ...]], styles: Sequence[str]) -> Segments | None:
    """The summary table as rich's Table draws it (the same characters and styles), drawn directly: rich
    measures and renders each cell, ~0.4 ms a row, most of a 1,000-image no-op's summary. None (rich draws
    it) when a cell is not plain text rich would print as it is, or the table would not fit the width; the
    caller leaves it to rich where the output cannot carry its box characters (rich draws ASCII there)."""
    cells = [*SUMMARY_COLUMNS, *(cell for row in rows for cell in row)]
    if not all(cell.isascii() and cell.isprintable() and "[" not in cell and cell.count(":") < 2 for cell in cells):
        return None  # markup, emoji codes, wide or control characters: rich's own rules
    widths = [max(len(cell) for cell in column) for column in zip(SUMMARY_COLUMNS, *rows, strict=True)]
    if sum(widths) + 3 * len(widths) + 1 > SUMMARY_WIDTH:
        return None  # rich folds cells to fit

    def rule(left: str, middle: str, right: str, line: str) -> Segment:
        return Segment(left + middle.join(line * (width + 2) for width in widths) + right + "\n")

    bold = Style(bold=True)
    drawn = [rule("┏", "┳", "┓", "━"), Segment("┃")]
    for name, width in zip(SUMMARY_COLUMNS, widths, strict=True):
        drawn += [Segment(" ", bold), Segment(name.ljust(width), bold), Segment(" ", bold), Segment("┃")]
    drawn += [Segment("\n"), rule("┡", "╇", "┩", "━")]
    for row, style in zip(rows, styles, strict=True):
        key, status, *rest = row
        drawn += [
            Segment(f"│ {key.ljust(widths[0])} │ "),
            Segment(status, Style.parse(style)),
            Segment(" " * (widths[1] - len(status)) + " │"),
            *(Segment(f" {cell.ljust(width)} │") for cell, width in zip(rest, widths[2:], strict=True)),
            Segment("\n"),
        ]
    drawn.append(rule("└", "┴", "┘", "─"))
    return Segments(drawn)


LOG_STEP = "log"  # one line of a build step's own output (see pipeline.builders.ProgressFn)
FAILED_STEP = "failed"
START_STEP = "start"
FINISHED_STEPS = ("done", "skipped")  # with FAILED_STEP: an image's last event before publishing


class ProgressPrinter:
    """Progress on stderr, one line per event: elapsed, image, step, message. `auto` leaves out the
    steps' own output lines (one line per step), `plain` prints them too, `quiet` prints only failures.
    A failure is followed by the failing step's last output lines, indented, in every mode.
    With `groups` (in CI) each image's lines are printed as one log group when the image finishes, after
    a "start" line printed at once; a failure's lines follow its group, outside it, so they show folded.
    Lines held for a minute are printed as a group of their own (checked every `tick` seconds, so a hung
    build shows where it hangs), and an interrupt prints every open group (ci.groups.close_open_groups)."""

    def __init__(
        self,
        mode: ProgressMode = "auto",
        stream: TextIO | None = None,
        groups: GroupSyntax | None = None,
        grouped: GroupedLines | None = None,
        tick: float = 5.0,
    ) -> None:
        self.mode = mode
        self.stream = stream or sys.stderr
        # Reentrant: an interrupt's handler runs on the main thread, which may be printing.
        self._lock = threading.RLock()
        self._shown = 0.0
        self._grouped = grouped or (GroupedLines(groups) if groups is not None else None)
        self._tick = tick
        self._ticking = False
        if self._grouped is not None:
            on_interrupt(self.close_groups)

    def shows(self, event: Event) -> bool:
        if event.step == FAILED_STEP:
            return True
        if self.mode == "quiet":
            return False
        return self.mode == "plain" or event.step != LOG_STEP

    def __call__(self, event: Event) -> None:
        if not self.shows(event):
            return
        with self._lock:
            # Builds on other threads stamp their events a moment before they get the lock; the printed
            # time never goes back, so a reader sees one clock for the whole run.
            self._shown = max(self._shown, event.elapsed)
            lines: list[Line] = [f"[{self._shown:6.1f}s] {event.image:<24} {event.step:<7} {event.message}"]
            lines += [f"    | {line}" for line in event.log_tail]
            if self._grouped is not None:
                lines = self._group(event, [str(line) for line in lines])
            self._print(lines)

    def _print(self, lines: Sequence[Line]) -> None:
        for line in lines:
            if isinstance(line, Command):
                write_command(line.text, self.stream)
            else:
                print(line, file=self.stream)
        if lines:
            self.stream.flush()

    def close_groups(self, reason: str) -> None:
        """Print every open group, titled "<image> <reason>" (the process is being stopped). Waits for the
        lock a moment only: a build thread may hold it, and the process exits next anyway."""
        if self._grouped is None or not self._lock.acquire(timeout=2):
            return
        try:
            self._print(self._grouped.close_all(reason))
        finally:
            self._lock.release()

    def _tick_forever(self) -> None:
        while True:
            time.sleep(self._tick)
            with self._lock:
                assert self._grouped is not None
                self._print(self._grouped.due())

    def _group(self, event: Event, lines: list[str]) -> list[Line]:
        grouped, title = self._grouped, f"{event.image} {event.step}"
        assert grouped is not None
        if event.step == START_STEP:
            if not self._ticking:  # a daemon thread: it never holds the process at exit
                self._ticking = True
                threading.Thread(target=self._tick_forever, name="progress-groups", daemon=True).start()
            return grouped.start(event.image, lines[0])
        if event.step == FAILED_STEP:
            return grouped.finish(event.image, title, [], shown=lines)
        if event.step in FINISHED_STEPS:
            return grouped.finish(event.image, title, lines)
        return grouped.add(event.image, lines)


def emit_report(
    plan: Plan,
    result: RunResult,
    report_file: Path | None,
    as_json: bool,
    extra: dict[str, Any] | None = None,
    junit_file: Path | None = None,
    also: Callable[[RunReport], None] | None = None,
) -> None:
    """The run's report: written to `report_file` (and as JUnit XML to `junit_file`) if given, and printed
    as JSON or as the summary table; then handed to `also` (the CI's outputs and summary). A run that
    only prints the table (no file, no JSON, no `also`) makes no report at all."""
    if not (report_file or junit_file or as_json or also is not None):
        print_summary(result)
        return
    report = with_extra(report_data(plan, result), extra)
    if report_file:
        write_report(report_file, report)
    if junit_file:
        from pipeline.run.junit import write_junit  # xml.etree only for the runs that ask for it

        write_junit(junit_file, report)
    if as_json:
        print(inert_json(report.data()), flush=True)  # build output in it must not read as a CI command
    else:
        print_summary(result)
    if also is not None:
        also(report)


def check_report_file(report_file: Path | None, option: str = "--report") -> None:
    """Refuse a report path (of `option`) that cannot be written before anything is built, not after:
    missing directories are made when it is written, but a file where a directory would be is refused."""
    if not report_file:
        return
    for above in report_file.absolute().parents:
        if above.exists() or above.is_symlink():
            if not above.is_dir():
                raise UsageError(f"{option} {report_file}: {above} is not a directory")
            return
