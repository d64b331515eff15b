"""What attesting a digest asks of the registry: a run's provenance then SBOM of one digest (the bench's
20 digests, attest_bench.py) write new envelopes without asking whether they exist, and the SBOM's check
of the `.att` tag reads back nothing the client just wrote. cosign still accepts both."""

from __future__ import annotations

from pathlib import Path

from pipeline.registry.client import RegistryClient
from pipeline.registry.contentcache import ContentCache
from pipeline.registry.reference import parse_repository
from pipeline.signing import keys
from pipeline.signing.payloads import CYCLONEDX_BOM, SLSA_PROVENANCE_V1
from pipeline.signing.signer import Attestation, KeySigner
from pipeline.signing.storage import attestation_tag
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_attest import PROVENANCE, SBOM, cosign_verify_attestation
from tests.integration.test_index import RecordingTransport
from tests.integration.test_sbom_layers import gzip_layer, push_image


def test_the_second_attestation_of_a_digest_reads_back_nothing_and_each_new_blob_is_one_upload(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    repository = parse_repository(f"{services.plain_registry}/{namespace}/app")
    with RegistryClient(lambda _: None) as setup:
        digest = push_image(setup, repository, [gzip_layer({"etc/os-release": "ID=debian\n"})])
    key_file, public_file = keys.write_key_pair(tmp_path / "cosign", keys.generate(), "pw")
    signer = KeySigner(keys.read_private_key(key_file, "pw"), "legacy")
    transport = RecordingTransport()
    with RegistryClient(lambda _: None, transport=transport, content_cache=ContentCache(tmp_path / "cache")) as client:
        signer.attest(client, repository, digest, Attestation(SLSA_PROVENANCE_V1, lambda: PROVENANCE))
        first = len(transport.requests)
        signer.attest(client, repository, digest, Attestation(CYCLONEDX_BOM, lambda: SBOM))
    second = [(method, path.rsplit("/", 2)[-2]) for method, path in transport.requests[first:]]

    # The tag's HEAD, then two uploads (envelope, config: POST + PUT each) and the manifest's PUT.
    assert second == [
        ("HEAD", "manifests"),
        ("POST", "uploads"),
        ("PUT", "uploads"),
        ("POST", "uploads"),
        ("PUT", "uploads"),
        ("PUT", "manifests"),
    ], transport.requests[first:]
    stored = plain_peek.manifest(f"{namespace}/app", attestation_tag(digest))
    assert stored is not None
    layers = stored[1]["layers"]
    assert isinstance(layers, list)
    assert [layer["annotations"]["predicateType"] for layer in layers] == [SLSA_PROVENANCE_V1, CYCLONEDX_BOM]
    ref = f"{repository}@{digest}"
    assert cosign_verify_attestation(services, public_file, "slsaprovenance1", ref)["predicate"] == PROVENANCE
    assert cosign_verify_attestation(services, public_file, "cyclonedx", ref)["predicate"] == SBOM
