"""Signing throughput: 20 pushed digests signed by pipeline (key decrypted once) vs a loop of
`cosign sign --key` on the same kind of digests. Needs the local registry and cosign from
scripts/services. Prints the times and the ratio; exits non-zero if the peer is missing.

    .venv/bin/python bench/sign_bench.py [--count 20] [--registry 127.0.0.1:5000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pipeline.registry.client import OCI_MANIFEST, Manifest, RegistryClient
from pipeline.registry.reference import Repository, parse_repository
from pipeline.signing import keys
from pipeline.signing.signer import sign_digest

SERVICES_ENV = Path(os.environ.get("PIPELINE_SERVICES_DIR", "/tmp/pipeline-services")) / "env"


def push_tiny_images(registry: RegistryClient, repository: Repository, count: int) -> list[str]:
    """`count` distinct one-layer images pushed straight through the registry API."""
    digests = []
    for i in range(count):
        layer = f"layer {i} {uuid.uuid4()}".encode()
        layer_digest = registry.push_blob(repository, layer)
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
        ).encode()
        config_digest = registry.push_blob(repository, config)
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "size": len(config),
                    "digest": config_digest,
                },
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(layer), "digest": layer_digest}
                ],
            }
        ).encode()
        manifest = Manifest(OCI_MANIFEST, "sha256:" + hashlib.sha256(body).hexdigest(), body)
        registry.put_manifest(repository, f"img{i}", manifest)
        digests.append(manifest.digest)
    return digests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--registry", default="127.0.0.1:5000")
    args = parser.parse_args()
    cosign = os.environ.get("PIPELINE_COSIGN")
    if not cosign and SERVICES_ENV.exists():
        cosign = dict(line.split("=", 1) for line in SERVICES_ENV.read_text().splitlines()).get("PIPELINE_COSIGN")
    if not cosign or not Path(cosign).exists():
        print("cosign (the peer) is missing: run bash scripts/services", file=sys.stderr)
        return 2

    password = "bench-passphrase"
    with tempfile.TemporaryDirectory() as tmp, RegistryClient(lambda _: None) as registry:
        key_file, _ = keys.write_key_pair(Path(tmp) / "bench", keys.generate(), password)
        ours_repo = parse_repository(f"{args.registry}/bench-sign/{uuid.uuid4().hex[:8]}")
        peer_repo = parse_repository(f"{args.registry}/bench-sign/{uuid.uuid4().hex[:8]}")
        ours_digests = push_tiny_images(registry, ours_repo, args.count)
        peer_digests = push_tiny_images(registry, peer_repo, args.count)

        started = time.perf_counter()
        key = keys.read_private_key(key_file, password)
        decrypt = time.perf_counter() - started
        started = time.perf_counter()
        for digest in ours_digests:
            sign_digest(registry, ours_repo, digest, key, "legacy")
        ours = time.perf_counter() - started

        started = time.perf_counter()
        for digest in peer_digests:
            subprocess.run(
                [
                    cosign,
                    "sign",
                    "--key",
                    str(key_file),
                    "--tlog-upload=false",
                    "--allow-http-registry",
                    "--yes",
                    f"{peer_repo}@{digest}",
                ],
                env={**os.environ, "COSIGN_PASSWORD": password},
                capture_output=True,
                check=True,
            )
        peer = time.perf_counter() - started

    print(f"sign {args.count} digests (legacy .sig, key decrypted once: {decrypt:.3f} s)")
    print(f"  pipeline             {ours:7.3f} s  ({ours / args.count * 1000:.1f} ms/digest)")
    print(f"  cosign sign loop     {peer:7.3f} s  ({peer / args.count * 1000:.1f} ms/digest)")
    print(f"  ratio cosign/pipeline {peer / ours:6.1f}x   target: pipeline under 2 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
