"""What gets signed: cosign's simple-signing payload (legacy form) and an in-toto statement in a DSSE
envelope (bundle form). Pure."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT = "https://in-toto.io/Statement/v1"
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
# Attestation predicate types, as cosign's `--type slsaprovenance1` and `--type cyclonedx` name them.
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
CYCLONEDX_BOM = "https://cyclonedx.org/bom"
PREDICATE_TYPES = {"provenance": SLSA_PROVENANCE_V1, "sbom": CYCLONEDX_BOM}


@dataclass(frozen=True)
class Claims:
    """What a signature says: this repository's image with this manifest digest."""

    repository: str  # docker-reference without tag or digest
    digest: str


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """Byte for byte what cosign writes (compact JSON, this key order), so payload blobs dedupe."""
    document = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": COSIGN_SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _strip_tag_and_digest(reference: str) -> str:
    """skopeo writes `repo:tag` in docker-reference; only the repository counts."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def parse_simple_signing(payload: bytes) -> Claims:
    """Claims of a simple-signing payload; ValueError if it is not one."""
    try:
        document: Any = json.loads(payload)
        critical = document["critical"]
        kind = critical["type"]
        reference = critical["identity"]["docker-reference"]
        digest = critical["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("not a simple-signing payload") from None
    if kind != COSIGN_SIGNATURE_TYPE:
        raise ValueError(f"payload type is '{kind}', not '{COSIGN_SIGNATURE_TYPE}'")
    return Claims(_strip_tag_and_digest(str(reference)), str(digest))


def in_toto_statement(
    repository: str,
    digest: str,
    predicate_type: str = SIGN_PREDICATE,
    predicate: Mapping[str, Any] | None = None,
) -> bytes:
    """An in-toto v1 statement about one digest as compact JSON: the same arguments give the same bytes
    (the predicate's own key order is kept). Without a predicate type: cosign's signing statement."""
    algorithm, _, hexdigest = digest.partition(":")
    document = {
        "_type": IN_TOTO_STATEMENT,
        "subject": [{"name": repository, "digest": {algorithm: hexdigest}}],
        "predicateType": predicate_type,
        "predicate": dict(predicate or {}),
    }
    # allow_nan=False: NaN and Infinity are not JSON, and a verifier in another language would refuse them.
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def parse_in_toto(payload: bytes) -> Claims:
    try:
        document: Any = json.loads(payload)
        subject = document["subject"][0]
        algorithm, hexdigest = next(iter(subject["digest"].items()))
        name = str(subject["name"])
    except (ValueError, KeyError, TypeError, IndexError, StopIteration):
        raise ValueError("not an in-toto statement with a subject") from None
    if document.get("_type") != IN_TOTO_STATEMENT:
        raise ValueError("not an in-toto v1 statement")
    return Claims(_strip_tag_and_digest(name), f"{algorithm}:{hexdigest}")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what a DSSE signature actually covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
