"""Commands for signing: keys generate, sign, verify."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.cli.common import (
    identity_token,
    insecure_option,
    optional_config,
    optional_config_option,
    passphrase,
    session,
)
from pipeline.errors import UsageError, VerificationFailed
from pipeline.registry.reference import parse_reference
from pipeline.signing import keys as keyfiles
from pipeline.signing.policy import IdentityRequirement, KeyRequirement, Requirement
from pipeline.signing.signer import SignatureStorage, sign_digest
from pipeline.signing.storage import write_bundle
from pipeline.signing.trust import TrustPolicy
from pipeline.signing.verify import verify_digest


@click.group()
def keys() -> None:
    """Manage cosign-compatible signing keys."""


@keys.command("generate")
@click.option("--output-prefix", default="cosign", show_default=True, help="Writes PREFIX.key and PREFIX.pub.")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def generate(output_prefix: str, force: bool) -> None:
    """Generate an ECDSA P-256 key pair in cosign's format (the private key encrypted with the
    passphrase from COSIGN_PASSWORD, or asked for on the terminal).

    \b
    Example:
      COSIGN_PASSWORD=... pipeline keys generate --output-prefix release
    """
    secret = passphrase(f"{output_prefix}.key")
    private, public = keyfiles.write_key_pair(Path(output_prefix), keyfiles.generate(), secret, overwrite=force)
    click.echo(f"Private key written to {private}")
    click.echo(f"Public key written to {public}")


@click.command()
@click.argument("reference")
@click.option("--key", "key_path", type=click.Path(path_type=Path, dir_okay=False), help="cosign private key.")
@click.option(
    "--storage",
    type=click.Choice(["legacy", "referrers", "both"]),
    default="legacy",
    show_default=True,
    help="legacy: cosign's sha256-<hex>.sig tag; referrers: an OCI 1.1 sigstore bundle.",
)
@click.option("--identity-token", "token", metavar="JWT", help="Sign keyless with this OIDC token instead of a key.")
@click.option(
    "--trust-config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="sigstore ClientTrustConfig JSON (private deployments); default: the public instance.",
)
@insecure_option
@optional_config_option("registry settings")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sign(
    reference: str,
    key_path: Path | None,
    storage: SignatureStorage,
    token: str | None,
    trust_config: Path | None,
    insecure: tuple[str, ...],
    config_file: Path | None,
    as_json: bool,
) -> None:
    """Sign REFERENCE's digest (a tag is resolved to its digest first; the tag itself is never signed).

    \b
    Example:
      COSIGN_PASSWORD=... pipeline sign 127.0.0.1:5000/demo/app:1.0.0 --key cosign.key
    """
    ref = parse_reference(reference)
    with session(optional_config(config_file)).registry(insecure) as registry:
        digest = ref.digest or registry.resolve_digest(ref)
        if digest is None:
            raise VerificationFailed(f"{ref}: not found in the registry")
        if key_path is not None:
            key = keyfiles.read_private_key(key_path, passphrase(str(key_path)))
            outcome = sign_digest(registry, ref.repository, digest, key, storage)
            data = {
                "digest": digest,
                "signer": outcome.key_id,
                "written": list(outcome.written),
                "already_signed": list(outcome.already),
            }
        else:
            found = identity_token(token)
            if not found:
                raise UsageError("give --key FILE, or an OIDC identity token for keyless signing")
            from pipeline.signing.keyless import KeylessSigner  # sigstore is slow to import

            keyless = KeylessSigner(found, str(trust_config) if trust_config else None)
            write_bundle(registry, ref.repository, digest, keyless.bundle(str(ref.repository), digest))
            data = {"digest": digest, "signer": keyless.identity, "written": ["referrers"], "already_signed": []}
    data["reference"] = f"{ref.repository}@{digest}"
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        done = ", ".join(data["written"]) or f"already signed ({', '.join(data['already_signed'])})"
        click.echo(f"{data['reference']}: signed by {data['signer']}: {done}")


@click.command()
@click.argument("reference")
@click.option(
    "--key",
    "key_paths",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="cosign public key that must have signed it (repeatable: all are required).",
)
@click.option("--certificate-identity", "subject", help="Keyless: the signer identity required.")
@click.option("--certificate-oidc-issuer", "issuer", help="Keyless: the identity's OIDC issuer.")
@click.option(
    "--trust-config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="sigstore ClientTrustConfig JSON for keyless verification.",
)
@optional_config_option("trust policy and registry settings")
@insecure_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(
    reference: str,
    key_paths: tuple[Path, ...],
    subject: str | None,
    issuer: str | None,
    trust_config: Path | None,
    config_file: Path | None,
    insecure: tuple[str, ...],
    as_json: bool,
) -> None:
    """Verify REFERENCE's signatures: exit 0 verified, 1 not (no signature, bad signature or wrong
    identity), with the reason.

    A signature counts only if it verifies with the key (or chains to the trust config's roots for the
    identity) and names this repository and this exact manifest digest.

    \b
    Example:
      pipeline verify 127.0.0.1:5000/demo/app:1.0.0 --key cosign.pub --json
    """
    ref = parse_reference(reference)
    if (subject is None) != (issuer is None):
        raise UsageError("--certificate-identity and --certificate-oidc-issuer go together")
    required: list[Requirement] = [KeyRequirement(keyfiles.read_public_key(p), str(p)) for p in key_paths]
    if subject and issuer:
        required.append(IdentityRequirement(issuer, subject, str(trust_config) if trust_config else None))
    config = optional_config(config_file)
    policy_rules: list[list[Requirement]] = []
    if config is not None:
        policy_rules = TrustPolicy.from_config(config.spec, config.base_dir).requirements_for(str(ref.repository))
    if not required and not policy_rules:
        raise UsageError(
            f"nothing to verify {ref.repository} against: give --key, a certificate identity, or a trust rule"
        )
    with session(config).registry(insecure) as registry:
        digest = ref.digest or registry.resolve_digest(ref)
        if digest is None:
            raise VerificationFailed(f"{ref}: not found in the registry")
        result = verify_digest(registry, ref.repository, digest, required)
        satisfied = list(result.satisfied)
        reason = result.reason
        for alternatives in policy_rules if result.verified else []:
            outcomes = [verify_digest(registry, ref.repository, digest, [req]) for req in alternatives]
            passing = [o for o in outcomes if o.verified]
            if not passing:
                reason = f"trust policy: {outcomes[0].reason}"
                break
            satisfied += [s for o in passing[:1] for s in o.satisfied]
    verified = reason is None
    data = {
        "reference": f"{ref.repository}@{digest}",
        "verified": verified,
        "reason": reason,
        "satisfied": satisfied,
        "signatures_found": result.signatures_found,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
    elif verified:
        click.echo(f"{data['reference']}: verified ({'; '.join(satisfied)})")
    if not verified:
        raise VerificationFailed(f"{data['reference']}: not verified: {reason}")
