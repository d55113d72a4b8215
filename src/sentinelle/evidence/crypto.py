"""Envelope encryption for evidence: AES-256-GCM under per-case data keys.

Key hierarchy::

    master key (32 bytes, from the environment or a file; never in the database)
      └─ wraps, per case, a random 32-byte data key (AES-256-GCM, AAD = case id)
           └─ encrypts each blob (AES-256-GCM, fresh 96-bit nonce,
                                  AAD = case id + blob id + media type)

The associated data binds every ciphertext to its place: a wrapped key moved to
another case, or a blob moved to another case or row, fails authentication
instead of decrypting. Destroying a case deletes its wrapped data key
(crypto-shredding): any copy of the ciphertexts left in backups, WAL files or
free pages is unreadable even with the master key.

Plaintext only ever lives in memory; nothing here touches the file system except
:func:`load_master_key` reading the key file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import EvidenceError

MASTER_KEY_ENV = "SENTINELLE_MASTER_KEY"
MASTER_KEY_FILE_ENV = "SENTINELLE_MASTER_KEY_FILE"
KEY_BYTES = 32
NONCE_BYTES = 12
_WRAP_VERSION = b"\x01"


def generate_master_key() -> str:
    """A new random master key, base64-encoded (what ``sentinelle evidence keygen`` prints)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _decode_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        raw = base64.b64decode(
            text, altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True
        )
    except (binascii.Error, ValueError):
        raise EvidenceError(f"{where} is not valid base64", code="bad_master_key") from None
    if len(raw) != KEY_BYTES:
        raise EvidenceError(
            f"{where} must be base64 of {KEY_BYTES} bytes (got {len(raw)})",
            code="bad_master_key",
        )
    return raw


def load_master_key(env: Mapping[str, str] | None = None) -> bytes:
    """The 32-byte master key from ``SENTINELLE_MASTER_KEY`` (base64) or from the
    file named by ``SENTINELLE_MASTER_KEY_FILE`` (base64 text). Exactly one of
    them must be set."""
    env = os.environ if env is None else env
    inline = (env.get(MASTER_KEY_ENV) or "").strip()
    path = (env.get(MASTER_KEY_FILE_ENV) or "").strip()
    if inline and path:
        raise EvidenceError(
            f"set {MASTER_KEY_ENV} or {MASTER_KEY_FILE_ENV}, not both", code="bad_master_key"
        )
    if inline:
        return _decode_key(inline, MASTER_KEY_ENV)
    if path:
        try:
            text = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as e:
            raise EvidenceError(
                f"cannot read master key file {path}: {e.__class__.__name__}",
                code="bad_master_key",
            ) from None
        return _decode_key(text, f"master key file {path}")
    raise EvidenceError(
        f"no master key: set {MASTER_KEY_ENV} (base64 of 32 bytes) or {MASTER_KEY_FILE_ENV}; "
        "`sentinelle evidence keygen` makes one",
        code="no_master_key",
    )


def check_master_key(master: bytes) -> bytes:
    if not isinstance(master, bytes | bytearray) or len(master) != KEY_BYTES:
        raise EvidenceError(f"the master key must be {KEY_BYTES} bytes", code="bad_master_key")
    return bytes(master)


def master_key_id(master: bytes) -> str:
    """A public fingerprint of the master key (HMAC, reveals nothing of the key)."""
    return hmac.new(master, b"sentinelle master key id v1", hashlib.sha256).hexdigest()[:32]


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def _key_aad(case_id: int) -> bytes:
    return f"sentinelle-evidence-key:v1:case={int(case_id)}".encode()


def blob_aad(case_id: int, blob_id: int, media_type: str, part: str = "data") -> bytes:
    """Associated data that binds a ciphertext to its case, row and media type."""
    return (
        f"sentinelle-evidence-blob:v1:case={int(case_id)}:blob={int(blob_id)}"
        f":type={media_type}:part={part}"
    ).encode()


def wrap_key(master: bytes, data_key: bytes, case_id: int) -> bytes:
    """``version || nonce || AES-GCM(master, data_key, aad=case)``."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return _WRAP_VERSION + nonce + AESGCM(master).encrypt(nonce, data_key, _key_aad(case_id))


def unwrap_key(master: bytes, wrapped: bytes, case_id: int) -> bytes:
    if not wrapped or wrapped[:1] != _WRAP_VERSION or len(wrapped) < 1 + NONCE_BYTES + 16:
        raise EvidenceError(f"case {case_id}: malformed wrapped key", code="decrypt_failed")
    nonce, body = wrapped[1 : 1 + NONCE_BYTES], wrapped[1 + NONCE_BYTES :]
    try:
        return AESGCM(master).decrypt(nonce, body, _key_aad(case_id))
    except InvalidTag:
        raise EvidenceError(
            f"case {case_id}: the data key does not open with this master key "
            "(wrong key, or the wrapped key was altered or moved)",
            code="decrypt_failed",
        ) from None


def encrypt(data_key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext-with-tag) under a fresh random nonce."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce, AESGCM(data_key).encrypt(nonce, plaintext, aad)


def decrypt(data_key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(data_key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        raise EvidenceError(
            "evidence does not decrypt (altered, or moved from another case or row)",
            code="decrypt_failed",
        ) from None
