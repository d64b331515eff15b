"""Carrying a digest's supply chain (signatures, attestations, SBOMs, other referrers) along with the
image to another repository, so that what was checked at the source is there at the destination.

Legacy manifests (`sha256-<hex>.sig`, `.att`, `.sbom`) are copied byte for byte and tagged under the
same names (they depend only on the digest, which a copy keeps). Where the destination already holds
such a tag with other content, its layers are kept and the source's added (as signing again would).
Referrers are copied byte for byte (their digest, and so their `subject`, is unchanged); where the
destination has no referrers API its fallback index `sha256-<hex>` is merged, never replaced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.common.reporting import Reporter
from pipeline.registry.client import RegistryClient
from pipeline.registry.copy import copy_image
from pipeline.registry.index import index_platforms
from pipeline.registry.reference import Repository
from pipeline.signing.attached import KINDS, Attachment, Kind, attached
from pipeline.signing.storage import descriptors_in, merge_fallback_index, write_legacy_layers


@dataclass
class Carried:
    """Items per kind written at the destination by this carry (`counts`) and those it already held
    (`already`: a second promotion writes nothing), and the manifests written."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    already: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    manifests: int = 0

    def add(self, kind: Kind, written: bool) -> None:
        (self.counts if written else self.already)[kind] += 1


def carry_supply_chain(
    registry: RegistryClient,
    source: Repository,
    digest: str,
    destination: Repository,
    notify: Reporter,
    kinds: Iterable[Kind] = KINDS,
) -> Carried:
    """Carry what is attached to `digest` and, for an index, to every child (children first, as signing
    goes). `kinds` limits what is carried (promote --resign leaves signatures behind)."""
    wanted = set(kinds)
    carried = Carried()
    subjects = [child for child, _platform in index_platforms(registry, source, digest)] + [digest]
    for subject in subjects:
        found = attached(registry, source, subject)
        for tag, manifest in found.legacy_tags.items():
            items = [i for i in found.items if i.tag == tag]  # one per layer, in the manifest's order
            if not any(i.kind in wanted for i in items):
                continue
            written = _carry_legacy(registry, source, destination, tag, manifest, notify)
            carried.manifests += any(written)
            for item, new in zip(items, written, strict=True):
                if item.kind in wanted:
                    carried.add(item.kind, new)
        referrers = [r for r in found.referrers if r.kind in wanted]
        _carry_referrers(registry, source, destination, subject, referrers, carried, notify)
    return carried


def _carry_legacy(
    registry: RegistryClient,
    source: Repository,
    destination: Repository,
    tag: str,
    manifest: str,
    notify: Reporter,
) -> list[bool]:
    """Whether each of the source manifest's layers was written at the destination now (False: it was
    there already)."""
    there = registry.resolve_digest(destination.with_tag(tag))
    layers = [layer for layer, _ in descriptors_in(registry.manifest_by_digest(source, manifest).json().get("layers"))]
    if there == manifest:
        notify.say(f"{destination}:{tag} already there")
        return [False] * len(layers)
    copy_image(registry, source, manifest, destination)
    if there is None:
        registry.tag(destination, manifest, tag)
        notify.say(f"{destination}:{tag}")
        return [True] * len(layers)
    ours = registry.get_manifest(destination.with_digest(there))
    kept: list[dict[str, Any]] = [layer for layer, _ in descriptors_in(ours.json().get("layers"))]
    present = {json.dumps(layer, sort_keys=True) for layer in kept}
    written = [json.dumps(layer, sort_keys=True) not in present for layer in layers]
    if not any(written):
        notify.say(f"{destination}:{tag} already holds every layer")
        return written
    missing = [layer for layer, new in zip(layers, written, strict=True) if new]
    write_legacy_layers(registry, destination, tag, kept + missing, ours)
    notify.say(f"{destination}:{tag} (merged with the signatures already there)")
    return written


def _carry_referrers(
    registry: RegistryClient,
    source: Repository,
    destination: Repository,
    subject: str,
    referrers: list[Attachment],
    carried: Carried,
    notify: Reporter,
) -> None:
    """Copy each referrer (then its own referrers) and list them in the destination's fallback index
    where it has no referrers API."""
    if not referrers:
        return
    copied: set[str] = set()
    for referrer in referrers:
        # Same digest, same bytes: a referrer the destination holds is not copied again.
        if registry.resolve_digest(destination.with_digest(referrer.manifest)) is None:
            copy_image(registry, source, referrer.manifest, destination)
            copied.add(referrer.manifest)
            notify.say(f"{destination}@{referrer.manifest} ({referrer.kind}, referrer of {subject[:19]})")
        _carry_referrers(registry, source, destination, referrer.manifest, list(referrer.referrers), carried, notify)
    listed: set[str] = set()
    if registry.referrers(destination, subject) is None:
        listed = merge_fallback_index(registry, destination, subject, [r.descriptor or {} for r in referrers])
    for referrer in referrers:
        written = referrer.manifest in copied or referrer.manifest in listed
        carried.manifests += referrer.manifest in copied
        carried.add(referrer.kind, written)
