"""Commands for signing: keys generate, sign, attest, verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline.cli.common import (
    SignerFlags,
    echo_json,
    insecure_option,
    optional_config,
    optional_config_option,
    passphrase,
    session,
    signer_options,
)
from pipeline.errors import UsageError, VerificationFailed

# --help and completion import this module: the registry client, the crypto libraries, sigstore and the
# config models load in the commands' bodies.
if TYPE_CHECKING:
    from pipeline.signing.actions import SignResult
    from pipeline.signing.policy import Requirement
    from pipeline.signing.verify import Verification


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
    from pipeline.signing import keys as keyfiles

    secret = passphrase(f"{output_prefix}.key")
    private, public = keyfiles.write_key_pair(Path(output_prefix), keyfiles.generate(), secret, overwrite=force)
    click.echo(f"Private key written to {private}")
    click.echo(f"Public key written to {public}")


@click.command()
@click.argument("reference")
@signer_options("sign")
@insecure_option
@optional_config_option("registry settings")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sign(
    reference: str,
    signing: SignerFlags,
    insecure: tuple[str, ...],
    config_file: Path | None,
    as_json: bool,
) -> None:
    """Sign REFERENCE's digest (a tag is resolved to its digest first; the tag itself is never signed).

    An image index (a multi-platform image) is signed recursively, like `cosign sign --recursive`: each
    platform's manifest, then the index, so `verify` and cosign accept whichever one a puller gets.

    \b
    Example:
      COSIGN_PASSWORD=... pipeline sign 127.0.0.1:5000/demo/app:1.0.0 --key cosign.key
    """
    from pipeline.registry.reference import parse_reference
    from pipeline.signing.actions import sign_reference

    ref = parse_reference(reference)
    with session(optional_config(config_file)).registry(insecure) as registry:
        signed = sign_reference(registry, ref, signing.signer())
    data = _signed_data(signed)
    data["children"] = [_signed_data(child) for child in signed.children]
    if as_json:
        echo_json(data)
        return
    for done in [*signed.children, signed]:
        forms = ", ".join(done.written) or f"already signed ({', '.join(done.already_signed)})"
        platform = f" ({done.platform})" if done.platform else ""
        click.echo(f"{done.reference}{platform}: signed by {done.signer}: {forms}")


def _signed_data(signed: SignResult) -> dict[str, Any]:
    data: dict[str, Any] = {
        "digest": signed.digest,
        "signer": signed.signer,
        "written": list(signed.written),
        "already_signed": list(signed.already_signed),
        "reference": signed.reference,
    }
    if signed.platform:
        data["platform"] = signed.platform
    return data


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
@click.option(
    "--type",
    "attestation_type",
    metavar="TYPE",
    help="Verify attestations of this type instead of signatures, and print their predicates: "
    "provenance (SLSA v1), sbom (CycloneDX) or a predicate type URI.",
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
    attestation_type: str | None,
    config_file: Path | None,
    insecure: tuple[str, ...],
    as_json: bool,
) -> None:
    """Verify REFERENCE's signatures: exit 0 verified, 1 not (no signature, bad signature or wrong
    identity), with the reason. With --type, verify its attestations of that type instead (as
    `cosign verify-attestation --type`) and print each verified predicate.

    An image index is verified with every platform's manifest: one child without an acceptable
    signature fails the whole verification, naming the child's platform.

    A signature counts only if it verifies with the key (or chains to the trust config's roots for the
    identity) and names this exact manifest digest. Like cosign, a signature made for another
    repository is accepted (a promoted image keeps its signatures) and shown as `signed for REPO`;
    which signers a repository needs is the trust policy's rule.

    \b
    Examples:
      pipeline verify 127.0.0.1:5000/demo/app:1.0.0 --key cosign.pub --json
      pipeline verify 127.0.0.1:5000/demo/app:1.0.0 --key cosign.pub --type provenance
    """
    from pipeline.registry.reference import parse_reference
    from pipeline.signing import keys as keyfiles
    from pipeline.signing.actions import verify_reference
    from pipeline.signing.policy import IdentityRequirement, KeyRequirement
    from pipeline.signing.trust import TrustPolicy

    ref = parse_reference(reference)
    predicate_type = predicate_type_of(attestation_type) if attestation_type else None
    if (subject is None) != (issuer is None):
        raise UsageError("--certificate-identity and --certificate-oidc-issuer go together")
    required: list[Requirement] = [KeyRequirement(keyfiles.read_public_key(p), str(p)) for p in key_paths]
    if subject and issuer:
        required.append(IdentityRequirement(issuer, subject, str(trust_config) if trust_config else None))
    config = optional_config(config_file)
    policy = TrustPolicy.from_config(config.spec, config.base_dir) if config is not None else None
    if not required and (policy is None or not policy.requirements_for(str(ref.repository))):
        raise UsageError(
            f"nothing to verify {ref.repository} against: give --key, a certificate identity, or a trust rule"
        )
    with session(config).registry(insecure) as registry:
        result = verify_reference(registry, ref, required, policy, predicate_type)
    data = _verified_data(result)
    data["children"] = [_verified_data(child) for child in result.children]
    if predicate_type:
        data["type"] = predicate_type
    if as_json:
        echo_json(data)
    elif result.verified:
        what = f"{attestation_type} attestation " if predicate_type else ""
        click.echo(f"{result.reference}: {what}verified ({'; '.join(result.satisfied)})")
        _echo_predicates(result)
        for child in result.children:
            click.echo(f"  {child.digest} ({child.platform}): {what}verified ({'; '.join(child.satisfied)})")
            _echo_predicates(child)
    if not result.verified:
        raise VerificationFailed(f"{result.reference}: not verified: {result.reason}")


def _verified_data(result: Verification) -> dict[str, Any]:
    data: dict[str, Any] = {
        "reference": result.reference,
        "verified": result.verified,
        "reason": result.reason,
        "satisfied": list(result.satisfied),
        "signatures_found": result.signatures_found,
    }
    if result.platform:
        data["platform"] = result.platform
    if result.attestations:
        data["attestations"] = [
            {"predicate_type": a.predicate_type, "form": a.form, "signer": a.signer, "predicate": a.predicate}
            for a in result.attestations
        ]
    return data


def _echo_predicates(result: Verification) -> None:
    for attestation in result.attestations:
        click.echo(f"# {attestation.predicate_type} ({attestation.form}, {attestation.signer})")
        echo_json(attestation.predicate, sort_keys=True)


def predicate_type_of(name: str) -> str:
    """provenance / sbom, or a predicate type URI as cosign's --type takes one."""
    from pipeline.signing.payloads import PREDICATE_TYPES, SIGN_PREDICATE

    if name in PREDICATE_TYPES:
        return PREDICATE_TYPES[name]
    if name == SIGN_PREDICATE:
        raise UsageError(f"--type {name}: that is a signature, not an attestation; verify it without --type")
    if "://" in name:
        return name
    raise UsageError(f"--type {name}: give {', '.join(sorted(PREDICATE_TYPES))} or a predicate type URI")


@click.command()
@click.argument("reference")
@click.option(
    "--type",
    "attestation_type",
    metavar="TYPE",
    required=True,
    help="provenance (SLSA v1), sbom (CycloneDX) or a predicate type URI.",
)
@click.option(
    "--predicate",
    "predicate_file",
    required=True,
    type=click.File("rb"),
    help="The predicate, a JSON file ('-' for standard input).",
)
@signer_options("attest", storage_default="both")
@click.option("--replace", is_flag=True, help="Replace this signer's attestation of this type (as cosign --replace).")
@insecure_option
@optional_config_option("registry settings")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def attest(
    reference: str,
    attestation_type: str,
    predicate_file: Any,
    signing: SignerFlags,
    replace: bool,
    insecure: tuple[str, ...],
    config_file: Path | None,
    as_json: bool,
) -> None:
    """Attest a predicate about REFERENCE's digest by hand, as `cosign attest` does: an in-toto
    statement signed with the key (or keyless) and stored as cosign's `.att` layer and/or an OCI 1.1
    referrer. `pipeline run` does this itself for `sign: {attest: [provenance, sbom]}`.

    \b
    Example:
      COSIGN_PASSWORD=... pipeline attest 127.0.0.1:5000/demo/app:1.0.0 --key cosign.key \\
        --type provenance --predicate provenance.json
    """
    from pipeline.registry.reference import parse_reference
    from pipeline.signing.actions import attest_reference

    ref = parse_reference(reference)
    predicate_type = predicate_type_of(attestation_type)
    name = getattr(predicate_file, "name", "-")
    try:
        predicate = json.loads(predicate_file.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{name}: the predicate is not JSON: {exc}") from None
    if not isinstance(predicate, dict):
        raise UsageError(f"{name}: the predicate must be a JSON object")
    with session(optional_config(config_file)).registry(insecure) as registry:
        signer = signing.signer()
        done = attest_reference(registry, ref, signer, predicate_type, predicate, replace)
    data = {
        "reference": done.reference,
        "type": done.predicate_type,
        "signer": done.signer,
        "written": list(done.written),
        "already": list(done.already),
    }
    if as_json:
        echo_json(data)
        return
    forms = ", ".join(done.written) or f"already attested ({', '.join(done.already)})"
    click.echo(f"{done.reference}: {attestation_type} attested by {done.signer}: {forms}")
