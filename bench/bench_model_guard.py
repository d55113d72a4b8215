"""Model guard benchmark (issue 13): header scan, tensor hashing vs sha256sum, decisions.

1. **Header scan of a 4 GiB safetensors file** (sparse: the tensor bytes are a hole, so
   creating it costs nothing and reading a tensor byte would still show in the read
   counter). Times :func:`read_header` and the whole ``scan_model(hash_tensors=False,
   file_hash=False)`` (header + kohya metadata + judging 500 tags); the bytes the
   process read (``/proc/self/io`` ``rchar``) prove the tensors were not read.
2. **Tensor-hash throughput beside ``sha256sum``** of the same real file (random bytes,
   ``--hash-mib``, default 1024 MiB), in interleaved rounds: sha256sum, tensor hashing
   only (``tensor_sha256`` + per-tensor), the full pass (``file_sha256`` too). The page
   cache is warmed by one untimed read of the whole file before the rounds, and every
   round reads the same cached file, so both sides read from memory alike. Reported:
   MB/s per side and the median per-round throughput ratio (worst round).
3. **Decisions** on the benign and flagged tag lists of ``bench/model_guard/tag_lists.toml``,
   each written as a kohya LoRA and scanned end to end.

Files are created in a temporary folder (``--tmp``, default /tmp) and deleted after.

    python bench/bench_model_guard.py [--rounds 5] [--hash-mib 1024] [--no-append]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import append_results  # noqa: E402
from sentinelle.modelguard import hash_model_file, scan_model  # noqa: E402
from sentinelle.modelguard.safetensors_reader import read_header  # noqa: E402

HERE = Path(__file__).resolve().parent
TAG_LISTS = HERE / "model_guard" / "tag_lists.toml"
GiB = 1024**3
MiB = 1024**2
HEADER_TARGET_MS = 50.0
HASH_TARGET_RATIO = 0.80


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return -1


def _kohya_meta(tags: dict[str, int], images: int, **kw: str) -> dict[str, str]:
    folder = kw.get("dataset") or "10_dataset"
    meta = {
        "ss_output_name": kw.get("output_name") or "style",
        "ss_tag_frequency": json.dumps({folder: tags}),
        "ss_dataset_dirs": json.dumps({folder: {"n_repeats": 10, "img_count": images}}),
        "ss_num_train_images": str(images * 10),
        "ss_network_module": "networks.lora",
    }
    if kw.get("trigger"):
        meta["modelspec.trigger_phrase"] = kw["trigger"]
    return meta


def _write_safetensors(path: Path, tensors: list[tuple[str, str, list[int], int]],
                       meta: dict[str, str], data: bool) -> None:  # fmt: skip
    """Raw safetensors writer: ``tensors`` = (name, dtype, shape, nbytes); data random
    (``data=True``) or a sparse hole."""
    header: dict = {"__metadata__": meta}
    at = 0
    for name, dtype, shape, nbytes in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + nbytes]}
        at += nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h)
        if data:
            rng = np.random.default_rng(0)
            left = at
            while left:
                n = min(left, 64 * MiB)
                f.write(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
                left -= n
        else:
            f.truncate(8 + len(h) + at)


def _layout(total: int, n: int = 64) -> list[tuple[str, str, list[int], int]]:
    per = total // n // 2 * 2
    return [(f"model.layers.{i}.weight", "F16", [per // 2], per) for i in range(n)]


def bench_header(tmp: Path, rounds: int) -> tuple[str, dict]:
    tags = {f"tag_{i}": 500 - i for i in range(500)}
    p = tmp / "big4g.safetensors"
    _write_safetensors(p, _layout(4 * GiB, 800), _kohya_meta(tags, 500), data=False)
    size = p.stat().st_size
    header_ms, scan_ms, read_bytes = [], [], []
    scan_model(p, hash_tensors=False, file_hash=False)  # load the prompt guard once
    for _ in range(rounds * 4):
        r0 = _rchar()
        t = time.perf_counter()
        with open(p, "rb") as f:
            h = read_header(f, size)
        header_ms.append((time.perf_counter() - t) * 1000)
        read_bytes.append(_rchar() - r0)
        t = time.perf_counter()
        res = scan_model(p, hash_tensors=False, file_hash=False)
        scan_ms.append((time.perf_counter() - t) * 1000)
    assert res.error is None and res.tensor_count == 800
    p.unlink()
    fig = {
        "size": size,
        "header_bytes": h.header_bytes,
        "header_ms": statistics.median(header_ms),
        "header_ms_max": max(header_ms),
        "scan_ms": statistics.median(scan_ms),
        "scan_ms_max": max(scan_ms),
        "read_bytes": max(read_bytes),
    }
    md = (
        f"| file | header | read_header median (max) | scan, no hashing, median (max) | "
        f"bytes read by read_header |\n|---|---|---|---|---|\n"
        f"| {size / GiB:.2f} GiB, 800 tensors, 500 tags | {h.header_bytes / 1024:.0f} KiB | "
        f"**{fig['header_ms']:.2f} ms** ({fig['header_ms_max']:.2f}) | "
        f"{fig['scan_ms']:.1f} ms ({fig['scan_ms_max']:.1f}) | {fig['read_bytes']:,} |\n"
    )
    return md, fig


def _sha256sum(p: Path) -> float:
    t = time.perf_counter()
    subprocess.run(["sha256sum", str(p)], check=True, capture_output=True)
    return time.perf_counter() - t


def bench_hash(tmp: Path, rounds: int, mib: int) -> tuple[str, dict]:
    p = tmp / "real.safetensors"
    _write_safetensors(p, _layout(mib * MiB, 64), {"ss_output_name": "bench"}, data=True)
    size = p.stat().st_size
    with open(p, "rb") as f:
        header = read_header(f, size)
    with open(p, "rb") as f:  # warm the page cache for both sides
        while f.read(64 * MiB):
            pass
    rows: dict[str, list[float]] = {"sha256sum": [], "tensors": [], "full": []}
    ratios_t, ratios_f = [], []
    want = subprocess.run(["sha256sum", str(p)], capture_output=True, text=True).stdout.split()[0]
    for i in range(rounds):
        order = ["sha256sum", "tensors", "full"] if i % 2 == 0 else ["full", "tensors", "sha256sum"]
        got: dict[str, float] = {}
        for what in order:
            if what == "sha256sum":
                got[what] = _sha256sum(p)
            else:
                t = time.perf_counter()
                rep = hash_model_file(p, header.layout, file_sha256=what == "full")
                got[what] = time.perf_counter() - t
                if what == "full":
                    assert rep.file_sha256 == want
        for k, v in got.items():
            rows[k].append(v)
        ratios_t.append(got["sha256sum"] / got["tensors"])
        ratios_f.append(got["sha256sum"] / got["full"])
    p.unlink()
    mbs = {k: size / statistics.median(v) / 1e6 for k, v in rows.items()}
    fig = {
        "size": size,
        "mbs": mbs,
        "ratio_tensors": statistics.median(ratios_t),
        "ratio_tensors_min": min(ratios_t),
        "ratio_full": statistics.median(ratios_f),
        "ratio_full_min": min(ratios_f),
    }
    md = (
        f"File: {size / MiB:.0f} MiB of random bytes, 64 F16 tensors, page cache warmed "
        f"before {rounds} interleaved rounds.\n\n"
        "| side | MB/s (median) | throughput vs sha256sum, median (worst round) |\n"
        "|---|---|---|\n"
        f"| `sha256sum` (coreutils) | {mbs['sha256sum']:.0f} | 1.00 |\n"
        f"| tensor hashing (`tensor_sha256` + per-tensor) | {mbs['tensors']:.0f} | "
        f"**{fig['ratio_tensors']:.2f}** ({fig['ratio_tensors_min']:.2f}) |\n"
        f"| full pass (`file_sha256` + tensors, one read) | {mbs['full']:.0f} | "
        f"{fig['ratio_full']:.2f} ({fig['ratio_full_min']:.2f}) |\n"
    )
    return md, fig


def bench_decisions(tmp: Path) -> tuple[str, dict]:
    from safetensors.numpy import save_file

    lists = tomllib.loads(TAG_LISTS.read_text(encoding="utf-8"))["list"]
    rng = np.random.default_rng(1)
    tensors = {"lora.down": rng.standard_normal((4, 64), dtype=np.float32)}
    lines = [
        "| tag list | expect | want | decision | ok | first reason |",
        "|---|---|---|---|---|---|",
    ]
    bad, agree = [], 0
    for i, item in enumerate(lists):
        tags = {k.replace("_", " ") if k not in ("1girl",) else k: v
                for k, v in item["tags"].items()}  # fmt: skip
        meta = _kohya_meta(tags, item["images"], **{k: item.get(k, "") for k in
                           ("output_name", "trigger", "dataset")})  # fmt: skip
        p = tmp / f"list{i}.safetensors"
        save_file(tensors, str(p), metadata=meta)
        r = scan_model(p, read_sidecars=False)
        p.unlink()
        ok = r.decision != "block" if item["expect"] == "benign" else r.decision != "allow"
        agree += r.decision == item["want"]
        if not ok:
            bad.append(item["name"])
        reason = (r.judgement.reasons[0] if r.judgement and r.judgement.reasons else "").replace(
            "|", "/"
        )
        lines.append(
            f"| {item['name']} | {item['expect']} | {item['want']} | **{r.decision}** | "
            f"{'yes' if ok else 'NO'} | {reason[:90]} |"
        )
    n_benign = sum(x["expect"] == "benign" for x in lists)
    n_flag = len(lists) - n_benign
    benign_blocked = sum(1 for x in lists if x["expect"] == "benign" and x["name"] in bad)
    flagged_allowed = sum(1 for x in lists if x["expect"] == "flagged" and x["name"] in bad)
    fig = {"benign": n_benign, "flagged": n_flag, "benign_blocked": benign_blocked,
           "flagged_allowed": flagged_allowed, "agree": agree, "total": len(lists)}  # fmt: skip
    md = (
        f"{n_benign} benign and {n_flag} flagged tag lists (`bench/model_guard/tag_lists.toml`): "
        f"benign blocked **{benign_blocked}/{n_benign}**, flagged allowed "
        f"**{flagged_allowed}/{n_flag}**; decision equal to the reviewer's `want` on "
        f"{agree}/{len(lists)}.\n\n" + "\n".join(lines) + "\n"
    )
    return md, fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hash-mib", type=int, default=1024)
    ap.add_argument("--tmp", default="/tmp")
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_model_guard_", dir=a.tmp))
    try:
        h_md, h = bench_header(tmp, a.rounds)
        print(h_md)
        s_md, s = bench_hash(tmp, a.rounds, a.hash_mib)
        print(s_md)
        d_md, d = bench_decisions(tmp)
        print(d_md)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    met = lambda ok: "**met**" if ok else "**not met**"  # noqa: E731
    targets = (
        "| target | figure | status |\n|---|---|---|\n"
        f"| header scan of a 4 GB safetensors file < {HEADER_TARGET_MS:.0f} ms | "
        f"{h['header_ms']:.2f} ms median, {h['header_ms_max']:.2f} ms worst "
        f"({h['read_bytes']:,} bytes read of {h['size']:,}) | "
        f"{met(h['header_ms_max'] < HEADER_TARGET_MS)} |\n"
        f"| tensor hashing >= {HASH_TARGET_RATIO:.0%} of sha256sum's throughput | "
        f"{s['ratio_tensors']:.2f}x median, {s['ratio_tensors_min']:.2f}x worst round | "
        f"{met(s['ratio_tensors'] >= HASH_TARGET_RATIO)} |\n"
        f"| no benign tag list blocked | {d['benign_blocked']}/{d['benign']} blocked | "
        f"{met(d['benign_blocked'] == 0)} |\n"
        f"| every flagged list at least review | {d['flagged_allowed']}/{d['flagged']} allowed | "
        f"{met(d['flagged_allowed'] == 0)} |\n"
    )
    print(targets)
    if not a.no_append:
        body = (
            "Targets:\n\n" + targets + "\n### Header scan (sparse 4 GiB file)\n\n" + h_md
            + "\n### Tensor hashing beside sha256sum\n\n" + s_md
            + "\n### Decisions on tag lists\n\n" + d_md
        )  # fmt: skip
        append_results("Issue 13: model guard (bench_model_guard.py)", body)


if __name__ == "__main__":
    main()
