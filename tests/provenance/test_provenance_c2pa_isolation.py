"""The native C2PA reader runs in killable worker processes: a hang or crash is bounded.

Everything is real: worker processes started with ``python -m``, a reader injected through
the worker's ``--reader`` hook that really sleeps forever (or really dies) inside the
worker, SIGKILL, the shared C2PA fixtures, and the service's ``POST /v1/provenance``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sentinelle.provenance import analyze_bytes
from sentinelle.provenance.c2pa_isolation import (
    ReaderCrashed,
    ReaderFailed,
    ReaderPool,
    ReaderTimeout,
    use_pool,
)
from sentinelle.provenance.c2pa_reader import read_store, read_store_json
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "provenance" / "c2pa-rs-fixtures"
OCSP = FIXTURES / "sdk_tests_fixtures_ocsp.jpg"
PLAIN = FIXTURES / "sdk_tests_fixtures_no_manifest.jpg"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures missing")

#: A hung read must come back within the deadline plus this much (kill + reap + slack for
#: a loaded 2-core CI machine). A correctness bound, not a performance figure.
SLACK_S = 20.0

HOSTILE_READER = """
import os, time
from sentinelle.provenance.c2pa_reader import read_store_json

def read(data, pem):
    if data.startswith(b"HANG"):
        while True:          # a native hang looks like this from outside: no answer, ever
            time.sleep(3600)
    if data.startswith(b"DIE"):
        os._exit(7)          # the native library aborting the process
    if data.startswith(b"ENV"):
        import json
        return json.dumps({"env": sorted(os.environ)})
    return read_store_json(data, pem)
"""


@pytest.fixture()
def hostile(tmp_path: Path) -> Iterator[ReaderPool]:
    (tmp_path / "hostile_reader.py").write_text(HOSTILE_READER)
    pool = ReaderPool(
        size=1, timeout_s=2.0, reader="hostile_reader:read", extra_path=[str(tmp_path)]
    )
    yield pool
    pool.close()


def _store(text: str | None) -> dict:
    assert text is not None
    return json.loads(text)  # key order of c2pa's JSON varies between reads


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_hanging_reader_is_killed_and_replaced(hostile: ReaderPool) -> None:
    ocsp = OCSP.read_bytes()
    assert _store(hostile.read(ocsp)) == _store(read_store_json(ocsp))  # same as in-process
    (pid,) = hostile.pids()
    t0 = time.monotonic()
    with pytest.raises(ReaderTimeout):
        hostile.read(b"HANG" + bytes(100))
    elapsed = time.monotonic() - t0
    assert 2.0 <= elapsed < 2.0 + SLACK_S
    assert not _alive(pid), "the hung worker must really be killed"
    assert hostile.killed == 1 and hostile.pids() == []
    # the next read starts a fresh worker and works
    assert _store(hostile.read(ocsp)) == _store(read_store_json(ocsp))
    (pid2,) = hostile.pids()
    assert pid2 != pid and _alive(pid2)


def test_a_dying_reader_is_reported_and_replaced(hostile: ReaderPool) -> None:
    with pytest.raises(ReaderCrashed):
        hostile.read(b"DIE")
    assert hostile.pids() == []
    assert hostile.read(PLAIN.read_bytes()) is None


def test_reader_errors_cross_the_process_boundary(hostile: ReaderPool) -> None:
    with pytest.raises(ReaderFailed) as e:
        hostile.read((FIXTURES / "sdk_tests_fixtures_no_alg.jpg").read_bytes())
    assert e.value.is_c2pa and e.value.message
    assert len(hostile.pids()) == 1  # a reader error keeps the worker


def test_waiting_for_a_busy_worker_is_bounded_too(hostile: ReaderPool) -> None:
    """size=1: a second request behind a hung one gets an answer, not an endless wait."""
    errors: list[BaseException] = []

    def hang() -> None:
        try:
            hostile.read(b"HANG", timeout_s=3.0)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=hang)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    with pytest.raises(ReaderTimeout):
        hostile.read(PLAIN.read_bytes(), timeout_s=1.0)
    assert time.monotonic() - t0 < 1.0 + SLACK_S
    t.join(3.0 + SLACK_S)
    assert not t.is_alive() and isinstance(errors[0], ReaderTimeout)
    assert hostile.read(PLAIN.read_bytes()) is None  # and the pool recovers


def test_analysis_gets_an_error_item_and_the_other_sources_still_run(
    hostile: ReaderPool,
) -> None:
    jpeg = PLAIN.read_bytes()
    data = b"HANG" + jpeg  # not a JPEG any more, still bytes every source gets
    t0 = time.monotonic()
    with use_pool(hostile):
        r = analyze_bytes(data, options={"c2pa_timeout_s": 1.0})
    assert time.monotonic() - t0 < 1.0 + SLACK_S
    item = next(e for e in r.evidence if e.source == "c2pa")
    assert item.indicates == "error" and item.details["code"] == "c2pa_timeout"
    assert "killed" in item.finding
    assert r.verdict == "no_evidence" and r.confidence == pytest.approx(0.5)


def test_default_path_is_isolated_and_matches_in_process(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = OCSP.read_bytes()
    assert read_store(data) == read_store(data, isolated=False)
    monkeypatch.setenv("SENTINELLE_C2PA_ISOLATION", "0")
    assert read_store(data) == read_store(data, isolated=True)


def test_service_request_with_a_hanging_reader_returns_in_bounded_time(
    hostile: ReaderPool, db_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SENTINELLE_C2PA_TIMEOUT_S", "1.5")
    app = create_app(Settings(database_url=db_url, key_cache_s=0.0, rate_limit=0.0))
    _, key = create_key(app.state.sentinelle.engine, "scanner", ["scan"])
    hostile.timeout_s = 1.5
    with TestClient(app) as client, use_pool(hostile):
        t0 = time.monotonic()
        r = client.post(
            "/v1/provenance",
            content=b"HANG" + PLAIN.read_bytes(),
            headers={"Authorization": f"Bearer {key}"},
        )
        assert time.monotonic() - t0 < 1.5 + SLACK_S
        assert r.status_code == 200, r.text
        codes = [e["details"].get("code") for e in r.json()["evidence"] if e["source"] == "c2pa"]
        assert codes == ["c2pa_timeout"]
        # the service keeps answering: the next upload gets a fresh worker
        r = client.post(
            "/v1/provenance", content=OCSP.read_bytes(), headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == 200 and r.json()["verdict"] == "ai_edited"


def test_workers_inherit_no_secrets(hostile: ReaderPool, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The worker parses hostile bytes: it must not hold the master key or database URL."""
    monkeypatch.setenv("SENTINELLE_MASTER_KEY", "c2VjcmV0")
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", "postgresql://u:p@db/prod")
    env = _store(hostile.read(b"ENV"))["env"]
    assert not [k for k in env if k.startswith("SENTINELLE_")], env
    assert "PYTHONPATH" in env and "PATH" in env
