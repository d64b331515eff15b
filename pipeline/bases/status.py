"""`pipeline bases`: each external base of a plan, the digest the registry has now against the one in
`pipelines.lock`, and the lock brought up to date (what moved, and what that rebuilds).

    found = base_status(plan, registry, BaseLock.load(lock_path(config_file)))
    update = lock_update(found, old_lock, base_uses(whole_plan), whole_plan, path)  # update.lock.save(path)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.bases.lock import BaseLock, LockEntry, LockKey
from pipeline.bases.resolve import BaseNotResolved, BaseResolver, ResolvedBase, own_repositories
from pipeline.bases.usage import BaseUse, Rebuild, base_uses, rebuilt_by
from pipeline.plan import Plan
from pipeline.registry.client import RegistryClient
from pipeline.registry.platforms import platform_text
from pipeline.registry.reference import parse_reference

_LOOKUPS = 8  # registries at once: one HEAD per reference, one manifest per index


@dataclass(frozen=True)
class BaseStatus:
    """One external base for one platform: what the registry has now, what the lock holds, who uses it."""

    reference: str
    platform: str
    os_version: str | None
    current: str  # the image a build would stand on now (an index's child for the platform; `whole`: the index)
    index: str | None  # the index the reference points at now, when it is one
    locked: str | None  # the digest pipelines.lock holds (None: not locked, or no lock); `whole`: its index
    images: tuple[str, ...]
    whole: bool = False  # a stage of these images names its own platform: they stand on the whole index

    @property
    def key(self) -> LockKey:
        return (self.reference, self.platform, self.os_version)

    @property
    def moved(self) -> bool:
        """Locked, and the registry has another image now."""
        return self.locked is not None and self.locked != self.current

    def lock_entry(self) -> LockEntry:
        """The entry for a build standing on it now (`whole`: the index in both fields when it is one, as
        the platform's child may not exist; the run reads the index of an entry for such a stage)."""
        return LockEntry(self.reference, self.platform, self.os_version, self.current, self.index)

    def data(self) -> dict[str, Any]:
        """The `--json` form (docs/base-images.md)."""
        return _data(self)


def _data(entry: BaseStatus | Move) -> dict[str, Any]:
    """A base's `--json` form: its fields, `whole` named `stage_platform`."""
    data = asdict(entry)
    data["images"] = list(entry.images)
    data["stage_platform"] = data.pop("whole")
    return data


def base_status(
    plan: Plan, registry: RegistryClient, lock: BaseLock | None, own: Collection[str] | None = None
) -> list[BaseStatus]:
    """Every external base of the plan, resolved in the registry now (lookups in parallel, each reference
    once) and beside its lock entry. Raises BaseNotResolved naming the base and its images."""
    uses = base_uses(plan, own)
    resolver = BaseResolver(registry, own=own_repositories(plan) if own is None else own)  # no lock: now

    def current(use: BaseUse) -> ResolvedBase:
        try:
            return resolver.resolve(parse_reference(use.reference), use.platform, use.os_version, whole=use.whole)
        except BaseNotResolved as exc:
            raise BaseNotResolved(f"{', '.join(use.images)}: {exc}") from None

    with ThreadPoolExecutor(max_workers=min(_LOOKUPS, max(len(uses), 1))) as pool:
        resolved = list(pool.map(current, uses))
    found = []
    for use, now in zip(uses, resolved, strict=True):
        entry = lock.get(*use.key) if lock is not None else None
        locked = None if entry is None else (entry.index or entry.digest) if use.whole else entry.digest
        found.append(
            BaseStatus(
                use.reference,
                use.platform,
                use.os_version,
                now.digest,
                now.index,
                locked,
                use.images,
                use.whole,
            )
        )
    return found


@dataclass(frozen=True)
class Move:
    """A lock entry that changes: a moved base (old → new), a new one (old None) or one no longer used
    (new None)."""

    reference: str
    platform: str
    os_version: str | None
    old: str | None
    new: str | None
    images: tuple[str, ...]  # the images on it, in every pipeline (none for a dropped entry)
    whole: bool = False  # old and new are the index: the images' stages name their own platform

    def line(self) -> str:
        where = f"{self.reference} {platform_text(self.platform, self.os_version)}"
        where += " (whole index, FROM --platform)" if self.whole else ""
        return f"{where} {self.old or '(not locked)'} → {self.new or '(dropped: no longer used)'}"

    def data(self) -> dict[str, Any]:
        return _data(self)


@dataclass(frozen=True)
class LockUpdate:
    lock: BaseLock  # the lock as it should be now
    moves: tuple[Move, ...]  # every entry that changes, in the lock's order
    rebuild: Rebuild  # what the moved bases rebuild (a new entry locks what builds already stood on)
    changed: bool  # False: the lock holds these entries already; nothing to write

    @property
    def moved(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.old is not None and m.new is not None)


def lock_update(
    found: Iterable[BaseStatus], old: BaseLock | None, uses: Iterable[BaseUse], plan: Plan, path: Path
) -> LockUpdate:
    """The lock with each base of `found` at its current digest; entries of bases other pipelines use
    (`uses`: every pipeline's, `plan` the whole config's) kept as they are; the rest (no longer used)
    dropped. A moved base rebuilds every image on it, in whichever pipeline (the lock is shared)."""
    statuses = list(found)
    entries: dict[LockKey, LockEntry] = {}
    for status in sorted(statuses, key=lambda s: s.whole):  # an image's child and the index, where it has one
        entries.setdefault(status.key, status.lock_entry())
    users: dict[tuple[LockKey, bool], tuple[str, ...]] = {}
    every: list[BaseUse | BaseStatus] = [*uses, *statuses]  # `found` too: a caller's uses may leave its own out
    for use in every:
        images = users.get((use.key, use.whole), ())
        users[(use.key, use.whole)] = images + tuple(i for i in use.images if i not in images)
    previous = dict(old.entries) if old is not None else {}
    for key, entry in previous.items():
        if key not in entries and any(k == key for k, _ in users):
            entries[key] = entry
    new = BaseLock.of(entries.values(), path)
    moves = []
    for key in sorted(set(previous) | set(entries), key=lambda k: (k[0], k[1], k[2] or "")):
        before, after = previous.get(key), entries.get(key)
        on_child, on_index = users.get((key, False), ()), users.get((key, True), ())
        if before is None or after is None:
            old_digest, new_digest = (before.digest if before else None), (after.digest if after else None)
            moves.append(Move(*key, old_digest, new_digest, on_child + on_index if after else ()))
            continue
        if before.digest != after.digest and (on_child or not on_index):
            moves.append(Move(*key, before.digest, after.digest, on_child))
        old_index, new_index = before.index or before.digest, after.index or after.digest
        if on_index and old_index != new_index:  # any child moving moves what these stand on
            moves.append(Move(*key, old_index, new_index, on_index, whole=True))
    moved = [image for m in moves if m.old is not None and m.new is not None for image in m.images]
    changed = old is None or dict(old.entries) != dict(new.entries)
    return LockUpdate(new, tuple(moves), rebuilt_by(plan, moved), changed)
