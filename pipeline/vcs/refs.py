"""Refs on a git remote as the commit point several runners share: a push that creates a ref the remote
already has is refused, and `--force-with-lease=<ref>:<old>` moves a ref only from the value read (a
compare-and-swap the remote checks under its ref lock). On top of that, leases: a ref whose object says
who holds it and until when; a waiter polls, an expired lease is taken over by compare-and-swap.

>>> remote = RefsRemote.of(Path("."))  # doctest: +SKIP
>>> new = remote.make_object({"holder": "ci-7 pid 12"})  # doctest: +SKIP
>>> remote.swap({"refs/pipeline/claims/x/1.0.0": (None, new)})  # True: created; False: someone has it  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.common.urls import strip_credentials
from pipeline.errors import EnvironmentProblem, PipelineError
from pipeline.vcs.worktree import GitCall

# Claim and lease objects are commits of the empty tree: the message is the payload, nothing else is pushed.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "pipeline",
    "GIT_AUTHOR_EMAIL": "pipeline@localhost",
    "GIT_COMMITTER_NAME": "pipeline",
    "GIT_COMMITTER_EMAIL": "pipeline@localhost",
}
_QUIET = {"GIT_TERMINAL_PROMPT": "0"}  # a remote that wants a password fails instead of waiting for one
# git's messages in English, whatever the runner's locale: _REFUSED is matched against them (and GitPython,
# which ran these calls before, set the same).
_C_LOCALE = {"LANGUAGE": "C", "LC_ALL": "C"}
_REFUSED = ("[rejected]", "stale info", "atomic push failed", "already exists", "fetch first")


class RefsUnavailable(PipelineError):
    """The git remote could not be asked (unreachable, no rights): the run cannot coordinate with others."""


@dataclass(frozen=True)
class RemoteRef:
    """A ref as the remote holds it: its object and the `key: value` lines of that object's message."""

    name: str
    oid: str
    fields: Mapping[str, str]

    @property
    def expires(self) -> float | None:
        raw = self.fields.get("expires")
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    def expired(self, now: float) -> bool:
        expires = self.expires
        return expires is not None and expires <= now


# ref -> (the value it must have now, None: absent; the value to give it, None: delete)
Updates = Mapping[str, tuple[str | None, str | None]]


class RefsRemote:
    """Compare-and-swap on the refs of one remote of a local repository (its top, or a bare one's git
    directory: `directory`), by plain `git` calls (vcs.worktree's runner)."""

    def __init__(self, directory: Path, remote: str = "origin") -> None:
        self.directory = directory
        self.remote = remote
        self.name = strip_credentials(remote)  # what messages say: a URL's token stays out of them
        self._tree: str | None = None  # the empty tree, written once

    @classmethod
    def of(cls, path: Path, remote: str = "origin") -> RefsRemote | None:
        """`remote` (a remote's name, or a repository's URL or path) of the repository at `path`; None when
        there is no repository or no remote of that name (read locally: no network)."""
        try:
            asked = [GitCall(path, *args) for args in (("rev-parse", "--absolute-git-dir"), ("remote",))]
            top = GitCall(path, "rev-parse", "--show-toplevel")  # none in a bare repository
        except (EnvironmentProblem, OSError):  # no git binary; `path` gone
            return None
        (git_dir_code, git_dir, _), (remotes_code, remotes, _) = (call.done() for call in asked)
        top_code, top_dir, _ = top.done()
        if git_dir_code != 0 or remotes_code != 0:
            return None
        named = "/" not in remote and ":" not in remote
        if named and remote not in remotes.split():
            return None
        return cls(Path((top_dir if top_code == 0 else git_dir).strip()), remote)

    def make_object(self, fields: Mapping[str, str], title: str = "pipeline") -> str:
        """A new commit object (empty tree) whose message is `title` and the `key: value` lines; never the
        same object twice (a push of an object the remote has already is 'up to date', not refused)."""
        if self._tree is None:
            self._tree = self._git("mktree")
        tree = self._tree
        lines = {**fields, "nonce": uuid.uuid4().hex}
        message = title + "\n\n" + "".join(f"{k}: {v}\n" for k, v in lines.items())
        return self._git("commit-tree", tree, "-m", message, env=_IDENTITY)

    def read(self, names: list[str]) -> dict[str, RemoteRef]:
        """The named refs the remote has now (absent ones are left out), with their objects' messages."""
        if not names:
            return {}
        listed = self._git("ls-remote", self.remote, *names, env=_QUIET)
        found: dict[str, str] = {}
        for line in listed.splitlines():
            oid, _, name = line.partition("\t")
            if name in names:
                found[name] = oid
        missing = [oid for oid in set(found.values()) if not self._have(oid)]
        if missing:
            self._git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", self.remote, *missing, env=_QUIET)
        return {name: RemoteRef(name, oid, self._fields(oid)) for name, oid in found.items()}

    def swap(self, updates: Updates) -> bool:
        """Apply every update at once (`git push --atomic`), each only if its ref still has the value
        expected. True when they all landed; False when the remote refused (a ref was not as expected)."""
        if not updates:
            return True
        args = ["--atomic", "--porcelain"]
        refspecs = []
        for ref, (old, new) in updates.items():
            args.append(f"--force-with-lease={ref}:{old or ''}")
            refspecs.append(f"{new}:{ref}" if new is not None else f":{ref}")
        code, out, err = self._call("push", *args, self.remote, *refspecs, env=_QUIET)
        if code != 0:
            if any(marker in f"{out}\n{err}" for marker in _REFUSED):
                return False
            raise RefsUnavailable(
                f"git remote '{self.name}': push refused or failed: {_reason(err, code)}; a versioned run claims its "
                "version there so that runners do not overwrite each other's releases (give this runner push "
                "access to refs/pipeline/*, or set PIPELINE_CLAIMS=off to release without that guarantee)"
            )
        return True

    def _have(self, oid: str) -> bool:
        return self._call("cat-file", "-e", f"{oid}^{{commit}}")[0] == 0

    def _fields(self, oid: str) -> dict[str, str]:
        message = self._git("log", "-1", "--format=%B", oid)
        fields = {}
        for line in message.splitlines():
            key, sep, value = line.partition(": ")
            if sep and key and " " not in key:
                fields[key] = value.strip()
        return fields

    def _git(self, command: str, *args: str, env: Mapping[str, str] | None = None) -> str:
        """What `git COMMAND ARGS` printed (stripped); RefsUnavailable naming the remote when it failed."""
        code, out, err = self._call(command, *args, env=env)
        if code != 0:
            raise RefsUnavailable(f"git remote '{self.name}': git {command} failed: {_reason(err, code)}")
        return out.strip()

    def _call(self, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
        try:
            return GitCall(self.directory, *args, env={**_C_LOCALE, **(env or {})}).done()
        except EnvironmentProblem:
            raise EnvironmentProblem("git is not installed; several runners coordinate through git") from None


def _reason(stderr: str, code: int) -> str:
    """The line of git's error output that says why (its fatal: or error: line, else its last)."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    fallback = lines[-1] if lines else f"git exited with {code}"
    return strip_credentials(next((line for line in lines if line.startswith(("fatal:", "error:"))), fallback))


class LeaseTimeout(PipelineError):
    """A lease stayed held by a live holder for longer than a run waits."""


class LeaseLost(PipelineError):
    """A lease this run held is no longer its own (taken over, or not renewed in time): it must not write."""


Clock = Callable[[], float]


@dataclass
class Lease:
    """Leases on some refs, all held together: acquired by creating them (or taking over expired ones),
    renewed in the background while held, released by a compare-and-swap delete."""

    remote: RefsRemote
    refs: list[str]
    fields: Mapping[str, str]
    ttl: float
    oid: str = ""
    lost: bool = False
    renewed: float = 0.0  # when the remote last took this lease's expiry (acquired or renewed), by `clock`
    _clock: Clock = time.time
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _object(self, clock: Clock) -> str:
        expires = clock() + self.ttl
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        return self.remote.make_object({**self.fields, "expires": f"{expires:.0f}", "expires-at": when}, "lease")

    def acquire(
        self,
        wait: float,
        on_wait: Callable[[RemoteRef], None],
        poll: float = 0.5,
        clock: Clock = time.time,
        also: Updates | None = None,
    ) -> None:
        """Hold every ref of the lease (with `also`'s updates in the same atomic push). Waits while a live
        holder has one; takes over an expired one (compare-and-swap from what was read). `also` refused
        (one of its refs moved) raises PipelineError from `on_also_refused`."""
        expected: dict[str, str | None] = dict.fromkeys(self.refs)
        deadline = clock() + wait
        told: set[str] = set()
        while True:
            now_acquired = clock()
            new = self._object(clock)
            updates = {ref: (old, new) for ref, old in expected.items()}
            if self.remote.swap({**updates, **(also or {})}):
                self.oid = new
                self.renewed, self._clock = now_acquired, clock
                self._start_renewing(clock)
                return
            seen = self.remote.read(list(self.refs) + list(also or {}))
            for ref, (old, _) in (also or {}).items():
                if (seen[ref].oid if ref in seen else None) != old:
                    raise AlsoRefused(ref, seen.get(ref))
            now = clock()
            live = [s for ref, s in seen.items() if ref in self.refs and not s.expired(now)]
            for holder in live:
                if holder.oid not in told:
                    told.add(holder.oid)
                    on_wait(holder)
            if live:
                if now > deadline:
                    who = live[0].fields.get("runner") or live[0].fields.get("holder", "another runner")
                    raise LeaseTimeout(f"{live[0].name} is held by {who}; gave up waiting after {wait:.0f} s")
                time.sleep(poll)
                expected = dict.fromkeys(self.refs)  # try to create them again: released by then, perhaps
                continue
            # Absent, or expired: taken over from exactly what was read (another waiter may be quicker).
            expected = {ref: (seen[ref].oid if ref in seen else None) for ref in self.refs}

    def _start_renewing(self, clock: Clock) -> None:
        def renew() -> None:
            while not self._stop.wait(self.ttl / 3):
                with self._lock:
                    started = clock()
                    new = self._object(clock)
                    try:
                        ok = self.remote.swap({ref: (self.oid, new) for ref in self.refs})
                    except PipelineError:
                        continue  # the remote may answer next time; the lease has not expired yet
                    if not ok:
                        self.lost = True
                        return
                    self.oid, self.renewed = new, started

        self._thread = threading.Thread(target=renew, name="lease", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Raise LeaseLost unless this lease is still this run's: not lost on a renewal, renewed within two
        thirds of its TTL (renewals failing since leave too little time to write safely), and every ref on
        the remote still this lease's object. Called before each write a lease guards."""
        with self._lock:
            since = self._clock() - self.renewed
            if not self.lost and since > self.ttl * 2 / 3:
                raise LeaseLost(
                    f"{self.refs[0]} on git remote {self.remote.name} was last renewed {since:.0f} s ago (it expires "
                    f"after {self.ttl:.0f} s and another runner may take it over then)"
                )
            seen = {} if self.lost else self.remote.read(list(self.refs))
            moved = [ref for ref in self.refs if self.lost or ref not in seen or seen[ref].oid != self.oid]
            if moved:
                self.lost = True
                now = seen.get(moved[0])
                who = f" by {now.fields.get('runner') or now.fields.get('holder', 'another runner')}" if now else ""
                raise LeaseLost(f"{moved[0]} on git remote {self.remote.name} was taken over{who}")

    def release(self, also: Updates | None = None) -> bool:
        """Delete the lease's refs (if still ours), with `also`'s updates in the same atomic push."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            return self.remote.swap({**{ref: (self.oid, None) for ref in self.refs}, **(also or {})})


class AlsoRefused(PipelineError):
    """An update pushed together with a lease was refused: its ref was not as expected."""

    def __init__(self, ref: str, now: RemoteRef | None) -> None:
        super().__init__(f"{ref} moved")
        self.ref = ref
        self.now = now
