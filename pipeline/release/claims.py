"""Releases from several runners, coordinated on the git remote (pipeline.vcs.refs): a run claims its
version in each registry repository by creating `refs/pipeline/claims/<repository>/<version>` before any
registry write, and publishes under a lease, `refs/pipeline/leases/<repository>`, so that the
read-decide-write of tags (and the floating tags' moves) is one runner's at a time per repository."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import InitVar, dataclass, field

import semver

from pipeline.common.reporting import Reporter
from pipeline.errors import PipelineError, TagConflict
from pipeline.registry.reference import Repository
from pipeline.vcs.refs import AlsoRefused, Lease, LeaseLost, RefsRemote, RemoteRef
from pipeline.versioning import version_tag

CLAIMS = "refs/pipeline/claims"
LEASES = "refs/pipeline/leases"
CLAIM_TTL = 3600.0  # a claim whose holder died stops blocking a re-run of its commit (or another) after this
# (renewed every third of it while the run builds: a live run's claim does not expire however long it builds)
LEASE_TTL = 60.0  # renewed every third of it while held
LEASE_WAIT = 1800.0  # how long a run waits for another runner's publishing before it gives up


class VersionClaimed(TagConflict):
    """Another runner has claimed (or released) this version on the git remote: this run lost the race."""


def repository_key(repository: str) -> str:
    """A registry repository as one ref name component: readable, and unique by its hash."""
    flat = re.sub(r"[^A-Za-z0-9_-]+", "_", repository).strip("_")
    return f"{flat}-{hashlib.sha256(repository.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Runner:
    """Who is running: the host and process, and the CI job when there is one (a re-run of the job is the
    same job)."""

    host: str
    pid: int
    job: str | None

    def describe(self) -> str:
        return f"{self.host} pid {self.pid}" + (f" ({self.job})" if self.job else "")


_JOB_VARIABLES = (("GITHUB_RUN_ID", "github run"), ("CI_JOB_ID", "gitlab job"), ("BUILD_BUILDID", "azure build"))


def this_runner(environment: Mapping[str, str]) -> Runner:
    """This process on this host, and its CI job (a re-run of a GitHub job keeps its run id and job name)."""
    job = next((f"{name} {environment[var]}" for var, name in _JOB_VARIABLES if environment.get(var)), None)
    if job is not None and environment.get("GITHUB_RUN_ID") and environment.get("GITHUB_JOB"):
        job += f" job {environment['GITHUB_JOB']}"
    return Runner(socket.gethostname(), os.getpid(), job)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass(eq=False)  # identity: one run's claims
class ReleaseClaims:
    """One run's claims on `version` in `repositories`, for `subject` (the commit released, or for promote
    the digest promoted). `claim` before any registry write; `publishing` around the tag writes (the lease,
    and the claims checked still ours in the same push; marked done when the block succeeds); `abandon`
    when the run published nothing."""

    remote: RefsRemote
    repositories: InitVar[Iterable[str]]
    version: str
    subject: str
    runner: Runner
    force: bool
    reporter: Reporter
    kind: str = "commit"
    claim_ttl: float = CLAIM_TTL
    lease_ttl: float = LEASE_TTL
    lease_wait: float = LEASE_WAIT
    refs: dict[str, str] = field(init=False)  # claim ref -> its repository
    leases: list[str] = field(init=False)
    held: dict[str, str] = field(init=False, default_factory=dict)  # claim ref -> our object there
    # claim ref -> a finished claim of this same subject (a re-run)
    done: dict[str, str] = field(init=False, default_factory=dict)
    writing: bool = field(init=False, default=False)  # tag writes have started: never abandoned from then on
    _lease: Lease | None = field(init=False, default=None)
    # `held` between the renewing thread and the run
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _stop: threading.Event = field(init=False, default_factory=threading.Event)
    _renewer: threading.Thread | None = field(init=False, default=None)

    def __post_init__(self, repositories: Iterable[str]) -> None:
        repos = sorted(set(repositories))
        self.refs = {f"{CLAIMS}/{repository_key(r)}/{self.version}": r for r in repos}
        self.leases = [f"{LEASES}/{repository_key(r)}" for r in repos]

    def _fields(self, state: str, ttl: float | None = None) -> dict[str, str]:
        now = time.time()
        fields = {
            "state": state,
            "version": self.version,
            self.kind: self.subject,
            "runner": self.runner.describe(),
            "host": self.runner.host,
            "pid": str(self.runner.pid),
            "job": self.runner.job or "",
            "at": _when(now),
        }
        if ttl is not None:
            fields |= {"expires": f"{now + ttl:.0f}", "expires-at": _when(now + ttl)}
        return fields

    def _describe(self, found: RemoteRef) -> str:
        f = found.fields
        subject = f.get(self.kind) or f.get("commit") or f.get("digest") or "?"
        return (
            f"{self.kind} {subject[:19] if self.kind == 'digest' else subject[:12]} by runner "
            f"{f.get('runner', '?')} at {f.get('at', '?')} (git ref {found.name} on {self.remote.name})"
        )

    # --- claiming --------------------------------------------------------------------------------

    def claim(self) -> None:
        """Create the claim refs (all at once), or take over those this run may take; raise VersionClaimed
        when another runner holds or released this version."""
        new = self.remote.make_object(self._fields("claimed", self.claim_ttl), f"claim {self.version}")
        if self.remote.swap({ref: (None, new) for ref in self.refs}):
            self.held = dict.fromkeys(self.refs, new)
            self.reporter.say(f"claimed version {self.version} on git remote {self.remote.name}")
            self._start_renewing()
            return
        seen = self.remote.read(list(self.refs))
        updates: dict[str, tuple[str | None, str | None]] = {}
        for ref, repository in self.refs.items():
            found = seen.get(ref)
            if found is None:
                updates[ref] = (None, new)
            elif self._takes(found, repository):
                updates[ref] = (found.oid, new)
            else:
                self.done[ref] = found.oid
        if updates and not self.remote.swap(updates):
            seen = self.remote.read(list(updates))
            moved = [r for r in updates if r in seen and seen[r].oid != updates[r][0]]
            if moved:
                raise self._lost(seen[moved[0]], self.refs[moved[0]])
            raise VersionClaimed(f"version {self.version}: its claims changed while this run claimed them; run again")
        self.held = {ref: new for ref in updates}
        if updates:
            self.reporter.say(f"claimed version {self.version} on git remote {self.remote.name}")
            self._start_renewing()

    def _start_renewing(self) -> None:
        """Renew the held claims every third of their TTL until publishing (or abandon): another runner
        takes over only a claim whose holder stopped renewing it."""

        def renew() -> None:
            while not self._stop.wait(self.claim_ttl / 3):
                with self._lock:
                    if not self.held or self._stop.is_set():
                        return
                    new = self.remote.make_object(self._fields("claimed", self.claim_ttl), f"claim {self.version}")
                    try:
                        ok = self.remote.swap({ref: (oid, new) for ref, oid in self.held.items()})
                    except PipelineError:
                        continue  # the remote may answer next time; the claim has not expired yet
                    if not ok:
                        return  # taken over (--force): publishing() finds out and says who has it
                    self.held = dict.fromkeys(self.held, new)

        self._stop.clear()
        self._renewer = threading.Thread(target=renew, name="claims", daemon=True)
        self._renewer.start()

    def _stop_renewing(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None

    def _takes(self, found: RemoteRef, repository: str) -> bool:
        """Whether this run may go on with a claim that is there: False for a finished claim of this same
        subject (a re-run: nothing to claim), True to take it over; raise when another runner has it."""
        f = found.fields
        same = f.get(self.kind) == self.subject
        if f.get("state") == "done" and same and not self.force:
            return False
        if self.force:
            self.reporter.say(
                f"warning: --force: taking over the claim of version {self.version}: {self._describe(found)}"
            )
            return True
        if f.get("state") != "done":
            now = time.time()
            mine = (f.get("host") == self.runner.host and not _alive(int(f.get("pid") or 0))) or (
                bool(self.runner.job) and f.get("job") == self.runner.job
            )
            if found.expired(now) or (same and mine):
                self.reporter.say(f"taking over the abandoned claim of version {self.version}: {self._describe(found)}")
                return True
        raise self._lost(found, repository)

    def _lost(self, found: RemoteRef, repository: str) -> VersionClaimed:
        f = found.fields
        done = f.get("state") == "done"
        same = f.get(self.kind) == self.subject
        if same and not done:
            return VersionClaimed(
                f"lost the race for version {self.version} of {repository}: the same {self.kind} is being "
                f"released by another runner, {self._describe(found)}, until {f.get('expires-at', '?')}; "
                "nothing was built or moved (run again once that run has finished)"
            )
        what = "released" if done else "claimed"
        return VersionClaimed(
            f"release tags are immutable: lost the race for version {self.version} of {repository}: it was "
            f"{what} from {self._describe(found)}; this run {'builds' if self.kind == 'commit' else 'promotes'} "
            f"{self.kind} {self.subject[:12]}; nothing was built or moved (release a new version, or --force "
            "to overwrite)"
        )

    # --- publishing ------------------------------------------------------------------------------

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Hold the repositories' lease for the block, checking in the same push that every claim is still
        this run's (or still the finished claim of a re-run); on success, mark the claims done and release
        the lease in one push."""
        self._stop_renewing()
        lease = Lease(self.remote, self.leases, self._fields("publishing"), self.lease_ttl)
        renewed = self.remote.make_object(self._fields("publishing", self.claim_ttl), f"claim {self.version}")
        also: dict[str, tuple[str | None, str | None]] = {ref: (oid, renewed) for ref, oid in self.held.items()}
        also |= {ref: (oid, oid) for ref, oid in self.done.items()}

        def waiting(holder: RemoteRef) -> None:
            self.reporter.say(
                f"waiting for runner {holder.fields.get('runner', '?')} to finish publishing "
                f"({holder.name} on {self.remote.name}, until {holder.fields.get('expires-at', '?')})"
            )

        try:
            lease.acquire(self.lease_wait, waiting, also=also)
        except AlsoRefused as exc:
            if exc.now is None:
                raise VersionClaimed(
                    f"lost the race for version {self.version}: its claim {exc.ref} was removed while this run "
                    "built; nothing was published"
                ) from None
            raise self._lost(exc.now, self.refs[exc.ref]) from None
        self.held = dict.fromkeys(self.held, renewed)
        self._lease = lease
        try:
            yield
        except BaseException:
            try:
                lease.release()
            except PipelineError:
                pass  # it expires on its own; the run's own failure is what to report
            raise
        finally:
            self._lease = None
        finished = self.remote.make_object(self._fields("done"), f"released {self.version}")
        marks = {ref: (oid, finished) for ref, oid in self.held.items()}
        if not lease.release(also=marks):
            raise PipelineError(
                f"version {self.version} was published, but its claims on git remote {self.remote.name} "
                "moved meanwhile (another runner used --force?); check the registry's tags"
            )
        self.done |= dict.fromkeys(self.held, finished)
        self.held = {}

    def check(self, before: str) -> None:
        """Inside `publishing`: raise LeaseLost (nothing more may be written) unless the lease is still this
        run's; `before` says what the run was about to do."""
        if self._lease is None:
            return
        try:
            self._lease.check()
        except LeaseLost as exc:
            raise LeaseLost(
                f"lost the publishing lease for version {self.version}: {exc}; stopped before {before} "
                "(another runner may be writing these tags now; check the registry's tags and run again)"
            ) from None

    def released(self, repository: Repository, version: semver.Version) -> bool:
        """Whether `version` of `repository` was released by a runner: its claim on the remote is `done`
        (this run's own version counts too). Floating tags settle only onto such versions."""
        return version_tag(version) == self.version or claim_done(self.remote, repository, version)

    def started_writing(self) -> None:
        """Tag writes begin: from now on the claims stay, whatever happens (some tags may be in the registry)."""
        self.writing = True

    def abandon(self) -> None:
        """Remove this run's claims (it published nothing), so that the version can be released again;
        once tag writes have started, leave them (and say so): the registry may show this version."""
        self._stop_renewing()
        if not self.held:
            return
        if self.writing:
            self.reporter.say(
                f"warning: kept the claim of version {self.version} on git remote {self.remote.name}: this run "
                "had started writing its tags, so the registry may show this version (release it again with "
                "the same commit, or --force)"
            )
            return
        try:
            self.remote.swap({ref: (oid, None) for ref, oid in self.held.items()})
        except PipelineError:
            pass  # the claim expires on its own
        self.held = {}


def claim_done(remote: RefsRemote, repository: Repository | str, version: semver.Version) -> bool:
    """Whether a runner released `version` of `repository`: its claim on the remote is `done`."""
    ref = f"{CLAIMS}/{repository_key(str(repository))}/{version_tag(version)}"
    found = remote.read([ref]).get(ref)
    return found is not None and found.fields.get("state") == "done"


@contextmanager
def repositories_lease(
    remote: RefsRemote,
    repositories: Iterable[str],
    runner: Runner,
    reporter: Reporter,
    why: str,
    wait: float = LEASE_WAIT,
    ttl: float = LEASE_TTL,
) -> Iterator[Lease]:
    """Hold the publishing lease of `repositories` for the block (as a run's publishing does), for `why`
    (completing an interrupted publish): another runner's tag writes there wait, and so does this block."""
    fields = {"state": why, "runner": runner.describe(), "host": runner.host, "pid": str(runner.pid)}
    lease = Lease(remote, [f"{LEASES}/{repository_key(r)}" for r in sorted(set(repositories))], fields, ttl)

    def waiting(holder: RemoteRef) -> None:
        reporter.say(
            f"waiting for runner {holder.fields.get('runner', '?')} to finish publishing "
            f"({holder.name} on {remote.name}, until {holder.fields.get('expires-at', '?')})"
        )

    lease.acquire(wait, waiting)
    try:
        yield lease
    finally:
        try:
            lease.release()
        except PipelineError:
            pass  # it expires on its own
