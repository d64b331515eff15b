"""The git-remote primitives several runners coordinate with, on real bare repositories: a ref is
created only once, a stale compare-and-swap loses, a live lease makes a waiter wait, an expired one is
taken over; and release claims on top of them (another commit loses, a finished re-run goes on)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pipeline.common.reporting import Forward
from pipeline.errors import PipelineError
from pipeline.release.claims import ReleaseClaims, Runner, VersionClaimed, repositories_lease, repository_key
from pipeline.vcs.refs import Lease, LeaseLost, LeaseTimeout, RefsRemote, RemoteRef
from tests.helpers import git

REF = "refs/pipeline/claims/x/1.0.0"


def clone(origin: Path, path: Path) -> RefsRemote:
    git(origin.parent, "clone", "-q", str(origin), str(path))
    git(path, "commit", "-q", "--allow-empty", "-m", "c")
    remote = RefsRemote.of(path)
    assert remote is not None
    return remote


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, RefsRemote, RefsRemote]:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    return origin, clone(origin, tmp_path / "a"), clone(origin, tmp_path / "b")


def remote_refs(origin: Path) -> dict[str, str]:
    listed = git(origin, "for-each-ref", "--format=%(refname) %(objectname)", "refs/pipeline")
    return dict(line.split() for line in listed.splitlines())


def test_creating_a_ref_that_exists_is_refused(two: tuple[Path, RefsRemote, RefsRemote]) -> None:
    origin, a, b = two
    mine, theirs = a.make_object({"holder": "a"}), b.make_object({"holder": "b"})
    assert a.swap({REF: (None, mine)})
    assert not b.swap({REF: (None, theirs)})
    assert remote_refs(origin) == {REF: mine}
    seen = b.read([REF, "refs/pipeline/claims/x/2.0.0"])
    assert list(seen) == [REF] and seen[REF].oid == mine and seen[REF].fields["holder"] == "a"


def test_an_atomic_push_lands_all_or_nothing(two: tuple[Path, RefsRemote, RefsRemote]) -> None:
    origin, a, b = two
    assert a.swap({"refs/pipeline/claims/y/1.0.0": (None, a.make_object({}))})
    other = b.make_object({})
    assert not b.swap({"refs/pipeline/claims/x/1.0.0": (None, other), "refs/pipeline/claims/y/1.0.0": (None, other)})
    assert "refs/pipeline/claims/x/1.0.0" not in remote_refs(origin)


def test_a_stale_compare_and_swap_loses(two: tuple[Path, RefsRemote, RefsRemote]) -> None:
    origin, a, b = two
    first = a.make_object({"n": "1"})
    assert a.swap({REF: (None, first)})
    second, third = a.make_object({"n": "2"}), b.make_object({"n": "3"})
    assert a.swap({REF: (first, second)})
    assert not b.swap({REF: (first, third)})  # b read `first`: someone moved it since
    assert not b.swap({REF: (first, None)})  # nor may b delete it
    assert remote_refs(origin) == {REF: second}
    assert b.swap({REF: (second, None)})
    assert remote_refs(origin) == {}


def test_a_live_lease_makes_the_other_runner_wait_until_released(two: tuple[Path, RefsRemote, RefsRemote]) -> None:
    origin, a, b = two
    lease_ref = "refs/pipeline/leases/x"
    held = Lease(a, [lease_ref], {"holder": "runner a"}, ttl=30)
    held.acquire(wait=5, on_wait=lambda holder: None)
    waited: list[RemoteRef] = []
    other = Lease(b, [lease_ref], {"holder": "runner b"}, ttl=30)
    with pytest.raises(LeaseTimeout, match="held by runner a"):
        other.acquire(wait=1, on_wait=waited.append, poll=0.2)
    assert [w.fields["holder"] for w in waited] == ["runner a"]
    got = threading.Event()
    thread = threading.Thread(target=lambda: (other.acquire(wait=20, on_wait=lambda h: None, poll=0.1), got.set()))
    thread.start()
    time.sleep(1)
    assert not got.is_set()
    assert held.release()
    thread.join(timeout=20)
    assert got.is_set()
    assert b.read([lease_ref])[lease_ref].fields["holder"] == "runner b"
    assert other.release() and remote_refs(origin) == {}


def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_release_it(
    two: tuple[Path, RefsRemote, RefsRemote],
) -> None:
    origin, a, b = two
    lease_ref = "refs/pipeline/leases/x"
    dead = Lease(a, [lease_ref], {"holder": "runner a"}, ttl=1)
    dead.acquire(wait=5, on_wait=lambda holder: None, clock=lambda: time.time() - 100)  # expired long ago
    dead._stop.set()  # its holder died: no renewals
    taker = Lease(b, [lease_ref], {"holder": "runner b"}, ttl=30)
    taker.acquire(wait=5, on_wait=lambda holder: None)
    assert remote_refs(origin)[lease_ref] == taker.oid
    assert not dead.release()  # a compare-and-swap from what it held: stale
    assert remote_refs(origin)[lease_ref] == taker.oid
    assert taker.release()


def test_a_held_lease_is_renewed_and_outlives_its_ttl(two: tuple[Path, RefsRemote, RefsRemote]) -> None:
    _origin, a, b = two
    lease_ref = "refs/pipeline/leases/x"
    held = Lease(a, [lease_ref], {"holder": "runner a"}, ttl=1.5)
    held.acquire(wait=5, on_wait=lambda holder: None)
    time.sleep(2.5)
    other = Lease(b, [lease_ref], {"holder": "runner b"}, ttl=30)
    with pytest.raises(LeaseTimeout):
        other.acquire(wait=0.5, on_wait=lambda holder: None, poll=0.1)
    assert not held.lost and held.release()


def claims(remote: RefsRemote, commit: str, pid: int, **kwargs: object) -> ReleaseClaims:
    said: list[str] = []
    return ReleaseClaims(
        remote, ["reg:5000/ns/app"], "1.0.0", commit, Runner("host", pid, None), False, Forward(said.append), **kwargs
    )


def test_a_version_claimed_from_another_commit_is_refused_naming_the_winner(
    two: tuple[Path, RefsRemote, RefsRemote],
) -> None:
    origin, a, b = two
    first = claims(a, "a" * 40, 1)
    first.claim()
    ref = f"refs/pipeline/claims/{repository_key('reg:5000/ns/app')}/1.0.0"
    assert list(remote_refs(origin)) == [ref]
    with pytest.raises(
        VersionClaimed, match=r"lost the race for version 1.0.0 .* commit aaaaaaaaaaaa by runner host pid 1"
    ):
        claims(b, "b" * 40, 2).claim()
    with first.publishing():
        pass
    assert a.read([ref])[ref].fields["state"] == "done"
    with pytest.raises(VersionClaimed, match="it was released from commit aaaaaaaaaaaa"):
        claims(b, "b" * 40, 2).claim()
    rerun = claims(b, "a" * 40, 3)
    rerun.claim()  # a finished release of this same commit: a re-run goes on
    with rerun.publishing():
        pass
    assert remote_refs(origin) == {ref: first.done[ref]}


def test_an_abandoned_claim_frees_the_version(two: tuple[Path, RefsRemote, RefsRemote]) -> None:
    origin, a, b = two
    first = claims(a, "a" * 40, 1)
    first.claim()
    first.abandon()
    assert remote_refs(origin) == {}
    claims(b, "b" * 40, 2).claim()


def test_a_lease_taken_over_is_found_lost_before_writing(two: tuple[Path, RefsRemote, RefsRemote]) -> None:
    _origin, a, b = two
    lease_ref = "refs/pipeline/leases/x"
    held = Lease(a, [lease_ref], {"holder": "runner a"}, ttl=30)
    held.acquire(wait=5, on_wait=lambda holder: None)
    held.check()  # still ours
    assert b.swap({lease_ref: (held.oid, b.make_object({"runner": "runner b"}))})  # taken over (it looked expired)
    with pytest.raises(LeaseLost, match="leases/x on git remote origin was taken over by runner b"):
        held.check()
    assert held.lost and not held.release()


def test_a_lease_not_renewed_for_most_of_its_ttl_is_not_written_under(
    two: tuple[Path, RefsRemote, RefsRemote],
) -> None:
    _origin, a, _b = two
    now = [time.time()]
    held = Lease(a, ["refs/pipeline/leases/x"], {"holder": "runner a"}, ttl=30)
    held.acquire(wait=5, on_wait=lambda holder: None, clock=lambda: now[0])
    now[0] += 25  # renewals failed (the remote did not answer) for 25 s of its 30 s
    with pytest.raises(LeaseLost, match=r"last renewed 25 s ago \(it expires after 30 s"):
        held.check()
    assert held.release()


def test_a_lost_lease_stops_publishing_and_the_claims_of_started_writes_are_kept(
    two: tuple[Path, RefsRemote, RefsRemote],
) -> None:
    origin, a, b = two
    mine = claims(a, "a" * 40, 1)
    mine.claim()
    ref = f"refs/pipeline/claims/{repository_key('reg:5000/ns/app')}/1.0.0"
    lease_ref = f"refs/pipeline/leases/{repository_key('reg:5000/ns/app')}"
    with pytest.raises(PipelineError, match="was published, but its claims"), mine.publishing():
        mine.check("writing any tag")
        mine.started_writing()
        held = remote_refs(origin)[lease_ref]
        assert b.swap({lease_ref: (held, b.make_object({"runner": "runner b"}))})  # another runner takes the lease
        with pytest.raises(LeaseLost, match="lost the publishing lease for version 1.0.0: .* by runner b; stopped "):
            mine.check("reading the tags back")
    claim = remote_refs(origin)[ref]
    mine.abandon()  # the executor's `finally`: the run did not publish
    assert remote_refs(origin)[ref] == claim  # kept: this run's tags may be in the registry
    assert a.read([ref])[ref].fields["state"] == "publishing"


def test_a_claim_is_renewed_while_its_run_builds(two: tuple[Path, RefsRemote, RefsRemote]) -> None:
    origin, a, b = two
    mine = claims(a, "a" * 40, 1, claim_ttl=1.5)
    mine.claim()
    time.sleep(2.5)  # past the first claim's expiry: renewed every 0.5 s since
    with pytest.raises(VersionClaimed, match="lost the race for version 1.0.0 .* commit aaaaaaaaaaaa"):
        claims(b, "b" * 40, 2, claim_ttl=1.5).claim()
    mine.abandon()
    assert remote_refs(origin) == {}


def test_completing_a_journal_waits_for_the_lease_another_runner_holds(
    two: tuple[Path, RefsRemote, RefsRemote],
) -> None:
    origin, a, b = two
    publishing = claims(b, "b" * 40, 2)
    publishing.claim()
    said: list[str] = []
    ran = []
    with publishing.publishing():  # another runner is writing tags of reg:5000/ns/app
        with (
            pytest.raises(LeaseTimeout, match="held by host pid 2; gave up waiting after 1 s"),
            repositories_lease(
                a, ["reg:5000/ns/app"], Runner("host", 1, None), Forward(said.append), "completing", wait=1
            ),
        ):
            ran.append(True)
    assert not ran and said[0].startswith("waiting for runner host pid 2 to finish publishing")
    with repositories_lease(
        a, ["reg:5000/ns/app"], Runner("host", 1, None), Forward(said.append), "completing"
    ) as lease:
        lease.check()  # released by the other runner: held now, and released after the block
    assert list(remote_refs(origin)) == [f"refs/pipeline/claims/{repository_key('reg:5000/ns/app')}/1.0.0"]
