"""Shared set-up for the review console tests (pages via TestClient, browser via Playwright).

:func:`build_console` makes a real service on a real database with:

* four users, one per role (password :data:`PASSWORD`);
* a bank ``known`` holding one benign photo (Kodak set, ``../shared``);
* a case for platform account ``acct-42`` built the way production builds one:
  a JPEG copy of the photo is matched against the bank, the match is recorded
  with :func:`sentinelle.review.intake.record_signal` and the bytes are stored
  encrypted (:class:`sentinelle.evidence.EvidenceStore`); plus a guard block, a
  provenance verdict, and a benign video clip (``../shared`` vPDQ conformance
  set) as a second media item.

Everything benign; nothing written in the clear.
"""

from __future__ import annotations

import base64
import io
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from sentinelle.banks import BankStore
from sentinelle.console.demo import attach_media, file_match_for_review
from sentinelle.evidence import EvidenceStore, load_master_key
from sentinelle.formats.enroll import entries_from_paths
from sentinelle.review import accounts
from sentinelle.review.intake import record_signal
from sentinelle.service.app import create_app
from sentinelle.service.settings import Settings

PASSWORD = "a long demo passphrase"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PHOTO = SHARED / "corpora" / "photos" / "kodak24" / "kodim03.png"
VIDEO = SHARED / "conformance" / "vpdq" / "videos" / "chair-19-sd-bar.mp4"
XSD = SHARED / "schemas" / "cyber_tipline.xsd"
ACCOUNT = "acct-42"


@dataclass
class ConsoleWorld:
    app: Any
    engine: Any
    case_id: int
    match_item: int
    guard_item: int
    video_item: int
    photo_jpeg: bytes
    users: dict[str, accounts.User]


def console_env(monkeypatch: Any) -> None:
    """Master key, reporter address and XSD for this test (environment only).

    Also swaps in cheap argon2 parameters (the parameters travel inside each hash,
    so verification is unchanged): the defaults cost ~0.5 s a hash on a busy CI
    machine, and every test creates five users and logs in.
    """
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setenv("SENTINELLE_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.delenv("SENTINELLE_MASTER_KEY_FILE", raising=False)
    monkeypatch.setenv("SENTINELLE_REPORTER_EMAIL", "reports@example.org")
    monkeypatch.setenv("SENTINELLE_CYBERTIP_XSD", str(XSD))


def jpeg_copy(path: Path, quality: int = 80) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def build_console(db_url: str, tmp_path: Path) -> ConsoleWorld:
    """The service plus users, bank and the demo-like case (env set by :func:`console_env`)."""
    assert os.environ.get("SENTINELLE_MASTER_KEY"), "call console_env(monkeypatch) first"
    app = create_app(Settings(database_url=db_url), start_background=False)
    state = app.state.sentinelle
    engine = state.engine
    users = {
        role: accounts.create_user(engine, name, PASSWORD, role, display_name=name.title())
        for role, name in (
            ("reviewer", "rita"),
            ("specialist", "sam"),
            ("legal", "lena"),
            ("admin", "adam"),
        )
    }
    users["reviewer2"] = accounts.create_user(engine, "remy", PASSWORD, "reviewer")
    store = BankStore(engine)
    store.create_bank("known", description="benign test bank")
    entries, failed = entries_from_paths([PHOTO], category="test", source_org="tests")
    assert not failed
    store.add_entries("known", entries)
    state.matcher.refresh()

    photo = jpeg_copy(PHOTO)
    filed = file_match_for_review(
        engine, state.matcher, photo, account_id=ACCOUNT, media_type="image/jpeg"
    )
    assert filed is not None, "the JPEG copy must match the banked photo"
    case_id, match_item = filed
    _, guard_item = record_signal(
        engine,
        account_id=ACCOUNT,
        kind="guard_block",
        summary={
            "categories": {"minor_sexual": 0.97},
            "prompt_sha256": "cd" * 32,
            "policy_id": "default-v1",
        },
    )
    _, video_item = record_signal(
        engine,
        account_id=ACCOUNT,
        kind="provenance",
        summary={"verdict": "no_evidence", "confidence": 0.2},
    )
    blob = EvidenceStore(engine, load_master_key(os.environ)).put(
        case_id, VIDEO.read_bytes(), media_type="video/mp4", filename=None, actor="system"
    )
    attach_media(engine, video_item, blob)
    return ConsoleWorld(app, engine, case_id, match_item, guard_item, video_item, photo, users)


def login_csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def page_csrf(html: str) -> str:
    m = re.search(r'"X-CSRF-Token": "([0-9a-f]{64})"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)
