"""Exchange ingest benchmark: Sentinelle's NCMEC fetch beside python-threatexchange's, one run.

    .venv/bin/python bench/bench_exchange.py --entries 1000000

A local NCMEC v2 server (``tests/exchanges/ncmec_server.py``, synthetic entries
computed on the fly, 1000 per page, md5 + pdq + PhotoDNA each) runs in its own
process. Each contestant runs in a fresh child process, so its peak RSS
(``ru_maxrss``) is its own:

* **sentinelle** -- ``run_fetch`` into a fresh SQLite bank: parse, map, write
  entries + records + change log + checkpoint (the whole job: the first 8 pages
  applied one by one, the rest staged per page with its checkpoint and
  materialised into the bank before ``run_fetch`` returns; ``exchanges/bulk.py``).
* **pytx** -- ``NCMECSignalExchangeAPI.fetch_iter`` with each page converted by
  ``naive_convert_to_signal_type`` (fetch and convert only: no storage at all), the
  pages merged into one dict as pytx's own fetch helper does.

Then **resume**: a Sentinelle fetch is killed (SIGKILL) mid-way and restarted; we
report the time from the restart to its first applied page.
``--append`` adds the table to ``bench/RESULTS.md`` (machine and load average
included: ratios matter, absolute rates depend on how busy the machine is).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests" / "exchanges"
SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from ncmec_server import NCMECServer, SyntheticSource
srv = NCMECServer(SyntheticSource({n}, base=1_600_000_000, per_second=10), page_size=1000)
srv.__enter__()
print(srv.url, flush=True)
time.sleep(10**6)
"""
OURS = """
import json, resource, sys, time
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.runner import run_fetch
from sentinelle.exchanges.store import ExchangeStore
from sentinelle.store.db import open_engine
url, db, fresh = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
store = ExchangeStore(open_engine(db))
if fresh:
    store.add("ncmec", "ncmec", config={{"base_url": url, "start_time": 1_599_999_990,
              "window_s": 3600}}, credential_ref=make_ref(env="BENCH_NCMEC"))
t = time.perf_counter()
first = []
def page(r):
    if not first:
        first.append(time.perf_counter() - t)
        print("first", first[0], flush=True)
out = run_fetch(store, "ncmec", on_page=page, lease_s=2)
dt = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": dt, "records": out.counts.records_seen, "error": out.error,
                   "added": out.counts.entries_added, "peak_mb": ru.ru_maxrss / 1024,
                   "cpu": ru.ru_utime + ru.ru_stime}}), flush=True)
"""
PYTX = """
import json, resource, sys, time
from threatexchange.exchanges.clients.ncmec import hash_api as api
from threatexchange.exchanges.impl.ncmec_api import NCMECSignalExchangeAPI, NCMECCollabConfig
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
url = sys.argv[1]
orig = api.NCMECHashAPI.__init__
def init(self, *a, **k):
    orig(self, *a, **k)
    self._base_url = url
api.NCMECHashAPI.__init__ = init
collab = NCMECCollabConfig(environment=api.NCMECEnvironment.Industry, name="bench")
x = NCMECSignalExchangeAPI(collab, "esp-user", "s3cret-pw")
types = [PdqSignal, VideoMD5Signal]
t = time.perf_counter()
n = 0
merged = {{}}
for delta in x.fetch_iter(types, None):
    n += len(delta.updates)
    merged.update(delta.updates)
    x.naive_convert_to_signal_type(types, collab, delta.updates)
dt = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": dt, "records": n, "error": None, "peak_mb": ru.ru_maxrss / 1024,
                   "cpu": ru.ru_utime + ru.ru_stime}}), flush=True)
"""


def run(code: str, *args: str, env: dict[str, str]) -> dict:
    p = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=7200
    )
    last = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not last:
        raise SystemExit(f"child failed ({p.returncode}): {p.stderr[-3000:]}")
    return json.loads(last[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--skip-pytx", action="store_true")
    ap.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    env = {**os.environ, "BENCH_NCMEC": "esp-user:s3cret-pw", "PYTHONPATH": str(REPO / "src")}
    srv = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(tests=str(TESTS), n=args.entries)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert srv.stdout is not None
    url = srv.stdout.readline().strip()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = f"sqlite:///{tmp}/bench.db"
            ours = run(OURS.format(), url, db, "1", env=env)
            rows.append(("sentinelle", ours))
            if not args.skip_pytx:
                rows.append(("pytx", run(PYTX.format(), url, env=env)))
            # resume after kill -9
            db2 = f"sqlite:///{tmp}/resume.db"
            p = subprocess.Popen(
                [sys.executable, "-c", OURS.format(), url, db2, "1"],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert p.stdout is not None
            p.stdout.readline()  # first page applied
            time.sleep(2.0)
            p.kill()
            p.wait()
            time.sleep(2.1)  # lease expiry (2 s)
            t = time.perf_counter()
            p = subprocess.Popen(
                [sys.executable, "-c", OURS.format(), url, db2, "0"],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert p.stdout is not None
            line = p.stdout.readline()
            resume_s = time.perf_counter() - t
            first_page_s = float(line.split()[1])
            p.kill()
            p.wait()
    finally:
        srv.kill()
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs"
    lines = [
        f"entries: {args.entries:,} (NCMEC v2 XML from the local server, 1000 per page, "
        "md5 + pdq + PhotoDNA each; the server renders pages on the fly in its own process)",
        "",
        "| client | entries/s | seconds | CPU s (own) | CPU µs/entry | peak RSS MB | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        rate = r["records"] / r["seconds"] if r["seconds"] else 0
        note = (
            "fetch + parse + SQLite bank writes (records, entries, change log; checkpoint per "
            "page; staged pages materialised before the fetch returns)"
            if name == "sentinelle"
            else "fetch + convert, no storage (pages merged in one dict)"
        )
        lines.append(
            f"| {name} | {rate:,.0f} | {r['seconds']:.1f} | {r['cpu']:.1f} | "
            f"{r['cpu'] / max(1, r['records']) * 1e6:.0f} | {r['peak_mb']:.0f} | {note} |"
        )
    if len(rows) == 2:
        (_, a), (_, b) = rows
        wall = (a["records"] / a["seconds"]) / (b["records"] / b["seconds"])
        cpu = (b["cpu"] / b["records"]) / (a["cpu"] / a["records"])
        lines += ["", f"ratio sentinelle / pytx: **{wall:.2f}x** by wall time, {cpu:.2f}x by CPU"]
    lines.append(
        f"\nresume after kill -9: process start to first applied page **{resume_s:.2f} s** "
        f"(of which fetch {first_page_s:.2f} s; the rest is interpreter start and imports)"
    )
    body = "\n".join(lines)
    print(f"\nmachine: {machine}, python {platform.python_version()}\n")
    print(body)
    if args.append:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _machine import append_results

        append_results(
            f"Exchange ingest: NCMEC {args.entries:,} entries vs python-threatexchange", body
        )
    _ = resource


if __name__ == "__main__":
    main()
