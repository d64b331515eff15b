"""A reused image in the summary: its labels name the earlier build, and the summary says which."""

from __future__ import annotations

import io

from pipeline.run.executor import ImageResult, RunResult, Status
from pipeline.run.report import print_summary

SHA = "8204a1ede5c7bdf17632bcf9a8379e4740c9655c"


def summary(*images: ImageResult) -> list[str]:
    stream = io.StringIO()
    print_summary(RunResult({i.key: i for i in images}), stream)
    return stream.getvalue().splitlines()


def test_a_reused_image_built_as_another_version_is_named_below_the_table() -> None:
    reused = ImageResult("shop/base", "r/base", Status.SUCCEEDED, "sha256:" + "2" * 64, tags=["sha-x", "1.1.0"])
    reused.cached, reused.built_from = True, {"version": "1.0.0", "revision": SHA}
    again = ImageResult("shop/app", "r/app", Status.SUCCEEDED, "sha256:" + "3" * 64, tags=["sha-x", "1.1.0"])
    again.cached, again.built_from = True, {"version": "1.1.0", "revision": SHA}  # a re-run: nothing to say
    built = ImageResult("shop/worker", "r/worker", Status.SUCCEEDED, "sha256:" + "4" * 64, tags=["sha-x", "1.1.0"])
    lines = summary(reused, again, built)
    assert [line for line in lines if not line.startswith(("┏", "┃", "┡", "│", "└"))] == [
        "shop/base: reused, built as 1.0.0 at 8204a1ede5c7"
    ]
