"""Local Fulcio and Rekor for keyless tests: the Node server on @sigstore/mock, a trust config that
trusts it, and OIDC tokens (the mock, like sigstore-python's client side, does not check their
signature; the issuer and subject are what end up in the certificate)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

SERVER = Path(__file__).with_name("sigstore_mock_server.js")
ISSUER = "https://oidc.pipeline.test"
SUBJECT = "mailto:release-bot@pipeline.test"


def make_token(subject: str = SUBJECT, issuer: str = ISSUER) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "aud": "sigstore", "sub": subject, "iat": now, "nbf": now, "exp": now + 600}
    return jwt.encode(claims, "test-only-hmac-key-not-a-secret-0123456789", algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(pem: str) -> bytes:
    return serialization.load_pem_public_key(pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def trust_config(material: dict[str, str]) -> dict[str, Any]:
    """A sigstore ClientTrustConfig trusting the mock's CA, CT log and Rekor keys."""
    started = datetime.fromisoformat(material["started_at"].replace("Z", "+00:00")) - timedelta(minutes=5)
    start = started.strftime("%Y-%m-%dT%H:%M:%SZ")
    ca = x509.load_pem_x509_certificate(material["fulcio_root_cert_pem"].encode())

    def log(url: str, der: bytes) -> dict[str, Any]:
        return {
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": _b64(der), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": start}},
            "logId": {"keyId": _b64(hashlib.sha256(der).digest())},
        }

    def service(url: str) -> dict[str, Any]:
        return {"url": url, "majorApiVersion": 1, "validFor": {"start": start}, "operator": "pipeline-tests"}

    return {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(material["rekor_url"], _spki(material["rekor_public_key_pem"]))],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "sigstore.mock", "commonName": "sigstore"},
                    "uri": material["fulcio_url"],
                    "certChain": {"certificates": [{"rawBytes": _b64(ca.public_bytes(serialization.Encoding.DER))}]},
                    "validFor": {"start": start},
                }
            ],
            "ctlogs": [log("http://ctlog.invalid", _spki(material["ctlog_public_key_pem"]))],
            "timestampAuthorities": [],
        },
        "signingConfig": {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [service(material["fulcio_url"])],
            "oidcUrls": [],
            "rekorTlogUrls": [service(material["rekor_url"])],
            "tsaUrls": [],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        },
    }


@contextmanager
def running_sigstore(workdir: Path, node_path: str) -> Iterator[Path]:
    """Start Fulcio and Rekor on free loopback ports; yield the path of a trust config for them."""
    material_file = workdir / "trust-material.json"
    process = subprocess.Popen(
        ["node", str(SERVER), "--fulcio-port", "0", "--rekor-port", "0", "--out", str(material_file), "--ttl", "900"],
        env={**os.environ, "NODE_PATH": node_path},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(
                f"sigstore mock did not start: {line!r} {process.stderr.read() if process.stderr else ''}"
            )
        config = workdir / "client-trust-config.json"
        config.write_text(json.dumps(trust_config(json.loads(material_file.read_text()))))
        yield config
    finally:
        process.terminate()
        process.wait(timeout=10)
