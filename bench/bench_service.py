"""Load and soak benchmark of ``sentinelle serve`` on loopback (run by hand).

    .venv/bin/python bench/bench_service.py            # 30 s load tests + 10 min soak
    .venv/bin/python bench/bench_service.py --load-s 10 --soak-s 60 --no-append  # quick try

What it does:

1. builds (once, cached under ``bench/out/service/``) a SQLite database with a
   1,000,000-hash bank of random PDQ hashes plus a bank of the PDQ hashes of
   500 benign photos (BSDS500, from ``../shared``);
2. starts ONE ``sentinelle serve`` process (uvicorn, one worker process: the
   command has no ``--workers``; each worker would hold its own index) on
   127.0.0.1 with an unlimited-rate admin key;
3. loads it with ``wrk`` (``apt-get install wrk``; the Lua scripts are written
   to ``bench/out/service/``):

   * **match-by-hash**: ``POST /v1/match/hashes`` with one PDQ hash per
     request, cycling through 2,000 bodies (10% hashes of the benign photos,
     which match; 90% random, which do not);
   * **scan-by-upload**: ``POST /v1/scan`` with a 1 MP (1280x800) JPEG
     rendered here (benign gradient + noise texture), raw body;

4. measures in-process hashing of the same JPEG (``hash_bytes`` with the scan
   route's arguments) with the same number of threads in one process, for the
   scan-vs-in-process ratio;
5. soaks: both loads at once for ``--soak-s`` seconds, sampling the server's
   RSS every 10 s; reports the linear-regression slope (MiB/min) and the
   first-vs-last-minute RSS.

Results are printed and appended to ``bench/RESULTS.md`` (via ``_machine.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SHARED = REPO.parent / "shared"
OUT = BENCH / "out" / "service"
sys.path.insert(0, str(BENCH))

from _machine import append_results, machine_info  # noqa: E402

N_RANDOM = 1_000_000
BIG_BANK = "bench-1m"
KNOWN_BANK = "bench-known"

# ---------------------------------------------------------------- wrk scripts
MATCH_LUA = r"""
-- POST /v1/match/hashes, one PDQ hash per request, cycling through prepared bodies
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(key)s"}
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/v1/match/hashes", headers, bodies[i])
end
%(done)s
"""

SCAN_LUA = r"""
-- POST /v1/scan with a 1 MP JPEG as the raw body
local f = assert(io.open("%(jpeg)s", "rb"))
wrk.method = "POST"
wrk.path = "/v1/scan"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"
wrk.headers["Authorization"] = "Bearer %(key)s"
%(done)s
"""

DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- data
def render_jpeg(path: Path, size: tuple[int, int] = (1280, 800)) -> bytes:
    """A benign 1 MP photo-like JPEG: smooth gradients plus fine noise texture."""
    w, h = size
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(x / 97.0) * np.cos(y / 131.0)
    g = 128 + 90 * np.sin((x + y) / 173.0)
    b = 128 + 80 * np.cos(x / 59.0 - y / 83.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    arr = np.clip(img, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    path.write_bytes(data)
    return data


def random_pdq_file(path: Path, n: int) -> None:
    cached = BENCH / "out" / f"pdq_{n}.txt"
    if cached.is_file() and sum(1 for _ in cached.open()) == n:
        path.write_bytes(cached.read_bytes())
        return
    rng = np.random.default_rng(2024)
    with path.open("w") as f:
        for start in range(0, n, 100_000):
            k = min(100_000, n - start)
            raw = rng.integers(0, 256, size=(k, 32), dtype=np.uint8).tobytes().hex()
            f.write("\n".join(raw[i : i + 64] for i in range(0, len(raw), 64)) + "\n")


def known_photo_hashes(limit: int = 500) -> list[str]:
    from sentinelle.signals.hasher import hash_file
    from sentinelle.signals.types import HashSignal

    out = []
    for p in sorted((SHARED / "corpora/photos/bsds500").glob("*.jpg"))[:limit]:
        r = hash_file(p, signals=("pdq",), exact=False)
        for s in r.signals:
            if isinstance(s, HashSignal) and s.type == "pdq":
                out.append(s.hash)
    return out


def build_database(db: Path) -> tuple[str, list[str]]:
    """The 1M bank (cached) and the known-photo bank; returns (url, known hashes)."""
    from sentinelle.banks import BankStore
    from sentinelle.formats.entry import EntryIn
    from sentinelle.store.db import open_engine

    url = f"sqlite:///{db}"
    known_file = OUT / "known.json"
    if db.exists() and known_file.exists():
        store = BankStore(open_engine(url))
        try:
            if store.get_bank(BIG_BANK).total == N_RANDOM:
                return url, json.loads(known_file.read_text())
        except Exception:  # noqa: BLE001 - rebuild anything unexpected
            pass
        store.engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    engine = open_engine(url)
    store = BankStore(engine)
    t = time.perf_counter()
    lst = OUT / "random_1m.txt"
    random_pdq_file(lst, N_RANDOM)
    store.create_bank(BIG_BANK, description="1M random PDQ hashes (benchmark)")
    store.import_file(BIG_BANK, lst, "pdq-list")
    lst.unlink()
    print(f"imported {N_RANDOM:,} random hashes in {time.perf_counter() - t:.1f} s")
    known = known_photo_hashes()
    store.create_bank(KNOWN_BANK, description="PDQ of benign BSDS500 photos")
    store.add_entries(KNOWN_BANK, [EntryIn(signal_type="pdq", hash=h) for h in set(known)])
    known_file.write_text(json.dumps(known))
    engine.dispose()
    return url, known


# ---------------------------------------------------------------- server
class Server:
    def __init__(self, url: str, log_level: str, threads: int, workers: int = 1) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLE_")}
        env.update(
            SENTINELLE_DATABASE_URL=url,
            SENTINELLE_LOG_LEVEL=log_level,
            SENTINELLE_THREADS=str(threads),
        )
        self.log = (OUT / "server.log").open("wb")
        t = time.perf_counter()
        if workers == 1:
            cmd = [sys.executable, "-m", "sentinelle.cli.main", "serve", "--port", str(self.port)]
        else:  # `sentinelle serve` has no --workers: uvicorn's own CLI with the app factory
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "sentinelle.service.app:create_app",
            ]
            cmd += ["--port", str(self.port), "--workers", str(workers), "--no-access-log"]
            cmd += ["--no-server-header", "--log-level", "warning"]
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=OUT,
        )
        import httpx

        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited; see {OUT / 'server.log'}")
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.startup_s = time.perf_counter() - t
        self.ps = psutil.Process(self.proc.pid)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        """RSS of the server and its worker processes."""
        procs = [self.ps, *self.ps.children(recursive=True)]
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total / 2**20

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------- wrk
def run_wrk(base: str, script: Path, seconds: int, conns: int, threads: int = 1) -> dict:
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{conns}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"WRKJSON (\{.*\})", p.stdout)
    if not m:
        raise SystemExit(f"wrk failed: {p.stdout}\n{p.stderr}")
    d = json.loads(m.group(1))
    d["rps"] = d["requests"] / (d["duration_us"] / 1e6)
    d["errors"] = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    d["p50_ms"], d["p99_ms"] = d["p50_us"] / 1000, d["p99_us"] / 1000
    return d


def write_scripts(key: str, known: list[str], jpeg: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(11)
    bodies = []
    for i in range(2000):
        h = known[i % len(known)] if i % 10 == 0 else rng.bytes(32).hex()
        bodies.append(json.dumps({"hashes": [{"type": "pdq", "hash": h}]}))
    bodies_file = OUT / "match_bodies.txt"
    bodies_file.write_text("\n".join(bodies) + "\n")
    match = OUT / "match.lua"
    match.write_text(MATCH_LUA % {"bodies": bodies_file, "key": key, "done": DONE_LUA})
    scan = OUT / "scan.lua"
    scan.write_text(SCAN_LUA % {"jpeg": jpeg, "key": key, "done": DONE_LUA})
    return match, scan


def check_responses(base: str, key: str, known: list[str], jpeg: bytes) -> None:
    """Sanity: the routes answer 200 and a known hash really matches."""
    import httpx

    h = {"Authorization": f"Bearer {key}"}
    r = httpx.post(
        f"{base}/v1/match/hashes",
        json={"hashes": [{"type": "pdq", "hash": known[0]}]},
        headers=h,
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["results"][0]["matches"], r.text
    r = httpx.post(
        f"{base}/v1/scan",
        content=jpeg,
        headers={**h, "Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- in-process
def in_process_rate(data: bytes, threads: int, seconds: float) -> float:
    """hash_bytes calls/s with the scan route's arguments, ``threads`` threads."""
    from sentinelle.signals.hasher import DEFAULT_SIGNALS, hash_bytes

    def one() -> None:
        # what POST /v1/scan does: fast path with the trimmed query variant
        r = hash_bytes(data, signals=DEFAULT_SIGNALS, exact=False, query_variants=("trimmed",))
        assert r.error is None

    one()
    stop = time.perf_counter() + seconds
    counts = [0] * threads

    def loop(i: int) -> None:
        while time.perf_counter() < stop:
            one()
            counts[i] += 1

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(loop, range(threads)))
    return sum(counts) / (time.perf_counter() - t)


# ---------------------------------------------------------------- soak
def soak(server: Server, match: Path, scan: Path, seconds: int, every_s: float = 10.0) -> dict:
    samples: list[tuple[float, float]] = []
    results: dict[str, dict] = {}

    def load(name: str, script: Path, conns: int) -> None:
        results[name] = run_wrk(server.base, script, seconds, conns)

    threads = [
        threading.Thread(target=load, args=("match", match, 16)),
        threading.Thread(target=load, args=("scan", scan, 2)),
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        samples.append((time.perf_counter() - t0, server.rss_mib()))
        time.sleep(max(0.05, every_s - (time.perf_counter() - t0) % every_s))
    samples.append((time.perf_counter() - t0, server.rss_mib()))
    ts = np.array([s[0] for s in samples]) / 60.0
    rss = np.array([s[1] for s in samples])
    slope = float(np.polyfit(ts, rss, 1)[0]) if len(ts) > 2 else 0.0
    warm = ts >= min(2.0, ts[-1] / 2)
    slope_warm = float(np.polyfit(ts[warm], rss[warm], 1)[0]) if warm.sum() > 2 else slope
    first = rss[ts <= 1.0].mean()
    last = rss[ts >= ts[-1] - 1.0].mean()
    (OUT / "soak_rss.json").write_text(json.dumps(samples))
    return {
        "match": results.get("match"),
        "scan": results.get("scan"),
        "samples": samples,
        "slope": slope,
        "slope_warm": slope_warm,
        "first": float(first),
        "last": float(last),
        "min": float(rss.min()),
        "max": float(rss.max()),
    }


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--load-s", type=int, default=30)
    ap.add_argument("--soak-s", type=int, default=600)
    ap.add_argument("--match-conns", type=int, default=32)
    ap.add_argument("--scan-conns", type=int, default=2)
    ap.add_argument("--log-level", default="WARNING")
    ap.add_argument("--threads", type=int, default=40, help="server SENTINELLE_THREADS")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    url, known = build_database(OUT / "bench.db")
    print(f"database ready in {time.perf_counter() - t:.1f} s ({len(known)} known hashes)")
    jpeg_path = OUT / "scan-1mp.jpg"
    jpeg = render_jpeg(jpeg_path)

    from sentinelle.service.keys import create_key
    from sentinelle.store.db import open_engine

    engine = open_engine(url)
    _rec, key = create_key(engine, f"bench-{secrets.token_hex(3)}", ["admin"], 0)
    engine.dispose()
    match_lua, scan_lua = write_scripts(key, known, jpeg_path)

    # In-process hashing first (no server running).
    inproc = in_process_rate(jpeg, args.scan_conns, min(20.0, args.load_s))
    print(f"in-process hash_bytes, {args.scan_conns} threads: {inproc:.1f}/s")

    server = Server(url, args.log_level, args.threads, args.workers)
    print(f"server up in {server.startup_s:.1f} s, RSS {server.rss_mib():.0f} MiB")
    try:
        check_responses(server.base, key, known, jpeg)
        run_wrk(server.base, match_lua, 3, 8)  # warm-up
        m = run_wrk(server.base, match_lua, args.load_s, args.match_conns)
        print(
            f"match-by-hash: {m['rps']:.0f} req/s p50 {m['p50_ms']:.2f} ms "
            f"p99 {m['p99_ms']:.2f} ms errors {m['errors']}"
        )
        s = run_wrk(server.base, scan_lua, args.load_s, args.scan_conns)
        print(
            f"scan-by-upload: {s['rps']:.1f} req/s p50 {s['p50_ms']:.1f} ms "
            f"p99 {s['p99_ms']:.1f} ms errors {s['errors']}"
        )
        rss_before_soak = server.rss_mib()
        k = soak(server, match_lua, scan_lua, args.soak_s)
        print(
            f"soak {args.soak_s} s: RSS first-minute {k['first']:.1f} MiB, last-minute "
            f"{k['last']:.1f} MiB, slope {k['slope']:+.3f} MiB/min "
            f"(after warm-up {k['slope_warm']:+.3f}); match {k['match']['rps']:.0f} req/s, "
            f"scan {k['scan']['rps']:.1f} req/s, errors "
            f"{k['match']['errors'] + k['scan']['errors']}"
        )
    finally:
        server.stop()

    ratio = s["rps"] / inproc if inproc else 0.0
    soak_errors = k["match"]["errors"] + k["scan"]["errors"]
    total_errors = m["errors"] + s["errors"] + soak_errors
    growth = k["last"] - k["first"]
    flat = abs(k["slope_warm"]) * (args.soak_s / 60) <= max(5.0, 0.02 * k["first"])

    def met(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    peer = "not run (HMA needs its Flask + PostgreSQL deployment; no published figures)"
    how = (
        "one `sentinelle serve` process (uvicorn)"
        if args.workers == 1
        else f"uvicorn `--factory sentinelle.service.app:create_app --workers {args.workers}` "
        "(equivalent to `sentinelle serve --workers N`; each worker holds its own index)"
    )
    body = f"""Server: {how}, {args.threads} threads per process, SQLite (WAL) database, \
`SENTINELLE_LOG_LEVEL={args.log_level}`, \
started in {server.startup_s:.1f} s with a bank of {N_RANDOM:,} random PDQ hashes + \
{len(set(known))} PDQ hashes of benign BSDS500 photos; RSS before the soak \
{rss_before_soak:.0f} MiB. Load: `wrk` 4.1 on loopback on the same 2 cores \
(match-by-hash: {args.match_conns} connections, one PDQ hash per `POST /v1/match/hashes`, \
10% matching; scan-by-upload: {args.scan_conns} connections, `POST /v1/scan` with a \
1280x800 JPEG of {len(jpeg) / 1024:.0f} KiB as raw body), {args.load_s} s each.

| test | Sentinelle req/s | p50 | p99 | errors | HMA (peer) |
|---|---|---|---|---|---|
| match-by-hash | {m["rps"]:,.0f} | {m["p50_ms"]:.2f} ms | {m["p99_ms"]:.2f} ms | \
{m["errors"]} of {m["requests"]:,} | {peer} |
| scan-by-upload (1 MP JPEG) | {s["rps"]:.1f} | {s["p50_ms"]:.1f} ms | {s["p99_ms"]:.1f} ms | \
{s["errors"]} of {s["requests"]:,} | {peer} |
| in-process `hash_bytes`, same JPEG, {args.scan_conns} threads | {inproc:.1f} | | | | |
| soak: match-by-hash (16 conns, concurrent) | {k["match"]["rps"]:,.0f} | \
{k["match"]["p50_ms"]:.2f} ms | {k["match"]["p99_ms"]:.2f} ms | {k["match"]["errors"]} of \
{k["match"]["requests"]:,} | |
| soak: scan-by-upload (2 conns, concurrent) | {k["scan"]["rps"]:.1f} | \
{k["scan"]["p50_ms"]:.1f} ms | {k["scan"]["p99_ms"]:.1f} ms | {k["scan"]["errors"]} of \
{k["scan"]["requests"]:,} | |

Soak ({args.soak_s} s, both loads at once, server RSS every 10 s): first minute \
{k["first"]:.1f} MiB, last minute {k["last"]:.1f} MiB ({growth:+.1f} MiB), min/max \
{k["min"]:.1f}/{k["max"]:.1f} MiB; linear-regression slope {k["slope"]:+.3f} MiB/min over the \
whole soak, {k["slope_warm"]:+.3f} MiB/min after the first 2 minutes. \
Samples: `bench/out/service/soak_rss.json`.

Targets:
- match-by-hash >= 2,000 req/s: {met(m["rps"] >= 2000)}, {m["rps"]:,.0f} req/s.
- match-by-hash p99 < 50 ms: {met(m["p99_ms"] < 50)}, {m["p99_ms"]:.2f} ms.
- scan-by-upload >= 80% of in-process hashing: {met(ratio >= 0.8)}, {ratio:.0%} \
({s["rps"]:.1f} vs {inproc:.1f} per s).
- memory flat across the soak (growth after warm-up <= max(5 MiB, 2%) over the soak): \
{met(flat)}, {k["slope_warm"]:+.3f} MiB/min after warm-up, {growth:+.1f} MiB first-to-last minute.
- zero errors: {met(total_errors == 0)}, {total_errors}.
"""
    print(body)
    if not args.no_append:
        append_results("Service load and soak (bench_service.py)", body)
        print(f"appended to bench/RESULTS.md ({machine_info()[:60]}...)")


if __name__ == "__main__":
    main()
