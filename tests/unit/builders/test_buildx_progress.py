"""BuildKit's rawjson progress as `docker buildx build` 0.13 wrote it against engine 20.10's BuildKit,
recorded in data/: which step failed, and with what."""

from __future__ import annotations

from pathlib import Path

from pipeline.builders.buildx import StepTracker, read_progress
from pipeline.common.reporting import Forward

DATA = Path(__file__).parent / "data"


def test_a_missing_cache_source_is_not_the_failure() -> None:
    # --cache-from an image not pushed yet (every first build), then a RUN step exits 1: BuildKit marks
    # the cache import vertex "not found" first and ignores it; the RUN step is what failed.
    lines: list[tuple[str, str]] = []
    steps = StepTracker(Forward(step=lambda _image, step, message: lines.append((step, message))), "app")
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


def test_a_broken_object_does_not_swallow_the_statuses_after_it() -> None:
    # A line of text written into a pretty-printed object (another writer on buildx's stderr under load):
    # the broken object is passed on as text and every later status is still read.
    import io
    import json

    status = json.dumps({"vertexes": [{"digest": "sha256:b", "name": "[2/2] RUN true", "started": "t"}]}, indent=2)
    broken = '{\n  "vertexes": [\nWARNING: something else\n'
    stream = io.StringIO(broken + status + "\n" + status.replace("sha256:b", "sha256:c") + "\n")
    items = list(read_progress(stream))
    texts = [item for item in items if isinstance(item, str)]
    objects = [item for item in items if isinstance(item, dict)]
    assert "WARNING: something else" in texts
    assert [o["vertexes"][0]["digest"] for o in objects] == ["sha256:b", "sha256:c"]
