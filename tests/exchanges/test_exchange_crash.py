"""Crash safety and exclusivity of fetches.

* ``kill -9`` of a fetching process at 20 random points: after a final resume the
  bank equals the bank of one clean fetch (no entry lost, none duplicated,
  every deletion applied), because each page and its checkpoint commit together.
* Two fetchers of one exchange on one database (two threads with their own
  owner ids, as two instances would be): exactly one fetches.
* The worker's scheduler queues one fetch job per due exchange.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ncmec_server import Event, ListSource, NCMECServer
from xhelpers import bank_hashes, no_sleep, secret_file

from sentinelle.exchanges import runner
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.store import ExchangeStore
from sentinelle.exchanges.transport import HttpTransport

T0 = 1_700_000_000
REPO = Path(__file__).resolve().parents[2]

CHILD = """
import sys
from sentinelle.exchanges.runner import run_fetch
def page(r):
    print("page", flush=True)
out = run_fetch(sys.argv[1], "ncmec", lease_s=1.0, on_page=page)
print("done", out.error, out.up_to_date, flush=True)
"""


def md5(i: int) -> str:
    return hashlib.md5(f"pebble-{i}".encode()).hexdigest()


def stream(n: int = 400, deletions: int = 60) -> list[Event]:
    evs = [Event(T0 + i, "42", f"e{i}", fingerprints={"md5": md5(i)}) for i in range(n)]
    evs += [Event(T0 + n + 10 + i, "42", f"e{i * 5}", deleted=True) for i in range(deletions)]
    return evs


class SlowNCMEC(NCMECServer):
    def handle(self, req):  # type: ignore[no-untyped-def]
        time.sleep(0.01)
        return super().handle(req)


def setup(store: ExchangeStore, srv: NCMECServer, tmp: Path, name: str = "ncmec") -> None:
    path = secret_file(tmp, f"{srv.username}:{srv.password}", f"{name}.creds")
    store.add(
        name,
        "ncmec",
        config={"base_url": srv.url, "start_time": T0 - 10},
        credential_ref=make_ref(file=path),
    )


def expected() -> set[tuple[str, str]]:
    return {("md5", md5(i)) for i in range(400) if not (i % 5 == 0 and i // 5 < 60)}


@pytest.mark.slow
def test_kill_9_at_20_random_points_loses_and_duplicates_nothing(xstore, db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(11)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with SlowNCMEC(ListSource(stream()), page_size=15) as srv:
        setup(xstore, srv, tmp_path)
        kills = 0
        while kills < 20:
            proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, db_url],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            wait_pages = rng.randint(0, 3)
            seen, finished = 0, False
            while seen <= wait_pages:
                line = proc.stdout.readline()
                if not line or line.startswith("done"):
                    finished = True
                    break
                seen += 1
            if finished:
                proc.wait(timeout=30)
                break
            time.sleep(rng.uniform(0, 0.03))  # somewhere inside the next page
            proc.kill()  # SIGKILL
            proc.wait(timeout=30)
            kills += 1
            time.sleep(1.05)  # the dead fetcher's lease (1 s) expires
        assert kills >= 10, f"the fetch ended after only {kills} kills"
        with HttpTransport(sleep=no_sleep) as http:
            out = runner.run_fetch(xstore, "ncmec", http=http, lease_s=1.0)
        assert out.error is None and out.up_to_date
        assert bank_hashes(xstore, "ncmec") == expected()
        assert xstore.record_count("ncmec") == len(expected())
        # the clean fetch of the same stream into a second exchange gives the same bank
        setup(xstore, srv, tmp_path, "clean")
        with HttpTransport(sleep=no_sleep) as http:
            runner.run_fetch(xstore, "clean", http=http)
        assert bank_hashes(xstore, "clean") == bank_hashes(xstore, "ncmec")


def test_two_fetchers_of_one_exchange_fetch_it_once(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with SlowNCMEC(ListSource(stream()), page_size=15) as srv:
        setup(xstore, srv, tmp_path)
        outs = []
        barrier = threading.Barrier(2)

        def go(owner: str) -> None:
            with HttpTransport(sleep=no_sleep) as http:
                barrier.wait()
                outs.append(
                    runner.run_fetch(ExchangeStore(xstore.engine), "ncmec", owner=owner, http=http)
                )

        threads = [threading.Thread(target=go, args=(f"instance-{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        ran = [o for o in outs if o.ran]
        skipped = [o for o in outs if not o.ran]
        assert len(ran) == 1 and len(skipped) == 1
        assert skipped[0].error_code == "fetch_running"
        assert ran[0].error is None and bank_hashes(xstore, "ncmec") == expected()
        first = srv.entry_requests
        with HttpTransport(sleep=no_sleep) as http:
            solo = runner.run_fetch(xstore, "ncmec", http=http)  # up to date already
        assert solo.counts.entries_added == 0
        assert first > 0


def test_scheduler_queues_due_fetches_once(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from sentinelle.jobs import queue, worker

    with NCMECServer(ListSource(stream(30, 0))) as srv:
        setup(xstore, srv, tmp_path)
        state = SimpleNamespace(engine=xstore.engine, instance_id="test")
        first = runner.schedule_due(state)
        assert len(first) == 1 and runner.schedule_due(state) == first  # deduplicated
        runner.register()
        assert worker.run_once(state, kinds=[runner.FETCH_JOB])
        job = queue.get_job(xstore.engine, first[0])
        assert job.status == "done" and job.result["up_to_date"] is True
        assert len(bank_hashes(xstore, "ncmec")) == 30
        assert runner.schedule_due(state) == []  # fetched just now: not due
        xstore.set_enabled("ncmec", False)
        assert runner.run_fetch(xstore, "ncmec").error_code == "disabled"
