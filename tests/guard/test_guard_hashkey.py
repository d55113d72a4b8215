"""Keyed prompt hashes of the attempt log (HMAC-SHA256 under a per-installation key), on
SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sentinelle.guard.attempts import AttemptLog
from sentinelle.guard.config import GuardConfig, GuardConfigError
from sentinelle.guard.tables import guard_attempts, guard_hash_key
from sentinelle.store.db import open_engine

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CATS = {"minor_sexual": 1.0, "minor_nudity": 0.0, "minor_present": 1.0}
PROMPT = "term-level fixture prompt"
ENV_KEY = "k" * 40


def _block(log: AttemptLog, text: str = PROMPT, account: str | None = "acct") -> None:
    result = {"text": text, "decision": "block", "categories": CATS, "policy_id": "p"}
    assert log.record_prompt(result, account_id=account, now=T0) is not None


def _key_rows(engine) -> list[str]:
    with engine.connect() as c:
        return list(c.execute(select(guard_hash_key.c.secret)).scalars())


def test_stored_hash_is_an_hmac_under_the_database_key(engine) -> None:
    assert _key_rows(engine) == []  # created on first use, not by the migration
    log = AttemptLog(engine, GuardConfig())
    _block(log)
    [secret] = _key_rows(engine)
    assert len(bytes.fromhex(secret)) == 32
    [row] = log.attempts()
    expected = hmac.new(bytes.fromhex(secret), PROMPT.encode(), hashlib.sha256).hexdigest()
    assert row["prompt_sha256"] == expected
    assert row["prompt_sha256"] != hashlib.sha256(PROMPT.encode()).hexdigest()


def test_same_prompt_groups_across_log_instances(engine) -> None:
    first, second = AttemptLog(engine, GuardConfig()), AttemptLog(engine, GuardConfig())
    _block(first)
    _block(second)  # a second process of the same installation
    _block(second, "another fixture prompt")
    rows = first.attempts()
    hashes = [r["prompt_sha256"] for r in reversed(rows)]
    assert hashes[0] == hashes[1] != hashes[2]
    assert first.prompt_digest(PROMPT) == second.prompt_digest(PROMPT) == hashes[0]
    assert len(_key_rows(engine)) == 1


def test_operator_key_from_the_environment(engine) -> None:
    cfg = GuardConfig.from_env({"SENTINELLE_GUARD_HASH_KEY": f"  {ENV_KEY}\n"})
    assert cfg.hash_key == ENV_KEY.encode() and ENV_KEY not in repr(cfg)
    log = AttemptLog(engine, cfg)
    _block(log)
    [row] = log.attempts()
    assert row["prompt_sha256"] == hmac.new(ENV_KEY.encode(), PROMPT.encode(), "sha256").hexdigest()
    assert _key_rows(engine) == []  # the operator's key is never written to the database


@pytest.mark.parametrize("bad", ["short", "x" * 31])
def test_short_operator_key_is_refused(bad: str) -> None:
    with pytest.raises(GuardConfigError) as ei:
        GuardConfig.from_env({"SENTINELLE_GUARD_HASH_KEY": bad})
    assert ei.value.code == "bad_guard_config"
    assert bad not in str(ei.value)  # the secret is not echoed in the error


def test_installations_get_different_keys(tmp_path: Path) -> None:
    digests = []
    for name in ("a", "b"):
        eng = open_engine(f"sqlite:///{tmp_path / name}.db")
        try:
            digests.append(AttemptLog(eng, GuardConfig()).prompt_digest(PROMPT))
        finally:
            eng.dispose()
    assert digests[0] != digests[1]


def test_concurrent_first_use_agrees_on_one_key(engine) -> None:
    out: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def work() -> None:
        try:
            start.wait()
            out.append(AttemptLog(engine, GuardConfig()).prompt_digest(PROMPT))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(out) == 6 and len(set(out)) == 1
    assert len(_key_rows(engine)) == 1


def test_no_plain_prompt_hash_anywhere_in_the_database(engine) -> None:
    """Neither the attempt row nor the review case summary holds the plain SHA-256."""
    log = AttemptLog(engine, GuardConfig())
    _block(log)
    plain = hashlib.sha256(PROMPT.encode()).hexdigest()
    digest = log.prompt_digest(PROMPT)
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(guard_attempts)).scalar_one() == 1
        stored = " ".join(str(v) for v in c.execute(select(guard_attempts)).one())
        assert plain not in stored and PROMPT not in stored and digest in stored
        try:
            from sentinelle.review.tables import case_items
        except ImportError:
            return
        summaries = [json.loads(s) for s in c.execute(select(case_items.c.summary)).scalars()]
    blocks = [s for s in summaries if "prompt_sha256" in s]
    assert blocks and all(s["prompt_sha256"] == digest for s in blocks)
