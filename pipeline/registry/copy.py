"""Copying an image (manifest, index children, config and layers) to another repository or registry."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

from pipeline.common.reporting import SILENT, Reporter
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import Repository

SPOOL_IN_MEMORY = 16 << 20  # blobs up to this size never touch the disk


@dataclass
class CopyStats:
    blobs_present: int = 0
    blobs_mounted: int = 0
    blobs_copied: int = 0
    bytes_copied: int = 0
    manifests: list[str] = field(default_factory=list)


def copy_image(
    registry: RegistryClient,
    source: Repository,
    digest: str,
    destination: Repository,
    notify: Reporter = SILENT,
) -> CopyStats:
    """Copy `source@digest` to `destination@digest` byte for byte (so the digest is unchanged)."""
    stats = CopyStats()
    _copy_manifest(registry, source, digest, destination, stats, notify)
    return stats


def _copy_manifest(
    registry: RegistryClient,
    source: Repository,
    digest: str,
    destination: Repository,
    stats: CopyStats,
    notify: Reporter,
) -> None:
    manifest = registry.get_manifest(source.with_digest(digest))
    data = manifest.json()
    if manifest.is_index:
        for child in data.get("manifests") or []:
            _copy_manifest(registry, source, str(child["digest"]), destination, stats, notify)
    else:
        blobs = [data["config"], *(data.get("layers") or [])]
        for blob in blobs:
            _copy_blob(registry, source, str(blob["digest"]), int(blob.get("size", 0)), destination, stats, notify)
    registry.put_manifest(destination, digest, manifest)
    stats.manifests.append(digest)


def _copy_blob(
    registry: RegistryClient,
    source: Repository,
    digest: str,
    size: int,
    destination: Repository,
    stats: CopyStats,
    notify: Reporter,
) -> None:
    if registry.blob_exists(destination, digest):
        stats.blobs_present += 1
        return
    if source.registry == destination.registry and registry.mount_blob(destination, digest, source):
        stats.blobs_mounted += 1
        notify.say(f"mounted {digest[:19]} from {source.path}")
        return
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        registry.download_blob(source, digest, spool)
        registry.upload_blob(destination, digest, spool)
    stats.blobs_copied += 1
    stats.bytes_copied += size
    notify.say(f"copied {digest[:19]} ({size} bytes)")
