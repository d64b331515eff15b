"""Cosign-compatible key pairs: ECDSA P-256, the private key encrypted with scrypt + NaCl secretbox.

The private key file is PEM whose body is base64 of compact JSON
`{"kdf":{"name":"scrypt","params":{"N":..,"r":8,"p":1},"salt":..},"cipher":{"name":"nacl/secretbox",
"nonce":..},"ciphertext":..}` over the PKCS#8 DER of the key (secretbox output without the nonce).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.errors import ConfigError, SigningError
from pipeline.files import read_regular_file

PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
WRITE_N = 32768  # every reader accepts it; cosign 2.x writes 65536, and we read N from the file
SCRYPT_R, SCRYPT_P = 8, 1
MAX_N = 1 << 20


@dataclass(frozen=True)
class SigningKey:
    private: ec.EllipticCurvePrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.private.public_key())

    def sign(self, payload: bytes) -> bytes:
        """ECDSA-SHA256, DER-encoded (what cosign and skopeo write and expect)."""
        return self.private.sign(payload, ec.ECDSA(hashes.SHA256()))


@dataclass(frozen=True)
class PublicKey:
    key: ec.EllipticCurvePublicKey

    def verify(self, signature: bytes, payload: bytes) -> bool:
        try:
            self.key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def key_id(self) -> str:
        """A short stable name for messages: sha256 of the DER public key."""
        der = self.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def generate() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()))


def _scrypt(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encrypt_private_key(key: SigningKey, passphrase: str, pem_type: str = PEM_TYPES[0]) -> bytes:
    der = key.private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, nonce = os.urandom(32), os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_scrypt(passphrase.encode(), salt, WRITE_N, SCRYPT_R, SCRYPT_P))
    ciphertext = box.encrypt(der, nonce).ciphertext
    document = {
        "kdf": {"name": "scrypt", "params": {"N": WRITE_N, "r": SCRYPT_R, "p": SCRYPT_P}, "salt": _b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
        "ciphertext": _b64(ciphertext),
    }
    body = base64.encodebytes(json.dumps(document, separators=(",", ":")).encode()).decode()
    return f"-----BEGIN {pem_type}-----\n{body}-----END {pem_type}-----\n".encode()


def _pem_body(text: str, source: str) -> tuple[str, bytes]:
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN ") or not lines[-1].startswith("-----END "):
        raise SigningError(f"{source}: not a PEM file")
    pem_type = lines[0][len("-----BEGIN ") : -len("-----")]
    try:
        return pem_type, base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        raise SigningError(f"{source}: the PEM body is not base64") from None


def decrypt_private_key(data: bytes, passphrase: str, source: str = "private key") -> SigningKey:
    pem_type, body = _pem_body(data.decode("ascii", errors="replace"), source)
    if pem_type not in PEM_TYPES:
        raise SigningError(f"{source}: PEM type '{pem_type}' is not a cosign private key ({' or '.join(PEM_TYPES)})")
    try:
        document = json.loads(body)
        kdf, cipher = document["kdf"], document["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(cipher["nonce"])
        ciphertext = base64.b64decode(document["ciphertext"])
    except (ValueError, KeyError, TypeError):
        raise SigningError(f"{source}: not a cosign encrypted key document") from None
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise SigningError(f"{source}: unsupported kdf/cipher {kdf.get('name')}/{cipher.get('name')}")
    if not (1 < n <= MAX_N and n & (n - 1) == 0):
        raise SigningError(f"{source}: scrypt N={n} is not a power of two up to {MAX_N}")
    box = nacl.secret.SecretBox(_scrypt(passphrase.encode(), salt, n, r, p))
    try:
        der = box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise SigningError(f"{source}: wrong passphrase (or a corrupted key file)") from None
    private = serialization.load_der_private_key(der, password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(private.curve, ec.SECP256R1):
        raise SigningError(f"{source}: only ECDSA P-256 keys are supported")
    return SigningKey(private)


def load_public_key(data: bytes, source: str = "public key") -> PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise SigningError(f"{source}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SigningError(f"{source}: only ECDSA public keys are supported")
    return PublicKey(key)


def read_private_key(path: Path, passphrase: str) -> SigningKey:
    try:
        data = read_regular_file(path, "signing key")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the signing key: {exc.strerror}") from None
    return decrypt_private_key(data, passphrase, str(path))


def read_public_key(path: Path) -> PublicKey:
    try:
        data = read_regular_file(path, "public key")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the public key: {exc.strerror}") from None
    return load_public_key(data, str(path))


def write_key_pair(prefix: Path, key: SigningKey, passphrase: str, overwrite: bool = False) -> tuple[Path, Path]:
    private_path, public_path = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    for path in (private_path, public_path):
        if path.exists() and not overwrite:
            raise ConfigError(f"{path} already exists; refusing to overwrite a key (use --force)")
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True)  # `--output-prefix keys/release` in a fresh checkout
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(encrypt_private_key(key, passphrase))
        public_path.write_bytes(key.public.pem())
    except OSError as exc:
        raise ConfigError(f"{prefix}: cannot write the key pair: {exc.strerror or exc}") from None
    return private_path, public_path
