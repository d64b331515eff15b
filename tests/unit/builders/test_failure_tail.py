"""Which step failed and its last output lines, read from each builder's own output (BuildKit's rawjson
status updates, the classic builder's stream), without an engine."""

from __future__ import annotations

import base64
import collections

from pipeline.builders import LOG_TAIL_LINES
from pipeline.builders.buildx import StepTracker
from pipeline.builders.classic import DockerBuilder
from pipeline.common.reporting import Forward

RUN = '[3/3] RUN for i in $(seq 1 30); do echo "line $i"; done; exit 3'


def test_buildkit_blames_the_failing_step_not_a_missing_cache_image() -> None:
    events: list[tuple[str, str]] = []
    steps = StepTracker(Forward(step=lambda _image, step, message: events.append((step, message))), "app")
    output = "".join(f"line {n}\n" for n in range(1, 31)).encode()
    steps.status({"vertexes": [{"digest": "run", "name": RUN, "started": "t"}]})
    # BuildKit reports the --cache-from image that is not there yet as a failed vertex, and goes on.
    steps.status({"vertexes": [{"digest": "cache", "name": "importing cache manifest from r/app:x", "error": "nf"}]})
    steps.status({"logs": [{"vertex": "run", "data": base64.b64encode(output).decode()}]})
    steps.status({"vertexes": [{"digest": "run", "name": RUN, "started": "t", "error": "exit code: 3"}]})

    assert steps.failed_step == RUN
    assert steps.error == "exit code: 3"
    assert steps.failed_tail() == tuple(f"line {n}" for n in range(11, 31))
    assert [m for s, m in events if s == "build"] == [RUN]
    assert len([m for s, m in events if s == "log"]) == 30


def test_classic_tail_is_the_steps_own_output_without_the_builders_notes() -> None:
    events: list[tuple[str, str]] = []
    tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    step = "build"
    stream = ["Step 2/5 : RUN make", " ---> Running in 4d5e6f7a8b9c", *(f"line {n}" for n in range(1, 31))]
    stream += ["Removing intermediate container 4d5e6f7a8b9c", "Step 5/5 : LABEL org.example=x"]
    for line in stream[:-1]:
        step = DockerBuilder._line(line, step, tail, 3, Forward(step=lambda _i, s, m: events.append((s, m))), "app")

    assert step == "Step 2/2 : RUN make"  # numbered as the user's Dockerfile (3 label steps appended)
    assert list(tail) == [f"line {n}" for n in range(11, 31)]
    assert [m for s, m in events if s == "build"] == ["Step 2/2 : RUN make"]

    step = DockerBuilder._line(stream[-1], step, tail, 3, Forward(step=lambda _i, s, m: events.append((s, m))), "app")
    assert step.startswith("labels: ") and [m for s, m in events if s == "build"] == ["Step 2/2 : RUN make"]
