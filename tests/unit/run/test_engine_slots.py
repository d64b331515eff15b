"""Build slots per engine (EngineSlots) and the urgency that orders waiting images (urgencies).

Real threads, no sleeps deciding order: a test waits until the slots hold the waiters it started
(`_waiters`), then frees a slot and records who got it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.plan import RunContext, make_plan
from pipeline.run.slots import EngineSlots, NoEngineLeft, urgencies
from tests.helpers import write_project

TIMEOUT = 10.0


def _waiters(slots: EngineSlots) -> int:
    with slots._cond:
        return len(slots._waiting)


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"not within {TIMEOUT} s: {what}"
        time.sleep(0.001)


class Waiter:
    """One thread waiting for a slot; `got` is the engine it got, `error` what acquire raised."""

    def __init__(
        self,
        slots: EngineSlots,
        candidates: tuple[str, ...],
        urgency: int,
        log: list[str] | None = None,
        name: str = "",
    ) -> None:
        self.got: str | None = None
        self.error: Exception | None = None
        self.done = threading.Event()
        before = _waiters(slots)

        def run() -> None:
            try:
                self.got = slots.acquire(candidates, urgency)
                if log is not None:
                    log.append(name)
            except NoEngineLeft as exc:
                self.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        _wait_for(lambda: _waiters(slots) == before + 1 or self.done.is_set(), "the waiter to queue")

    def finish(self) -> None:
        assert self.done.wait(TIMEOUT), "the waiter never got a slot"
        self.thread.join(TIMEOUT)


def test_a_free_slot_goes_to_the_engine_with_the_most_free_slots() -> None:
    slots = EngineSlots({"a": 1, "b": 3})
    got = [slots.acquire(("a", "b"), 1) for _ in range(4)]
    assert got[:2] == ["b", "b"]  # 3 free, then 2, against a's 1
    assert Counter(got) == {"a": 1, "b": 3}


def test_limits_hold_under_many_threads_and_every_engine_is_used() -> None:
    limits = {"a": 2, "b": 3}
    slots = EngineSlots(limits)
    busy: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    lock = threading.Lock()
    rng = random.Random(13)
    plan = [(rng.choice([("a", "b"), ("a",), ("b",)]), rng.randint(1, 5)) for _ in range(60)]

    def build(candidates: tuple[str, ...], urgency: int) -> None:
        engine = slots.acquire(candidates, urgency)
        assert engine in candidates
        with lock:
            busy[engine] += 1
            peak[engine] = max(peak[engine], busy[engine])
        time.sleep(0.005)
        with lock:
            busy[engine] -= 1
        slots.release(engine)

    threads = [threading.Thread(target=build, args=job) for job in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    assert dict(peak) == limits  # never above a limit, and each engine was filled to its limit
    assert busy == Counter() or all(v == 0 for v in busy.values())
    assert slots._free == limits  # every slot came back


def test_the_most_urgent_waiter_goes_first_then_first_come_first_served() -> None:
    slots = EngineSlots({"a": 1})
    assert slots.acquire(("a",), 1) == "a"
    log: list[str] = []
    order = [("u1", 1), ("u5-first", 5), ("u3", 3), ("u5-second", 5), ("u2", 2)]
    waiters = [Waiter(slots, ("a",), urgency, log, name) for name, urgency in order]
    for granted in range(1, len(waiters) + 1):
        slots.release("a")  # one slot at a time: exactly one waiter gets it
        _wait_for(lambda: len(log) == granted, f"grant {granted}")  # noqa: B023 - waited for here
    for waiter in waiters:
        waiter.finish()
    assert log == ["u5-first", "u5-second", "u3", "u2", "u1"]


def test_an_urgent_waiter_does_not_hold_back_one_that_can_use_another_engine() -> None:
    slots = EngineSlots({"a": 1, "b": 1})
    assert {slots.acquire(("a", "b"), 1), slots.acquire(("a", "b"), 1)} == {"a", "b"}
    urgent = Waiter(slots, ("a",), 9)
    modest = Waiter(slots, ("a", "b"), 1)
    slots.release("b")  # only the modest waiter may use b
    modest.finish()
    assert modest.got == "b" and not urgent.done.is_set()
    slots.release("a")
    urgent.finish()
    assert urgent.got == "a"


def both_taken(cond: threading.Condition | None = None) -> EngineSlots:
    """Engines a and b, one slot each, both taken; waiting on `cond` when given."""
    slots = EngineSlots({"a": 1, "b": 1})
    if cond is not None:
        slots._cond = cond
    slots.acquire(("a",), 1)
    slots.acquire(("b",), 1)
    return slots


def test_a_less_urgent_waiter_leaves_a_shared_engine_to_the_more_urgent() -> None:
    slots = both_taken()
    modest = Waiter(slots, ("b",), 1)
    urgent = Waiter(slots, ("a", "b"), 9)
    slots.release("b")
    urgent.finish()
    assert urgent.got == "b" and not modest.done.is_set()
    slots.release("b")
    modest.finish()
    assert modest.got == "b"


class CountingCondition(threading.Condition):
    """The slots' condition, counting the times a waiter went (back) to waiting: after a wake-up, that
    waiter has looked at the slots again and decided to wait on."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1  # the lock is held here
        return super().wait(timeout)


def test_marking_an_engine_down_wakes_its_waiters() -> None:
    slots = both_taken(cond := CountingCondition())
    pinned = Waiter(slots, ("a",), 5)
    either = Waiter(slots, ("a", "b"), 1)
    slots.mark_down("a")
    pinned.finish()
    assert isinstance(pinned.error, NoEngineLeft)
    assert str(pinned.error) == "no engine left to build on (a stopped answering)"
    assert not either.done.is_set()  # b may still free up
    assert slots.is_down("a") and not slots.is_down("b")
    with cond:
        looked = cond.waits
    slots.release("a")  # the build that was on a ends: its slot is no use
    _wait_for(lambda: cond.waits > looked or either.done.is_set(), "the waiter to look at the freed slot")
    assert not either.done.is_set()
    slots.release("b")
    either.finish()
    assert either.got == "b"


def test_no_engine_left_at_once_when_every_candidate_is_down() -> None:
    slots = EngineSlots({"a": 2, "b": 2})
    slots.mark_down("a")
    slots.mark_down("b")
    with pytest.raises(NoEngineLeft, match=r"\(a, b stopped answering\)"):
        slots.acquire(("a", "b"), 1)
    assert _waiters(slots) == 0


DAG = """\
registry: 127.0.0.1:5000/t
pipelines:
  shop:
    images:
      top: {context: images/x, depends_on: [leaf]}
      leaf: {context: images/x, depends_on: [mid]}
      mid: {context: images/x, depends_on: [base]}
      side: {context: images/x, depends_on: [base]}
      base: {context: images/x}
      lone: {context: images/x}
      join: {context: images/x, depends_on: [side, lone]}
"""


def test_urgency_is_the_longest_chain_of_dependants(tmp_path: Path) -> None:
    config = load_config(write_project(tmp_path, DAG, {"x": "FROM scratch\n"}))
    plan = make_plan(config.spec, config.base_dir, [], RunContext())
    assert urgencies(plan) == {
        "shop/base": 4,  # base -> mid -> leaf -> top
        "shop/mid": 3,
        "shop/leaf": 2,
        "shop/top": 1,
        "shop/side": 2,  # side -> join
        "shop/lone": 2,
        "shop/join": 1,
    }
