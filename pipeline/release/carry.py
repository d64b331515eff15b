"""Carrying a digest's supply chain (signatures, attestations, SBOMs, other referrers) along with the
image to another repository, so that what was checked at the source is there at the destination.

Legacy manifests (`sha256-<hex>.sig`, `.att`, `.sbom`) are copied byte for byte and tagged under the
same names (they depend only on the digest, which a copy keeps). Where the destination already holds
such a tag with other content, its layers are kept and the source's added (as signing again would).
Referrers are copied byte for byte (their digest, and so their `subject`, is unchanged); where the
destination has no referrers API its fallback index `sha256-<hex>` is merged, never replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import RegistryError
from pipeline.registry.client import OCI_INDEX, OCI_MANIFEST, Manifest, RegistryClient
from pipeline.registry.copy import copy_image
from pipeline.registry.index import index_platforms
from pipeline.registry.reference import Repository
from pipeline.signing.attached import KINDS, Attachment, Kind, attached
from pipeline.signing.storage import OCI_CONFIG, fallback_referrers_tag


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
    notify: Callable[[str], None],
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
    notify: Callable[[str], None],
) -> list[bool]:
    """Whether each of the source manifest's layers was written at the destination now (False: it was
    there already)."""
    there = registry.resolve_digest(destination.with_tag(tag))
    listed = registry.manifest_by_digest(source, manifest).json().get("layers") or []
    layers = [layer for layer in listed if isinstance(layer, dict)]  # as `attached` lists them
    if there == manifest:
        notify(f"{destination}:{tag} already there")
        return [False] * len(layers)
    copy_image(registry, source, manifest, destination)
    if there is None:
        registry.tag(destination, manifest, tag)
        notify(f"{destination}:{tag}")
        return [True] * len(layers)
    ours = registry.get_manifest(destination.with_digest(there))
    present = {json.dumps(layer, sort_keys=True) for layer in ours.json().get("layers") or []}
    written = [json.dumps(layer, sort_keys=True) not in present for layer in layers]
    merged = _merge_layers(ours, registry.manifest_by_digest(destination, manifest))
    if merged is None:
        notify(f"{destination}:{tag} already holds every layer")
        return written
    config_digest = registry.push_blob(destination, merged[1])
    document = merged[0]
    document["config"] = {"mediaType": OCI_CONFIG, "size": len(merged[1]), "digest": config_digest}
    body = json.dumps(document, separators=(",", ":")).encode()
    registry.put_manifest(destination, tag, Manifest(OCI_MANIFEST, "sha256:" + hashlib.sha256(body).hexdigest(), body))
    notify(f"{destination}:{tag} (merged with the signatures already there)")
    return written


def _merge_layers(ours: Manifest, theirs: Manifest) -> tuple[dict[str, Any], bytes] | None:
    """The destination's manifest with the source's layers it lacks appended, and a config for it in
    cosign's shape (one history entry and diff_id per layer; the layers' blobs are already there); None
    when it lacks none."""
    document = ours.json()
    layers: list[dict[str, Any]] = list(document.get("layers") or [])
    seen = {json.dumps(layer, sort_keys=True) for layer in layers}
    missing = [layer for layer in theirs.json().get("layers") or [] if json.dumps(layer, sort_keys=True) not in seen]
    if not missing:
        return None
    layers += missing
    config = {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layers],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        "config": {},
    }
    document.update({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": layers})
    return document, json.dumps(config, separators=(",", ":")).encode()


def _carry_referrers(
    registry: RegistryClient,
    source: Repository,
    destination: Repository,
    subject: str,
    referrers: list[Attachment],
    carried: Carried,
    notify: Callable[[str], None],
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
            notify(f"{destination}@{referrer.manifest} ({referrer.kind}, referrer of {subject[:19]})")
        _carry_referrers(registry, source, destination, referrer.manifest, list(referrer.referrers), carried, notify)
    listed: set[str] = set()
    if registry.referrers(destination, subject) is None:
        listed = merge_fallback_index(registry, destination, subject, [r.descriptor or {} for r in referrers])
    for referrer in referrers:
        written = referrer.manifest in copied or referrer.manifest in listed
        carried.manifests += referrer.manifest in copied
        carried.add(referrer.kind, written)


def merge_fallback_index(
    registry: RegistryClient, repository: Repository, subject: str, descriptors: list[Mapping[str, Any]]
) -> set[str]:
    """Add `descriptors` to the fallback referrers index of `subject` (creating it), keeping every entry
    already there; the digests it added."""
    tag = fallback_referrers_tag(subject)
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if registry.resolve_digest(repository.with_tag(tag)) is not None:
        index = registry.get_manifest(repository.with_tag(tag)).json()
        if index.get("mediaType") != OCI_INDEX:
            raise RegistryError(f"{repository}:{tag} is not a referrers index; refusing to overwrite it")
    listed = index.setdefault("manifests", [])
    present = {str(entry.get("digest")) for entry in listed if isinstance(entry, dict)}
    added = [dict(d) for d in descriptors if d.get("digest") and str(d["digest"]) not in present]
    if not added:
        return set()
    listed.extend(added)
    body = json.dumps(index, separators=(",", ":")).encode()
    registry.put_manifest(repository, tag, Manifest(OCI_INDEX, "sha256:" + hashlib.sha256(body).hexdigest(), body))
    return {str(d["digest"]) for d in added}
