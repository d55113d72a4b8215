"""Helpers shared by the exchange tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any


def bank_hashes(store: Any, bank: str) -> set[tuple[str, str]]:
    return {(e.signal_type, e.hash) for e in store.banks.iter_entries(bank)}


def secret_file(tmp_path: Path, text: str, name: str = "creds") -> Path:
    p = tmp_path / name
    p.write_text(text)
    os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)
    return p


def no_sleep(_s: float) -> None:
    return None
