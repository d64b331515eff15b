"""`verify` counts and names each signature once: the same key given as --key and named by the trust policy
(by another path), and a referrer listed twice, are one signer and one signature, as `tree` shows them."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from pipeline.registry.client import OCI_INDEX, Manifest, RegistryClient
from pipeline.registry.reference import parse_reference
from pipeline.signing.storage import fallback_referrers_tag
from tests.helpers import BASE_DOCKERFILE, run_cli, write_project
from tests.integration.conftest import Services

ENV = {"COSIGN_PASSWORD": "dedupe-pass"}


def test_one_signature_counts_once_with_the_same_key_named_twice(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    registry = f"{services.plain_registry}/{namespace}"
    write_project(
        tmp_path,
        f"registry: {registry}\nnetwork: none\n"
        f"trust:\n  - repositories: ['{registry}/*']\n    keys: [keys/team.pub]\n"
        "pipelines:\n  p:\n    images:\n      base: {context: images/base}\n",
        {"base": BASE_DOCKERFILE},
        busybox=("base",),
    )
    assert run_cli(["keys", "generate", "--output-prefix", "release"], tmp_path, env=ENV).code == 0
    (tmp_path / "keys").mkdir()
    shutil.copy(tmp_path / "release.pub", tmp_path / "keys" / "team.pub")  # the same key, by another path
    built = run_cli(["run", "--json"], tmp_path)
    assert built.code == 0, built.output
    ref = json.loads(built.stdout)["images"][0]["reference"]
    assert run_cli(["sign", ref, "--key", "release.key"], tmp_path, env=ENV).code == 0

    for keys in (["--key", "release.pub"], ["--key", "release.pub", "--key", "keys/team.pub"]):
        verified = run_cli(["verify", ref, *keys, "--json"], tmp_path)
        assert verified.code == 0, verified.output
        data = json.loads(verified.stdout)
        assert (data["signatures_found"], data["satisfied"]) == (1, ["key release.pub (legacy)"]), keys
        text = run_cli(["verify", ref, *keys], tmp_path)
        assert text.stdout == f"{ref}: verified (key release.pub (legacy))\n", keys
    tree = run_cli(["tree", ref], tmp_path)
    assert "signatures (1)" in tree.stdout, tree.output
    # The policy alone still checks the key it names.
    alone = json.loads(run_cli(["verify", ref, "--json"], tmp_path).stdout)
    assert (alone["signatures_found"], alone["satisfied"]) == (1, ["key keys/team.pub (legacy)"])

    # A referrer listed twice in the fallback index (the registry has no referrers API): one signature.
    assert run_cli(["sign", ref, "--key", "release.key", "--storage", "referrers"], tmp_path, env=ENV).code == 0
    client = RegistryClient(lambda _: None)
    image = parse_reference(ref)
    assert image.digest is not None
    index_ref = image.repository.with_tag(fallback_referrers_tag(image.digest))
    index = client.get_manifest(index_ref).json()
    assert len(index["manifests"]) == 1
    index["manifests"] *= 2
    body = json.dumps(index).encode()
    doubled = Manifest(OCI_INDEX, "sha256:" + hashlib.sha256(body).hexdigest(), body)
    client.put_manifest(image.repository, fallback_referrers_tag(image.digest), doubled)

    verified = run_cli(["verify", ref, "--key", "release.pub", "--json"], tmp_path)
    assert verified.code == 0, verified.output
    assert json.loads(verified.stdout)["signatures_found"] == 2  # the legacy one and the bundle
    tree = run_cli(["tree", ref], tmp_path)
    assert "signatures (2)" in tree.stdout, tree.output
