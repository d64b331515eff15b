"""The progress Reporter protocol and its adapters (pipeline.common.reporting)."""

from __future__ import annotations

from pipeline.common.reporting import SILENT, Forward, Reporter


def test_forward_sends_each_kind_of_line_to_its_function() -> None:
    said: list[str] = []
    warned: list[str] = []
    steps: list[tuple[str, str, str]] = []
    reporter: Reporter = Forward(said.append, warn=warned.append, step=lambda *event: steps.append(event))
    reporter.say("resolving bases")
    reporter.warn("warning: no lock")
    reporter.step("app/web", "push", "pushing reg/app:1")
    assert (said, warned, steps) == (
        ["resolving bases"],
        ["warning: no lock"],
        [("app/web", "push", "pushing reg/app:1")],
    )


def test_forward_warns_through_say_unless_told_and_drops_steps_without_a_function() -> None:
    said: list[str] = []
    reporter = Forward(said.append)
    reporter.warn("warning: w")
    reporter.step("app", "build", "[1/2] FROM x")
    assert said == ["warning: w"]


def test_silent_says_nothing_and_is_a_reporter() -> None:
    reporter: Reporter = SILENT
    assert reporter.say("x") is None
    assert reporter.warn("x") is None
    assert reporter.step("app", "build", "x") is None
