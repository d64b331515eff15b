"""Keyless signing and verification with sigstore-python: a Fulcio certificate for an OIDC identity,
a Rekor entry, and a bundle. The trust config (Fulcio/Rekor URLs and roots) is configurable so that
private sigstore deployments (and the local test services) work the same as the public one."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from sigstore import dsse
from sigstore.errors import Error as SigstoreError
from sigstore.models import Bundle, ClientTrustConfig
from sigstore.oidc import IdentityError, IdentityToken
from sigstore.sign import Signer, SigningContext
from sigstore.verify import Verifier, policy

from pipeline.errors import SigningError
from pipeline.files import read_regular_file
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import Repository
from pipeline.signing.payloads import SIGN_PREDICATE, parse_statement
from pipeline.signing.policy import IdentityRequirement
from pipeline.signing.signer import Attestation, SignOutcome
from pipeline.signing.storage import read_bundles, write_bundle

_trust_cache: dict[str | None, ClientTrustConfig] = {}


def load_trust_config(path: str | None) -> ClientTrustConfig:
    """The ClientTrustConfig at `path`, or the public-good instance (which needs the network)."""
    if path not in _trust_cache:
        try:
            if path is None:
                _trust_cache[path] = ClientTrustConfig.production()
            else:
                text = read_regular_file(Path(path), "sigstore trust config").decode("utf-8", "replace")
                _trust_cache[path] = ClientTrustConfig.from_json(text)
        except OSError as exc:
            raise SigningError(f"{path}: cannot read the sigstore trust config: {exc.strerror}") from None
        except (ValueError, SigstoreError) as exc:
            # The first line only: a validation error goes on to quote the file's content.
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SigningError(f"sigstore trust config {path or '(public instance)'}: {reason}") from None
    return _trust_cache[path]


class KeylessSigner:
    """Signs digests as the identity in an OIDC token; one Fulcio certificate serves a whole run."""

    def __init__(self, identity_token: str, trust_config: str | None) -> None:
        try:
            self.token = IdentityToken(identity_token)
        except IdentityError as exc:
            raise SigningError(f"the identity token is not usable: {exc}") from None
        self.context = SigningContext.from_trust_config(load_trust_config(trust_config))
        self.trust_config = trust_config
        # One sigstore Signer (an ephemeral key and its Fulcio certificate) for every signature and
        # attestation of the run, made at the first; signing goes one at a time through it.
        self._signer: Signer | None = None
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        return f"{self.token.identity} ({self.token.issuer})"

    def bundle(
        self, repository: str, digest: str, predicate_type: str = SIGN_PREDICATE, predicate: Any = None
    ) -> dict[str, Any]:
        """A bundle whose DSSE statement is about `repository@digest`: the signature statement, or an
        attestation when a predicate is given."""
        algorithm, _, hexdigest = digest.partition(":")
        statement = (
            dsse.StatementBuilder()
            .subjects([dsse.Subject(name=repository, digest={algorithm: hexdigest})])
            .predicate_type(predicate_type)
            .predicate({} if predicate is None else predicate)
            .build()
        )
        try:
            with self._lock:
                if self._signer is None:
                    with self.context.signer(self.token, cache=True) as signer:  # it holds nothing to release
                        self._signer = signer
                signed = self._signer.sign_dsse(statement)
        except (SigstoreError, ValueError) as exc:
            raise SigningError(f"{repository}@{digest}: keyless signing failed: {exc}") from None
        document: dict[str, Any] = json.loads(signed.to_json())
        return document

    # The Signer protocol (signing.signer): keyless signatures and attestations are sigstore bundles,
    # stored as OCI 1.1 referrers whatever the storage setting (cosign's legacy form has no place for
    # the certificate's transparency-log proof in the shape sigstore-python returns).

    def sign(self, registry: RegistryClient, repository: Repository, digest: str) -> SignOutcome:
        if self._has_bundle(registry, repository, digest, SIGN_PREDICATE):
            return SignOutcome(digest, self.identity, (), ("referrers",))
        write_bundle(registry, repository, digest, self.bundle(str(repository), digest))
        return SignOutcome(digest, self.identity, ("referrers",), ())

    def attest(self, registry: RegistryClient, repository: Repository, digest: str, asked: Attestation) -> SignOutcome:
        """As a key signer: an attestation of this type by this identity already there is kept (a reused
        image keeps the provenance of its build), unless `replace` (then one more bundle is added)."""
        if not asked.replace and self._has_bundle(registry, repository, digest, asked.predicate_type):
            return SignOutcome(digest, self.identity, (), ("referrers",))
        bundle = self.bundle(str(repository), digest, asked.predicate_type, asked.make_predicate())
        write_bundle(registry, repository, digest, bundle, asked.predicate_type)
        return SignOutcome(digest, self.identity, ("referrers",), ())

    def _has_bundle(self, registry: RegistryClient, repository: Repository, digest: str, predicate_type: str) -> bool:
        """Whether a bundle of this identity (verified against the trust root) already states
        `predicate_type` about `digest`."""
        requirement = IdentityRequirement(self.token.issuer, self.token.identity, self.trust_config)
        for bundle in read_bundles(registry, repository, digest):
            payload = verify_identity_bundle(bundle, requirement)
            if payload is None:
                continue
            try:
                statement = parse_statement(payload)
            except ValueError:
                continue
            if statement.predicate_type == predicate_type and statement.claims_for(digest) is not None:
                return True
        return False


def verify_identity_bundle(bundle: dict[str, Any], requirement: IdentityRequirement) -> bytes | None:
    """The signed payload if `bundle` carries a certificate for the required identity that chains to
    the trust config's roots and is logged in its transparency log; otherwise None."""
    material = bundle.get("verificationMaterial") or {}
    if "publicKey" in material:
        return None
    verifier = Verifier(trusted_root=load_trust_config(requirement.trust_config).trusted_root)
    try:
        parsed = Bundle.from_json(json.dumps(bundle))
        _, payload = verifier.verify_dsse(
            parsed, policy.Identity(identity=requirement.subject, issuer=requirement.issuer)
        )
    except (SigstoreError, ValueError):
        return None
    return payload
