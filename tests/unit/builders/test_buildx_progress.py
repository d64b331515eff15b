"""BuildKit's rawjson progress as `docker buildx build` 0.13 wrote it against engine 20.10's BuildKit,
recorded in data/: which step failed, and with what."""

from __future__ import annotations

from pathlib import Path

from pipeline.builders.buildx import StepTracker, read_progress

DATA = Path(__file__).parent / "data"


def test_a_missing_cache_source_is_not_the_failure() -> None:
    # --cache-from an image not pushed yet (every first build), then a RUN step exits 1: BuildKit marks
    # the cache import vertex "not found" first and ignores it; the RUN step is what failed.
    lines: list[tuple[str, str]] = []
    steps = StepTracker(lambda step, message: lines.append((step, message)))
    with (DATA / "cache-miss-then-run-fails.rawjson").open() as stream:
        for item in read_progress(stream):
            if isinstance(item, str):
                steps.text(item)
            else:
                steps.status(item)
    assert steps.error == "executor failed running [/bin/busybox false]: exit code: 1"
    assert steps.failed_step == '[2/2] RUN ["/bin/busybox","false"]'
    assert steps.texts[-1] == "ERROR: failed to solve: executor failed running [/bin/busybox false]: exit code: 1"
    assert ("build", '[2/2] RUN ["/bin/busybox","false"]') in lines
