"""Two real ``sentinelle serve`` processes sharing one database.

What a platform running several instances relies on, checked end to end with
real processes (uvicorn on loopback), a real database (a fresh SQLite file and a
fresh PostgreSQL schema, from the ``db_url`` fixture) and a real webhook
receiver:

* both instances start *at the same time* on an empty database: the Alembic
  migrations run once, safely, and both come up ready;
* a bank entry added through instance A matches through instance B within 5 s,
  and its deletion reaches B within 5 s (each instance follows the change log);
* 50 background webhook jobs are each delivered exactly once across both
  instances (the receiver counts deliveries per job id).
"""

from __future__ import annotations

import http.server
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
PROPAGATION_S = 5.0
N_JOBS = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLE_")}
    env.update(
        SENTINELLE_DATABASE_URL=db_url,
        SENTINELLE_LOG_LEVEL="WARNING",
        SENTINELLE_SYNC_INTERVAL_S="0.5",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def run_cli(db_url: str, *args: str) -> str:
    """Run ``sentinelle ARGS`` and return its stdout (fails the test on error)."""
    p = subprocess.run(
        [sys.executable, "-m", "sentinelle.cli.main", *args],
        env=cli_env(db_url),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert p.returncode == 0, f"sentinelle {' '.join(args)} failed: {p.stderr}"
    return p.stdout


@dataclass
class Instance:
    """One ``sentinelle serve`` child process."""

    name: str
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def start_instance(name: str, db_url: str, tmp: Path) -> Instance:
    port = free_port()
    log = tmp / f"{name}.log"
    fh = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentinelle.cli.main", "serve", "--port", str(port)],
        env=cli_env(db_url),
        stdout=fh,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    fh.close()
    return Instance(name, port, proc, log)


def stop_instance(inst: Instance) -> None:
    if inst.proc.poll() is None:
        inst.proc.terminate()
        try:
            inst.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            inst.proc.kill()
            inst.proc.wait(timeout=10)


def wait_healthy(inst: Instance, deadline: float) -> None:
    while time.monotonic() < deadline:
        if inst.proc.poll() is not None:
            pytest.fail(f"instance {inst.name} exited ({inst.proc.returncode}):\n{inst.output()}")
        try:
            if httpx.get(f"{inst.base}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"instance {inst.name} did not become healthy:\n{inst.output()}")


class Receiver:
    """A real HTTP webhook receiver counting deliveries per job id."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.instances: Counter[str] = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                with outer.lock:
                    outer.counts[self.headers.get("X-Sentinelle-Delivery", "?")] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture()
def two_instances(db_url: str, tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    """Instances A and B started together on the same, empty database."""
    a = start_instance("A", db_url, tmp_path)
    b = start_instance("B", db_url, tmp_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        wait_healthy(a, deadline)
        wait_healthy(b, deadline)
        yield a, b
    finally:
        stop_instance(a)
        stop_instance(b)
    for inst in (a, b):
        assert inst.proc.returncode is not None  # no leaked process


def key_from_cli(db_url: str, name: str, *scopes: str) -> str:
    args = ["key", "create", name]
    for s in scopes:
        args += ["--scope", s]
    out = run_cli(db_url, *args).strip().splitlines()
    token = out[-1].strip()
    assert token.startswith("snt_"), out
    return token


def poll(fn, timeout_s: float, interval_s: float = 0.1):  # type: ignore[no-untyped-def]
    """Call ``fn`` until it returns a truthy value; returns (value, seconds) or fails."""
    start = time.monotonic()
    while True:
        v = fn()
        if v:
            return v, time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            return None, time.monotonic() - start
        time.sleep(interval_s)


def matches_on(client: httpx.Client, base: str, pdq: str) -> list[dict]:
    r = client.post(f"{base}/v1/match/hashes", json={"hashes": [{"type": "pdq", "hash": pdq}]})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["matches"]


def test_two_instances_share_one_database(
    db_url: str, two_instances: tuple[Instance, Instance], receiver: Receiver
) -> None:
    a, b = two_instances
    # Migrations ran exactly once: the schema is at the head revision, one row.
    from sqlalchemy import text

    from sentinelle.store.db import open_engine

    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1

        # Each instance gets its own key, made with the CLI.
        key_a = key_from_cli(db_url, "instance-a", "admin")
        key_b = key_from_cli(db_url, "instance-b", "scan")
        assert key_a != key_b
        ca = httpx.Client(headers={"Authorization": f"Bearer {key_a}"}, timeout=10)
        cb = httpx.Client(headers={"Authorization": f"Bearer {key_b}"}, timeout=10)

        with ca, cb:
            for c, inst in ((ca, a), (cb, b)):
                r = c.get(f"{inst.base}/v1/ready")
                assert r.status_code == 200, r.text
                assert r.json()["status"] == "ready"
            ids = {ca.get(f"{a.base}/v1/ready").json()["instance"]}
            ids.add(cb.get(f"{b.base}/v1/ready").json()["instance"])
            assert len(ids) == 2  # two distinct processes

            # ---- a bank change made through A reaches B within 5 s
            r = ca.post(f"{a.base}/v1/banks", json={"name": "shared"})
            assert r.status_code == 201, r.text
            pdq = secrets.token_hex(32)
            assert matches_on(cb, b.base, pdq) == []
            r = ca.post(
                f"{a.base}/v1/banks/shared/entries",
                json={"signal_type": "pdq", "hash": pdq, "category": "test"},
            )
            assert r.status_code == 201, r.text
            entry_id = r.json()["ids"][0]
            got, secs = poll(lambda: matches_on(cb, b.base, pdq), PROPAGATION_S)
            assert got, f"entry added on A not matched on B after {secs:.1f} s"
            assert got[0]["bank"] == "shared"

            r = ca.delete(f"{a.base}/v1/entries/{entry_id}")
            assert r.status_code == 200, r.text
            gone, secs = poll(lambda: matches_on(cb, b.base, pdq) == [], PROPAGATION_S)
            assert gone, f"deletion on A still matched on B after {secs:.1f} s"

            # ---- 50 background jobs, each run exactly once across both instances
            from sentinelle.actions.config import set_actions
            from sentinelle.jobs import queue

            set_actions(
                engine, "shared", webhook_urls=[receiver.url], webhook_secret=secrets.token_hex(16)
            )
            job_ids = [
                queue.enqueue(
                    engine,
                    "webhook",
                    {
                        "bank": "shared",
                        "url": receiver.url,
                        "event": {"id": f"ev{i}", "type": "match", "matches": []},
                    },
                )
                for i in range(N_JOBS)
            ]

            def all_done() -> bool:
                return all(
                    (j := queue.get_job(engine, i)) is not None and j.status == "done"
                    for i in job_ids
                )

            done, secs = poll(all_done, 40, 0.25)
            states = Counter(queue.get_job(engine, i).status for i in job_ids)  # type: ignore[union-attr]
            assert done, f"jobs not all done after {secs:.0f} s: {dict(states)}"
            time.sleep(1.0)  # a duplicate delivery would show up now
            with receiver.lock:
                counts = dict(receiver.counts)
            assert sorted(counts) == sorted(str(i) for i in job_ids)
            dupes = {k: v for k, v in counts.items() if v != 1}
            assert not dupes, f"jobs delivered more than once: {dupes}"
            # Both still ready afterwards.
            for c, inst in ((ca, a), (cb, b)):
                assert c.get(f"{inst.base}/v1/ready").status_code == 200
    finally:
        engine.dispose()
    for inst in (a, b):
        assert inst.proc.poll() is None, f"{inst.name} died:\n{inst.output()}"
