"""Validation and conversion of hash strings (hex) to and from bit arrays."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidHashError
from .signal_types import find_signal_type


def normalize_hash(signal_type: str, value: str) -> str:
    """Return the lowercase hex form of ``value`` or raise :class:`InvalidHashError`
    (the rules are the signal type's: :meth:`SignalType.validate`)."""
    st = find_signal_type(signal_type)
    if st is None:
        raise InvalidHashError(f"unknown signal type {signal_type!r}")
    return st.validate(value)


def pdq_hex_to_bytes(hex_hash: str) -> np.ndarray:
    """One PDQ hex string -> uint8 array of shape (32,), big-endian."""
    return np.frombuffer(bytes.fromhex(hex_hash), dtype=np.uint8).copy()


def pdq_hexes_to_array(hexes: list[str]) -> np.ndarray:
    """PDQ hex strings -> uint8 array of shape (n, 32)."""
    if not hexes:
        return np.zeros((0, 32), dtype=np.uint8)
    buf = bytes.fromhex("".join(hexes))
    return np.frombuffer(buf, dtype=np.uint8).reshape(len(hexes), 32).copy()


def pdq_bytes_to_hex(row: np.ndarray) -> str:
    return bytes(np.asarray(row, dtype=np.uint8)).hex()


def pdq_bits_to_hex(bits: np.ndarray) -> str:
    """256 0/1 values as returned by ``pdqhash.compute`` -> hex (as the reference prints)."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def hamming_hex(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
