"""What the supply chain has attached to one digest: signatures, attestations, SBOMs and other
referrers, in cosign's legacy tags (`sha256-<hex>.sig`, `.att`, `.sbom`) and as OCI 1.1 referrers.

    found = attached(registry, repository, digest)
    found.counts()        # {"signature": 2, "attestation": 1, "sbom": 1, "other": 0}
    found.legacy_tags     # {"sha256-<hex>.sig": "sha256:<manifest>", ...}

Nothing here verifies anything: a signer is read from a key hint or a certificate as stored
("unverified"); `verify` judges. A referrer's own referrers are listed one level deep (a signature on
an SBOM, say); deeper chains are not followed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import Repository
from pipeline.signing.payloads import SIGN_PREDICATE, SIMPLE_SIGNING_MEDIA_TYPE
from pipeline.signing.storage import (
    BUNDLE_MEDIA_TYPE,
    BUNDLE_PREDICATE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    DSSE_MEDIA_TYPE,
    PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    attestation_tag,
    descriptors_in,
    fallback_referrers_tag,
    sbom_tag,
    signature_tag,
)

Kind = Literal["signature", "attestation", "sbom", "other"]
Form = Literal["legacy", "referrers"]
KINDS: tuple[Kind, ...] = ("signature", "attestation", "sbom", "other")
REFERRER_DEPTH = 1  # a referrer's referrers are listed; theirs are not

# Fulcio's certificate extensions naming the OIDC issuer: .8 (a DER UTF8String) replaced .1 (raw bytes).
FULCIO_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
FULCIO_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
SBOM_PREDICATES = ("https://cyclonedx.org/bom", "https://spdx.dev/Document")
SBOM_ARTIFACT_TYPES = ("application/vnd.cyclonedx", "application/spdx")
COSIGN_SIGNATURE_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"


@dataclass(frozen=True)
class Signer:
    """Who claims to have signed, as stored: never checked here."""

    key_hint: str | None = None  # a bundle's verificationMaterial.publicKey.hint
    subject: str | None = None  # a certificate's SAN (email or URI)
    issuer: str | None = None  # its Fulcio OIDC issuer extension

    @property
    def text(self) -> str:
        if self.subject or self.issuer:
            return f"{self.subject or '?'} ({self.issuer or 'issuer unknown'})"
        return f"key {self.key_hint}" if self.key_hint else "key (no hint stored)"

    def data(self) -> dict[str, Any]:
        if self.subject or self.issuer:
            return {"kind": "certificate", "subject": self.subject, "issuer": self.issuer, "verified": False}
        return {"kind": "key", "hint": self.key_hint, "verified": False}


@dataclass(frozen=True)
class Attachment:
    """One signature, attestation, SBOM or other artifact stored for a digest."""

    kind: Kind
    form: Form
    manifest: str  # the manifest holding it: the legacy tag's manifest, or the referrer itself
    media_type: str  # a legacy layer's media type, or a referrer's artifactType
    predicate_type: str | None = None
    signer: Signer | None = None
    tag: str | None = None  # legacy: the tag the manifest is found by
    layer: str | None = None  # legacy: the layer (one signature or one DSSE envelope) within it
    descriptor: Mapping[str, Any] | None = None  # referrers: the descriptor as the subject's listing has it
    referrers: tuple[Attachment, ...] = ()  # referrers of this referrer (one level)


@dataclass(frozen=True)
class Attached:
    repository: Repository
    digest: str
    items: tuple[Attachment, ...]
    referrers_api: bool  # False: referrers were read from the fallback index tagged `sha256-<hex>`
    legacy_tags: dict[str, str] = field(default_factory=dict)  # tag -> manifest digest

    @property
    def referrers(self) -> tuple[Attachment, ...]:
        return tuple(item for item in self.items if item.form == "referrers")

    def of_kind(self, kind: Kind) -> tuple[Attachment, ...]:
        return tuple(item for item in self.items if item.kind == kind)

    def counts(self) -> dict[str, int]:
        """Items per kind, a referrer's own referrers included."""
        counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        for item in _flatten(self.items):
            counts[item.kind] += 1
        return counts


def _flatten(items: Iterable[Attachment]) -> Iterable[Attachment]:
    for item in items:
        yield item
        yield from _flatten(item.referrers)


def attached(registry: RegistryClient, repository: Repository, digest: str) -> Attached:
    """Everything stored for `repository@digest`: legacy tags' layers first, then referrers."""
    items: list[Attachment] = []
    tags: dict[str, str] = {}
    for tag in (signature_tag(digest), attestation_tag(digest), sbom_tag(digest)):
        manifest_digest = registry.resolve_digest(repository.with_tag(tag))
        if manifest_digest is None:
            continue
        tags[tag] = manifest_digest
        manifest = registry.manifest_by_digest(repository, manifest_digest).json()
        for layer, _ in descriptors_in(manifest.get("layers")):
            items.append(_legacy_item(registry, repository, tag, manifest_digest, layer))
    descriptors, api = referrer_descriptors(registry, repository, digest)
    items += [_referrer(registry, repository, d, REFERRER_DEPTH) for d in descriptors]
    return Attached(repository, digest, tuple(items), api, tags)


def referrer_descriptors(
    registry: RegistryClient, repository: Repository, digest: str
) -> tuple[list[dict[str, Any]], bool]:
    """The referrers of `digest` from the API, else from the fallback index; and whether the API answered."""
    descriptors = registry.referrers(repository, digest)
    if descriptors is not None:
        return _each_once(descriptors), True
    tag = fallback_referrers_tag(digest)
    if registry.resolve_digest(repository.with_tag(tag)) is None:
        return [], False
    return _each_once(registry.get_manifest(repository.with_tag(tag)).json().get("manifests")), False


def _each_once(listed: Any) -> list[dict[str, Any]]:
    """Each referrer once, however often it is listed (as `verify` counts it)."""
    first: dict[str, dict[str, Any]] = {}
    for descriptor, referrer in descriptors_in(listed):
        first.setdefault(referrer, descriptor)
    return list(first.values())


def _annotations(descriptor: Mapping[str, Any]) -> dict[str, str]:
    annotations = descriptor.get("annotations")
    return {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {}


def kind_of(predicate_type: str | None, media_type: str) -> Kind:
    if predicate_type == SIGN_PREDICATE or media_type in (SIMPLE_SIGNING_MEDIA_TYPE, COSIGN_SIGNATURE_ARTIFACT):
        return "signature"
    if (predicate_type or "").startswith(SBOM_PREDICATES) or media_type.startswith(SBOM_ARTIFACT_TYPES):
        return "sbom"
    if predicate_type:
        return "attestation"
    return "other"


def _legacy_item(
    registry: RegistryClient, repository: Repository, tag: str, manifest: str, layer: Mapping[str, Any]
) -> Attachment:
    annotations = _annotations(layer)
    media_type = str(layer.get("mediaType") or "")
    predicate = annotations.get(PREDICATE_TYPE_ANNOTATION)
    kind: Kind
    if tag.endswith(".sig") and SIGNATURE_ANNOTATION in annotations:
        kind = "signature"
    elif tag.endswith(".sbom"):
        kind = "sbom"
    elif media_type == DSSE_MEDIA_TYPE:
        # The `predicateType` annotation is unsigned: the statement in the envelope says what it is.
        predicate = envelope_predicate(_json_blob(registry, repository, str(layer["digest"]))) or predicate
        kind = kind_of(predicate, media_type) if predicate else "other"  # neither statement nor annotation
    else:
        kind = kind_of(predicate, media_type)
    certificate = annotations.get(CERTIFICATE_ANNOTATION)
    signer: Signer | None = certificate_signer(certificate.encode()) if certificate else Signer()
    if tag.endswith(".sbom"):
        signer = None  # `cosign attach sbom` stores the SBOM unsigned; a `.att` SBOM attestation is signed
    return Attachment(kind, "legacy", manifest, media_type, predicate, signer, tag, str(layer["digest"]))


def _referrer(
    registry: RegistryClient, repository: Repository, descriptor: Mapping[str, Any], depth: int
) -> Attachment:
    """One referrer, described from its manifest: a listing's descriptor may lack what the manifest says
    (go-containerregistry, so cosign, lists its bundles with the empty config's media type and no
    annotations in a fallback index)."""
    digest = str(descriptor["digest"])
    manifest = registry.manifest_by_digest(repository, digest).json()
    annotations = {**_annotations(descriptor), **_annotations(manifest)}
    artifact_type = str(
        manifest.get("artifactType")
        or descriptor.get("artifactType")
        or (manifest.get("config") or {}).get("mediaType")
        or ""
    )
    predicate = annotations.get(BUNDLE_PREDICATE_ANNOTATION)
    signer = None
    kind: Kind
    if artifact_type == BUNDLE_MEDIA_TYPE:
        bundle = _bundle(registry, repository, manifest)
        signer = bundle_signer(bundle)
        # The annotation is unsigned (a signature annotated as provenance would be carried by
        # `promote --resign` and still verify as a signature): the content decides, read without verifying.
        if "messageSignature" in bundle:
            predicate = None
        else:
            predicate = bundle_predicate(bundle) or predicate  # the annotation only where the envelope is unreadable
        if predicate:
            kind = kind_of(predicate, artifact_type)
        elif "messageSignature" in bundle or "dsseEnvelope" in bundle:
            kind = "signature"  # a message signature, or an envelope whose statement is unreadable
        else:
            kind = "other"  # no bundle to read: not counted (nor carried by --resign) as a signature
    else:
        kind = kind_of(predicate, artifact_type)
    nested: tuple[Attachment, ...] = ()
    if depth > 0:
        found, _api = referrer_descriptors(registry, repository, digest)
        nested = tuple(_referrer(registry, repository, d, depth - 1) for d in found)
    return Attachment(
        kind, "referrers", digest, artifact_type, predicate, signer, descriptor=dict(descriptor), referrers=nested
    )


def _bundle(registry: RegistryClient, repository: Repository, manifest: Mapping[str, Any]) -> dict[str, Any]:
    for layer, blob in descriptors_in(manifest.get("layers")):
        if layer.get("mediaType") == BUNDLE_MEDIA_TYPE:
            return _json_blob(registry, repository, blob)
    return {}


def _json_blob(registry: RegistryClient, repository: Repository, digest: str) -> dict[str, Any]:
    """A blob holding a JSON object, or {} where it holds anything else."""
    try:
        document = json.loads(registry.get_blob(repository, digest))
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def bundle_predicate(bundle: Mapping[str, Any]) -> str | None:
    """The in-toto statement's predicateType inside a bundle's DSSE envelope (None: not one)."""
    return envelope_predicate(bundle.get("dsseEnvelope"))


def envelope_predicate(envelope: Any) -> str | None:
    """The predicateType of the in-toto statement a DSSE envelope carries, read without verifying
    (None: not an envelope, or its payload is not a statement)."""
    if not isinstance(envelope, dict):
        return None
    try:
        statement = json.loads(base64.b64decode(envelope["payload"]))
    except (KeyError, TypeError, ValueError):
        return None
    predicate = statement.get("predicateType") if isinstance(statement, dict) else None
    return str(predicate) if predicate else None


def bundle_signer(bundle: Mapping[str, Any]) -> Signer:
    """The key hint or the leaf certificate's identity in a bundle's verificationMaterial (v0.1 to v0.3)."""
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        return Signer()
    if isinstance(material.get("publicKey"), dict):
        return Signer(key_hint=str(material["publicKey"].get("hint") or "") or None)
    certificate = material.get("certificate")
    if not isinstance(certificate, dict):
        chain = (material.get("x509CertificateChain") or {}).get("certificates") or [{}]
        certificate = chain[0] if isinstance(chain[0], dict) else {}
    try:
        der = base64.b64decode(str(certificate["rawBytes"]))
    except (KeyError, ValueError):
        return Signer()
    return certificate_signer(der)


def certificate_signer(data: bytes) -> Signer:
    """Subject (SAN email or URI) and Fulcio issuer of a PEM or DER certificate; an unreadable one
    yields an empty Signer rather than an error: this is a listing, not a verdict."""
    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError:
        return Signer()
    subject = None
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found = names.get_values_for_type(x509.RFC822Name) + names.get_values_for_type(x509.UniformResourceIdentifier)
        subject = found[0] if found else None
    except x509.ExtensionNotFound:
        pass
    return Signer(subject=subject, issuer=_fulcio_issuer(cert))


def _fulcio_issuer(cert: x509.Certificate) -> str | None:
    for oid in (FULCIO_ISSUER_V2, FULCIO_ISSUER_V1):
        try:
            value = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
        if oid == FULCIO_ISSUER_V2:
            raw = _der_utf8(raw)
        return raw.decode("utf-8", "replace") or None
    return None


def _der_utf8(raw: bytes) -> bytes:
    """The content of a DER UTF8String (tag 0x0c, then a short or long length)."""
    if len(raw) < 2 or raw[0] != 0x0C:
        return b""
    length, start = raw[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(raw[2 : 2 + count], "big"), 2 + count
    return raw[start : start + length]
