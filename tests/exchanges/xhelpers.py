"""Helpers shared by the exchange tests."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

#: the fixed epoch of the NCMEC tests' clock (see the ``ncmec_clock`` fixture)
T0 = 1_700_000_000


def md5(i: int, salt: str = "benign") -> str:
    """A benign, deterministic MD5 hex digest for test record ``i``."""
    return hashlib.md5(f"{salt}-{i}".encode()).hexdigest()


def pdq(i: int, salt: str = "benign") -> str:
    """A deterministic 64-hex value that is a valid PDQ hash for test record ``i``."""
    return hashlib.sha256(f"{salt}-{i}".encode()).hexdigest()


def bank_hashes(store: Any, bank: str) -> set[tuple[str, str]]:
    return {(e.signal_type, e.hash) for e in store.banks.iter_entries(bank)}


def secret_file(tmp_path: Path, text: str, name: str = "creds") -> Path:
    p = tmp_path / name
    p.write_text(text)
    os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)
    return p


def no_sleep(_s: float) -> None:
    return None
