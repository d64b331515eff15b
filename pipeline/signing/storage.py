"""Where signatures live in a registry.

Legacy (cosign's original scheme, works everywhere): an OCI manifest tagged `sha256-<hex>.sig` whose
layers are simple-signing payloads, each signature in the layer annotation
`dev.cosignproject.cosign/signature`. Referrers (OCI 1.1): a manifest whose `subject` is the image and
whose single layer is a sigstore bundle; found through the referrers API or, on registries without
it, through the fallback index tagged `sha256-<hex>`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import RegistryError
from pipeline.registry.client import OCI_INDEX, OCI_MANIFEST, Manifest, RegistryClient
from pipeline.registry.reference import Repository
from pipeline.signing.payloads import SIMPLE_SIGNING_MEDIA_TYPE

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
PREDICATE_TYPE_ANNOTATION = "predicateType"  # on a `.att` layer, as cosign writes it
BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"  # on a referrer holding an attestation
EMPTY_CONFIG = {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "size": 2,
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
}
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


@dataclass(frozen=True)
class LegacySignature:
    payload: bytes
    signature: bytes
    annotations: dict[str, str] = field(default_factory=dict)


def signature_tag(digest: str) -> str:
    return digest.replace(":", "-") + ".sig"


def attestation_tag(digest: str) -> str:
    """cosign's legacy attestation tag: DSSE envelopes as layers, like `.sig` holds signatures."""
    return digest.replace(":", "-") + ".att"


def sbom_tag(digest: str) -> str:
    """cosign's (deprecated) `cosign attach sbom` tag: listed and carried like `.sig` and `.att`."""
    return digest.replace(":", "-") + ".sbom"


def fallback_referrers_tag(digest: str) -> str:
    return digest.replace(":", "-")


def _json_manifest(document: dict[str, Any], media_type: str) -> Manifest:
    body = json.dumps(document, separators=(",", ":")).encode()
    return Manifest(media_type, "sha256:" + hashlib.sha256(body).hexdigest(), body)


def descriptors_in(items: Any) -> list[tuple[dict[str, Any], str]]:
    """(descriptor, its digest) of each well-formed descriptor in `items` (a manifest's `layers`, an
    index's `manifests`). What anyone can push next to an image is read defensively: an entry that is
    not an object, or has no `algorithm:hex` digest, is skipped, never a traceback."""
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        digest = item.get("digest")
        if isinstance(digest, str) and _DIGEST.match(digest):
            found.append((item, digest))
    return found


def _annotations(item: dict[str, Any]) -> dict[str, str]:
    annotations = item.get("annotations")
    return {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {}


# --- legacy ------------------------------------------------------------------------


def read_legacy(
    registry: RegistryClient, repository: Repository, digest: str
) -> tuple[list[LegacySignature], Manifest | None]:
    tag = signature_tag(digest)
    if registry.resolve_digest(repository.with_tag(tag)) is None:
        return [], None
    manifest = registry.get_manifest(repository.with_tag(tag))
    signatures = []
    payloads: dict[str, bytes] = {}
    for layer, blob in descriptors_in(manifest.json().get("layers")):
        annotations = _annotations(layer)
        if layer.get("mediaType") != SIMPLE_SIGNING_MEDIA_TYPE or SIGNATURE_ANNOTATION not in annotations:
            continue
        if blob not in payloads:
            payloads[blob] = registry.get_blob(repository, blob)
        try:
            signature = base64.b64decode(annotations[SIGNATURE_ANNOTATION], validate=True)
        except ValueError:
            continue
        signatures.append(LegacySignature(payloads[blob], signature, annotations))
    return signatures, manifest


def write_legacy(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    payload: bytes,
    signature: bytes,
    existing: Manifest | None,
    extra_annotations: dict[str, str] | None = None,
) -> None:
    """Add one signature layer to the `.sig` manifest (creating it if needed), as cosign does."""
    annotations = {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode(), **(extra_annotations or {})}
    _append_layer(
        registry, repository, signature_tag(digest), existing, payload, SIMPLE_SIGNING_MEDIA_TYPE, annotations
    )


def _append_layer(
    registry: RegistryClient,
    repository: Repository,
    tag: str,
    existing: Manifest | None,
    blob: bytes,
    media_type: str,
    annotations: dict[str, str],
    drop: int | None = None,
) -> None:
    """Write `tag`'s manifest with its layers plus one (less the layer at `drop`)."""
    layers: list[dict[str, Any]] = list(existing.json().get("layers") or []) if existing else []
    if drop is not None:
        del layers[drop]
    # A signed layer and the config listing it are new but for a rare re-sign: no HEAD before each.
    blob_digest = registry.push_blob(repository, blob, new=True)
    layers.append({"mediaType": media_type, "size": len(blob), "digest": blob_digest, "annotations": annotations})
    write_legacy_layers(registry, repository, tag, layers, existing)


def write_legacy_layers(
    registry: RegistryClient,
    repository: Repository,
    tag: str,
    layers: list[dict[str, Any]],
    existing: Manifest | None = None,
) -> None:
    """Write `tag`'s manifest (`.sig`, `.att`, `.sbom`) with `layers`, whose blobs are there already, in
    cosign's shape: an OCI image whose config lists the layers as diff ids (one history entry each).
    Other fields of the `existing` manifest are kept."""
    config = {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layers],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        "config": {},
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = registry.push_blob(repository, config_bytes, new=True)
    manifest: dict[str, Any] = existing.json() if existing else {}
    manifest.update(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config_bytes), "digest": config_digest},
            "layers": layers,
        }
    )
    registry.put_manifest(repository, tag, _json_manifest(manifest, OCI_MANIFEST))


@dataclass(frozen=True)
class StoredEnvelope:
    """One DSSE envelope of a `.att` manifest. `predicate_type` is the layer's annotation: a hint for
    listing, never trusted (verification reads the signed statement)."""

    envelope: dict[str, Any]
    predicate_type: str
    position: int  # the layer's index in the manifest


def read_legacy_attestations(
    registry: RegistryClient, repository: Repository, digest: str
) -> tuple[list[StoredEnvelope], Manifest | None]:
    tag = attestation_tag(digest)
    current = registry.resolve_digest(repository.with_tag(tag))
    if current is None:
        return [], None
    # By digest: the client has the manifest it wrote for the attestation before (provenance, then SBOM).
    manifest = registry.get_manifest(repository.with_digest(current))
    found = []
    layers = manifest.json().get("layers")
    for position, layer in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(layer, dict) or layer.get("mediaType") != DSSE_MEDIA_TYPE:
            continue
        if not descriptors_in([layer]):
            continue
        try:
            envelope = json.loads(registry.get_blob(repository, str(layer["digest"])))
        except ValueError:
            continue
        if isinstance(envelope, dict):
            predicate_type = _annotations(layer).get(PREDICATE_TYPE_ANNOTATION, "")
            found.append(StoredEnvelope(envelope, predicate_type, position))
    return found, manifest


def write_legacy_attestation(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    envelope: dict[str, Any],
    predicate_type: str,
    existing: Manifest | None,
    replace: int | None = None,
) -> None:
    """Add a DSSE envelope layer to the `.att` manifest as `cosign attest` does (replacing the layer at
    `replace`, as `cosign attest --replace` does for the same predicate type)."""
    body = json.dumps(envelope, separators=(",", ":")).encode()
    annotations = {SIGNATURE_ANNOTATION: "", PREDICATE_TYPE_ANNOTATION: predicate_type}
    _append_layer(registry, repository, attestation_tag(digest), existing, body, DSSE_MEDIA_TYPE, annotations, replace)


# --- referrers -----------------------------------------------------------------------


def read_bundles(registry: RegistryClient, repository: Repository, digest: str) -> list[dict[str, Any]]:
    """Every sigstore bundle attached to `digest` as a referrer."""
    descriptors = registry.referrers(repository, digest)
    if descriptors is None:
        tag = fallback_referrers_tag(digest)
        if registry.resolve_digest(repository.with_tag(tag)) is None:
            return []
        descriptors = registry.get_manifest(repository.with_tag(tag)).json().get("manifests") or []
    bundles = []
    seen: set[str] = set()
    for descriptor, referrer in descriptors_in(descriptors):
        if descriptor.get("artifactType") != BUNDLE_MEDIA_TYPE or referrer in seen:
            continue  # one referrer listed twice (a fallback index written by two clients) is one
        seen.add(referrer)
        manifest = registry.manifest_by_digest(repository, referrer)
        for layer, blob in descriptors_in(manifest.json().get("layers")):
            if layer.get("mediaType") != BUNDLE_MEDIA_TYPE:
                continue
            try:
                bundle = json.loads(registry.get_blob(repository, blob))
            except ValueError:
                continue
            if isinstance(bundle, dict):
                bundles.append(bundle)
    return bundles


def write_bundle(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    bundle: dict[str, Any],
    predicate_type: str | None = None,
) -> None:
    """Attach a bundle as a referrer of `digest`, updating the fallback index where the registry has
    no referrers API. An attestation's bundle carries its predicate type as an annotation, as cosign's
    bundle format does, so a listing can tell attestations from signatures without opening them."""
    subject = registry.manifest_by_digest(repository, digest)
    bundle_bytes = json.dumps(bundle, separators=(",", ":")).encode()
    registry.push_blob(repository, b"{}")
    bundle_digest = registry.push_blob(repository, bundle_bytes, new=True)  # a fresh signature: not there yet
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": EMPTY_CONFIG,
        "layers": [{"mediaType": BUNDLE_MEDIA_TYPE, "size": len(bundle_bytes), "digest": bundle_digest}],
        "subject": {"mediaType": subject.media_type or OCI_MANIFEST, "size": len(subject.body), "digest": digest},
        "annotations": {"dev.sigstore.bundle.content": "dsse-envelope"},
    }
    if predicate_type:
        document["annotations"][BUNDLE_PREDICATE_ANNOTATION] = predicate_type
    manifest = _json_manifest(document, OCI_MANIFEST)
    registry.put_manifest(repository, manifest.digest, manifest)
    if registry.referrers(repository, digest) is not None:
        return  # the registry indexes referrers itself
    descriptor = {
        "mediaType": OCI_MANIFEST,
        "size": len(manifest.body),
        "digest": manifest.digest,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "annotations": document["annotations"],
    }
    merge_fallback_index(registry, repository, digest, [descriptor])


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
    if not isinstance(listed, list):
        raise RegistryError(f"{repository}:{tag} is not a referrers index; refusing to overwrite it")
    present = {str(entry.get("digest")) for entry in listed if isinstance(entry, dict)}
    added = [dict(d) for d in descriptors if d.get("digest") and str(d["digest"]) not in present]
    if not added:
        return set()
    listed.extend(added)
    registry.put_manifest(repository, tag, _json_manifest(index, OCI_INDEX))
    return {str(d["digest"]) for d in added}
