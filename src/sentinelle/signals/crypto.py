"""Cryptographic hashes (MD5, SHA-1, SHA-256) of a file's original bytes.

These match byte-identical copies only, but they are what many hash lists
(NCMEC, industry sharing) contain. They are computed from the bytes exactly as
stored, never from decoded pixels, so they are reported even for files that
fail to decode.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

from .types import CRYPTO_SIGNALS, HashSignal

CHUNK_BYTES = 1024 * 1024


def _hashers(names: Collection[str]) -> dict[str, hashlib._Hash]:
    # usedforsecurity=False: these are content identifiers, and FIPS builds of
    # OpenSSL would otherwise refuse MD5.
    return {n: hashlib.new(n, usedforsecurity=False) for n in CRYPTO_SIGNALS if n in names}


def crypto_hashes_bytes(data: bytes, names: Collection[str] = CRYPTO_SIGNALS) -> list[HashSignal]:
    """Hash in-memory ``data`` with each requested algorithm (in ``CRYPTO_SIGNALS`` order)."""
    hs = _hashers(names)
    for h in hs.values():
        h.update(data)
    return [HashSignal(n, h.hexdigest()) for n, h in hs.items()]


def crypto_hashes_stream(
    fh: BinaryIO, names: Collection[str] = CRYPTO_SIGNALS, chunk: int = CHUNK_BYTES
) -> tuple[list[HashSignal], int]:
    """Hash a binary stream in chunks; returns the signals and the byte count read."""
    hs = _hashers(names)
    total = 0
    while True:
        block = fh.read(chunk)
        if not block:
            break
        total += len(block)
        for h in hs.values():
            h.update(block)
    return [HashSignal(n, h.hexdigest()) for n, h in hs.items()], total


def crypto_hashes_file(
    path: str | Path, names: Collection[str] = CRYPTO_SIGNALS
) -> list[HashSignal]:
    """Hash a file in chunks without loading it whole (raises ``OSError`` on I/O failure)."""
    with open(path, "rb") as fh:
        return crypto_hashes_stream(fh, names)[0]
