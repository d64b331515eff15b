"""What gets signed: cosign's simple-signing payload (legacy form) and an in-toto statement in a DSSE
envelope (bundle form). Pure."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT = "https://in-toto.io/Statement/v1"
# cosign attest still writes v0.1 statements; their shape is the same as v1's for what is read here.
IN_TOTO_STATEMENTS = (IN_TOTO_STATEMENT, "https://in-toto.io/Statement/v0.1")
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


@dataclass(frozen=True)
class Statement:
    """A parsed in-toto v1 statement: its subjects as (name, "algorithm:hex") pairs."""

    subjects: tuple[tuple[str, str], ...]
    predicate_type: str
    predicate: Any

    def claims_for(self, digest: str) -> Claims | None:
        """The subject naming `digest`, if any (cosign statements may list several)."""
        for name, subject_digest in self.subjects:
            if subject_digest == digest:
                return Claims(_strip_tag_and_digest(name), subject_digest)
        return None


def parse_statement(payload: bytes) -> Statement:
    """ValueError unless `payload` is an in-toto v1 statement with at least one subject digest."""
    try:
        document: Any = json.loads(payload)
        subjects = tuple(
            (str(subject.get("name", "")), f"{algorithm}:{hexdigest}")
            for subject in document["subject"]
            for algorithm, hexdigest in subject["digest"].items()
        )
        predicate_type = str(document["predicateType"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("not an in-toto statement with a subject") from None
    if document.get("_type") not in IN_TOTO_STATEMENTS or not subjects:
        raise ValueError("not an in-toto v1 (or v0.1) statement with a subject")
    return Statement(subjects, predicate_type, document.get("predicate"))


def parse_in_toto(payload: bytes) -> Claims:
    """The claims of a signature statement (predicate type cosign's sign/v1): an attestation is never
    taken for a signature."""
    statement = parse_statement(payload)
    if statement.predicate_type != SIGN_PREDICATE:
        raise ValueError(f"an attestation ({statement.predicate_type}), not a signature")
    name, digest = statement.subjects[0]
    return Claims(_strip_tag_and_digest(name), digest)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what a DSSE signature actually covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope_payload(envelope: Any, verify: Callable[[bytes, bytes], bool]) -> bytes | None:
    """The payload of a DSSE envelope if one of its signatures verifies (`verify(signature, message)`)
    over the pre-authentication encoding; None for anything else, malformed envelopes included."""
    try:
        payload = base64.b64decode(envelope["payload"])
        payload_type = str(envelope["payloadType"])
        signatures = [base64.b64decode(s["sig"]) for s in envelope["signatures"]]
    except (KeyError, TypeError, ValueError):
        return None
    if any(verify(signature, pae(payload_type, payload)) for signature in signatures):
        return payload
    return None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
