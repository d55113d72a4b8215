"""The console part of ``sentinelle serve --demo`` (``make run``).

:func:`setup_console_demo` makes the review console usable at once, with benign
material only:

1. demo settings for this process when none are configured: a master key for
   the encrypted evidence store (``<demo dir>/master.key``, mode 0600, exported
   as ``SENTINELLE_MASTER_KEY_FILE``), a reporting person's address for report
   drafts (``SENTINELLE_REPORTER_EMAIL=demo-reporter@example.org``) and the
   CyberTipline XSD for validation (``SENTINELLE_CYBERTIP_XSD``: the copy in
   ``../shared/schemas/`` when the checkout has one);
2. a demo reviewer account ``demo-reviewer`` (role ``specialist``: reviews,
   approves) with a fresh random password, printed once;
3. a demo case: an altered copy of a rendered benign scene is matched against
   the ``demo-known`` bank, the match is recorded for the platform account
   ``demo-account-001`` (:func:`sentinelle.review.intake.record_signal`), and
   the image is stored encrypted (:class:`sentinelle.evidence.EvidenceStore`)
   and attached to the item (:func:`sentinelle.review.media.preserve_media`).

Run again, it adds a new case only when the demo account has no open case, and
resets the demo reviewer's password (the new one is printed).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..review.media import attach_media

__all__ = ["DemoConsole", "attach_media", "file_match_for_review", "setup_console_demo"]

DEMO_USER = "demo-reviewer"
DEMO_ACCOUNT = "demo-account-001"


@dataclass(frozen=True)
class DemoConsole:
    username: str
    password: str
    case_id: int | None
    item_id: int | None
    note: str = ""


def prepare_demo_env(demo_dir: Path) -> None:
    """Fill the demo's settings into ``os.environ`` where none is configured."""
    from .reports import XSD_ENV

    ensure_master_key(demo_dir)
    os.environ.setdefault("SENTINELLE_REPORTER_EMAIL", "demo-reporter@example.org")
    if not os.environ.get(XSD_ENV):
        for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
            xsd = base.parent / "shared" / "schemas" / "cyber_tipline.xsd"
            if xsd.is_file():
                os.environ[XSD_ENV] = str(xsd)
                break


def ensure_master_key(demo_dir: Path) -> None:
    """Use the configured master key, or create one for the demo (never in production)."""
    from ..evidence.crypto import MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, generate_master_key

    if os.environ.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_FILE_ENV):
        return
    demo_dir.mkdir(parents=True, exist_ok=True)
    path = demo_dir / "master.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate_master_key() + "\n")
    os.environ[MASTER_KEY_FILE_ENV] = str(path.resolve())


def file_match_for_review(
    engine: sa.Engine, matcher: Any, data: bytes, *, account_id: str, media_type: str
) -> tuple[int, int] | None:
    """Hash ``data``, match it, and file the best match as a case item with its
    media stored encrypted. Returns ``(case_id, item_id)``, or None without a match."""
    from ..evidence import EvidenceStore, load_master_key
    from ..review.intake import record_signal
    from ..review.media import preserve_media
    from ..signals.hasher import hash_bytes

    result = hash_bytes(data)
    matches = matcher.match(result)
    if not matches:
        return None
    m = min(matches, key=lambda x: x.distance)
    case_id, item_id = record_signal(
        engine,
        account_id=account_id,
        kind="hash_match",
        summary={
            "bank": m.bank,
            "entry_id": int(m.entry_id),
            "distance": int(m.distance),
            "signal_type": m.signal,
            "hash": m.entry_hash,
        },
        media_sha256=hashlib.sha256(data).hexdigest(),
    )
    store = EvidenceStore(engine, load_master_key(os.environ))
    preserve_media(engine, store, case_id, [item_id], data, media_type=media_type)
    return case_id, item_id


def _open_demo_case(engine: sa.Engine) -> int | None:
    from ..review.tables import cases

    with engine.connect() as conn:
        return conn.execute(sa.select(cases.c.id).where(cases.c.open_key == DEMO_ACCOUNT)).scalar()


def setup_console_demo(engine: sa.Engine, matcher: Any, demo_dir: Path) -> DemoConsole:
    """Key, reviewer account and one demo case (see the module docstring)."""
    from ..review import accounts
    from ..review.errors import ReviewError

    prepare_demo_env(demo_dir)
    password = "-".join(secrets.token_hex(3) for _ in range(4))  # 27 chars, easy to type
    try:
        accounts.create_user(
            engine, DEMO_USER, password, "specialist", display_name="Demo reviewer", actor="cli"
        )
    except ReviewError as e:
        if e.code != "user_exists":
            raise
        accounts.set_password(engine, DEMO_USER, password, actor="cli")
        accounts.unlock(engine, DEMO_USER, actor="cli")
    existing = _open_demo_case(engine)
    if existing is not None:
        return DemoConsole(DEMO_USER, password, existing, None, "demo case already open")
    samples = sorted((demo_dir / "inbox").glob("copy-*.png"))
    for path in samples:
        filed = file_match_for_review(
            engine, matcher, path.read_bytes(), account_id=DEMO_ACCOUNT, media_type="image/png"
        )
        if filed is not None:
            return DemoConsole(DEMO_USER, password, filed[0], filed[1], path.name)
    return DemoConsole(DEMO_USER, password, None, None, "no demo image matched the bank")
