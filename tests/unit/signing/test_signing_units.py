from __future__ import annotations

import base64
import json

import pytest

from pipeline.errors import SigningError
from pipeline.signing import keys
from pipeline.signing.payloads import parse_in_toto, parse_simple_signing, simple_signing_payload


def test_key_round_trip_and_format() -> None:
    key = keys.generate()
    pem = keys.encrypt_private_key(key, "s3cret")
    text = pem.decode()
    assert text.startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    body = base64.b64decode("".join(text.strip().splitlines()[1:-1]))
    document = json.loads(body)
    assert body == json.dumps(document, separators=(",", ":")).encode()  # compact JSON
    assert document["kdf"]["name"] == "scrypt" and document["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert document["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(document["cipher"]["nonce"])) == 24
    loaded = keys.decrypt_private_key(pem, "s3cret")
    assert loaded.public.verify(key.sign(b"payload"), b"payload")
    assert not loaded.public.verify(key.sign(b"payload"), b"other")


def test_older_pem_type_and_n_from_the_file_are_read() -> None:
    pem = keys.encrypt_private_key(keys.generate(), "pw", pem_type="ENCRYPTED COSIGN PRIVATE KEY")
    lines = pem.decode().strip().splitlines()
    document = json.loads(base64.b64decode("".join(lines[1:-1])))
    assert keys.decrypt_private_key(pem, "pw")
    # A key written with N=65536 (cosign 2.x) must be read with that N, not the one we write.
    document["kdf"]["params"]["N"] = 65536
    forged = "\n".join([lines[0], base64.b64encode(json.dumps(document).encode()).decode(), lines[-1]]).encode()
    with pytest.raises(SigningError, match="wrong passphrase"):
        keys.decrypt_private_key(forged, "pw")  # same ciphertext, other N: the derived key differs


def test_wrong_passphrase_and_garbage_are_clear_errors() -> None:
    pem = keys.encrypt_private_key(keys.generate(), "right")
    with pytest.raises(SigningError, match="wrong passphrase"):
        keys.decrypt_private_key(pem, "wrong")
    with pytest.raises(SigningError, match="not a PEM file"):
        keys.decrypt_private_key(b"hello", "x")
    with pytest.raises(SigningError, match="is not a cosign private key"):
        keys.decrypt_private_key(b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "x")


def test_simple_signing_payload_matches_cosign_bytes_and_ignores_tags() -> None:
    digest = "sha256:" + "a" * 64
    assert simple_signing_payload("r.example/app", digest) == (
        b'{"critical":{"identity":{"docker-reference":"r.example/app"},"image":{"docker-manifest-digest":"'
        + digest.encode()
        + b'"},"type":"cosign container image signature"},"optional":null}'
    )
    skopeo_style = simple_signing_payload("127.0.0.1:5000/a/app:1.0", digest)
    claims = parse_simple_signing(skopeo_style)
    assert claims.repository == "127.0.0.1:5000/a/app" and claims.digest == digest
    with pytest.raises(ValueError):
        parse_simple_signing(b'{"critical":{"type":"other"}}')
    with pytest.raises(ValueError):
        parse_in_toto(b"[]")
