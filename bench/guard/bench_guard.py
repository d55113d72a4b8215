"""Prompt guard benchmark: recall on the adversarial set, false positives on benign
prompts, false blocks per language on child-mentioning and other benign text
(:mod:`benign_text`), single-core latency, side by side with a plain keyword filter over
the same lexicons (lower-case + word/substring match, no normalisation) to show what the
normalisation buys. One run measures all of it.

    python bench/guard/bench_guard.py            # prints and appends to bench/RESULTS.md
    python bench/guard/bench_guard.py --no-append

Needs the ``bench`` extra (``wordfreq``, ``chatterbot-corpus``) for the languages without
a caption set.
"""

from __future__ import annotations

import csv
import os
import re
import sys
import time
import tomllib
from collections import Counter
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from benign_text import benign_sets  # noqa: E402
from gen_adversarial import build_cases, build_heldout2_cases  # noqa: E402

from _machine import append_results, load_average, machine_info  # noqa: E402
from sentinelle.guard import PromptGuard  # noqa: E402

SHARED = HERE.parents[1].parent / "shared" / "prompts"
CHILD = re.compile(
    r"\b(child|children|kids?|boys?|girls?|bab(y|ies)|toddlers?|infants?|teens?|teenagers?)\b",
    re.I,
)


class KeywordBaseline:
    """Plain keyword filter over the same lexicon files: lower-case, whole words (prefix
    for ``stem*``, substring for CJK/Arabic), same decision rule, no normalisation."""

    def __init__(self) -> None:
        folder = resources.files("sentinelle.guard") / "lexicons"
        terms: dict[str, list[str]] = {}
        for p in folder.iterdir():
            if not p.name.endswith(".toml"):
                continue
            d = tomllib.loads(p.read_text("utf-8"))
            for cat in ("minor", "sexual", "nudity", "minor_sexual", "minor_nudity"):
                for strength, items in d.get(cat, {}).items():
                    if strength == "weak" and cat in ("sexual", "nudity"):
                        key = cat + "_weak"
                    else:
                        key = cat
                    terms.setdefault(key, []).extend(items)
        self.res = {c: self._compile(t) for c, t in terms.items()}

    @staticmethod
    def _compile(items: list[str]) -> re.Pattern[str]:
        parts = []
        for t in items:
            t = t.lower()
            prefix = t.endswith("*")
            t = re.escape(t.rstrip("*"))
            if any(ord(c) > 0x0600 and not (0x0400 <= ord(c) <= 0x052F) for c in t):
                parts.append(t)
            else:
                parts.append(rf"\b{t}" + ("" if prefix else r"\b"))
        return re.compile("|".join(parts))

    def check(self, text: str) -> str:
        t = text.lower()
        hit = {c: bool(r.search(t)) for c, r in self.res.items()}
        if hit.get("minor_sexual") or hit.get("minor_nudity"):
            return "block"
        explicit = any(hit.get(c) for c in ("sexual", "nudity", "sexual_weak", "nudity_weak"))
        if hit.get("minor") and explicit:
            return "block"
        return "review" if hit.get("sexual") or hit.get("nudity") else "allow"


def _benign() -> dict[str, list[str]]:
    with open(SHARED / "parti_prompts.tsv", newline="", encoding="utf-8") as f:
        parti = [r["Prompt"] for r in csv.DictReader(f, delimiter="\t")]
    with open(SHARED / "coco_captions_val2017.tsv", newline="", encoding="utf-8") as f:
        coco = [r["caption"] for r in csv.DictReader(f, delimiter="\t")]
    hard = [
        line.strip()
        for line in (HERE / "hard_negatives.txt").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {
        "PartiPrompts": parti,
        "COCO (all)": coco,
        "COCO child-mentioning": [c for c in coco if CHILD.search(c)],
        "hard negatives": hard,
    }


def _latency(check, texts: list[str]) -> tuple[float, float]:
    for t in texts[:500]:
        check(t)
    ns = []
    for t in texts:
        a = time.perf_counter_ns()
        check(t)
        ns.append(time.perf_counter_ns() - a)
    ns.sort()
    return ns[len(ns) // 2] / 1e3, ns[int(len(ns) * 0.99)] / 1e3


# Targets of issue 10, per language: share of benign text blocked.
TARGET = {"child": 0.005, "other": 0.001}


def _per_language(guard: PromptGuard, base: KeywordBaseline) -> list[str]:
    """False-block table per language and kind, guard beside the baseline."""
    rows = [
        "| language | kind | source | n | guard blocked | baseline blocked | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for bs in benign_sets():
        n = len(bs.texts)
        blocked = [t for t in bs.texts if guard.check(t).decision == "block"]
        b = sum(base.check(t) == "block" for t in bs.texts)
        g = len(blocked)
        target = TARGET[bs.kind]
        rows.append(
            f"| {bs.language} | {bs.kind} | {bs.source} | {n} | {g / n:.3%} ({g}) | "
            f"{b / n:.3%} ({b}) | <= {target:.1%} | {'met' if g / n <= target else 'NOT met'} |"
        )
        if blocked and "wordfreq" in bs.source:
            shown = "; ".join(t[:60] for t in blocked[:12])
            notes.append(f"* {bs.language} {bs.kind}, blocked ({g}): {shown}")
    if notes:
        rows += [
            "",
            "Blocked texts of the generated sets (a real nudity or sexual word of "
            "the language next to a child must block):",
            "",
            *notes,
        ]
    return rows


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # single core
    guard, base = PromptGuard(), KeywordBaseline()
    cases = build_cases() + build_heldout2_cases()
    kinds = ["lexicon", "heldout", "age", "heldout2", "heldout2_phrase"]
    rows = ["| metric | Sentinelle prompt guard | keyword baseline |", "|---|---|---|"]
    per_obf: Counter = Counter()
    per_obf_ok: Counter = Counter()
    per_obf_base: Counter = Counter()
    h2: Counter = Counter()
    h2_ok: Counter = Counter()
    h2_base: Counter = Counter()
    for kind in [*kinds, "all"]:
        sel = [c for c in cases if kind == "all" or c.kind == kind]
        g = sum(guard.check(c.text).decision == "block" for c in sel)
        b = sum(base.check(c.text) == "block" for c in sel)
        rows.append(
            f"| recall, {kind} ({len(sel)} must-block) | {g / len(sel):.1%} | {b / len(sel):.1%} |"
        )
    for c in cases:
        if c.kind.startswith("heldout2"):
            k = f"{c.kind.removeprefix('heldout2').lstrip('_') or 'pair'}: {c.obfuscation}"
            h2[k] += 1
            h2_ok[k] += guard.check(c.text).decision == "block"
            h2_base[k] += base.check(c.text) == "block"
            continue
        if c.kind == "age":
            continue
        per_obf[c.obfuscation] += 1
        per_obf_ok[c.obfuscation] += guard.check(c.text).decision == "block"
        per_obf_base[c.obfuscation] += base.check(c.text) == "block"
    per_language = _per_language(guard, base)
    benign = _benign()
    for name, texts in benign.items():
        g_dec = [guard.check(t).decision for t in texts]
        b_dec = [base.check(t) for t in texts]
        g_na = sum(d != "allow" for d in g_dec)
        b_na = sum(d != "allow" for d in b_dec)
        g_bl = sum(d == "block" for d in g_dec)
        b_bl = sum(d == "block" for d in b_dec)
        rows.append(
            f"| FP {name} ({len(texts)}): not allowed / blocked | "
            f"{g_na / len(texts):.2%} ({g_na}) / {g_bl / len(texts):.2%} ({g_bl}) | "
            f"{b_na / len(texts):.2%} ({b_na}) / {b_bl / len(texts):.2%} ({b_bl}) |"
        )
    lat_texts = benign["COCO (all)"][:10000] + benign["PartiPrompts"] + [c.text for c in cases]
    gp50, gp99 = _latency(guard.check, lat_texts)
    bp50, bp99 = _latency(base.check, lat_texts)
    rows.append(
        f"| latency p50 / p99, single core ({len(lat_texts)} prompts) | "
        f"{gp50:.0f} µs / {gp99:.0f} µs | {bp50:.0f} µs / {bp99:.0f} µs |"
    )
    obf = ["", "| obfuscation | guard recall | baseline recall |", "|---|---|---|"]
    for k in sorted(per_obf):
        obf.append(
            f"| {k} ({per_obf[k]}) | {per_obf_ok[k] / per_obf[k]:.1%} | "
            f"{per_obf_base[k] / per_obf[k]:.1%} |"
        )
    obf += ["", "| heldout2 obfuscation / phrase kind | guard recall | baseline recall |"]
    obf.append("|---|---|---|")
    for k in sorted(h2):
        obf.append(f"| {k} ({h2[k]}) | {h2_ok[k] / h2[k]:.1%} | {h2_base[k] / h2[k]:.1%} |")
    body = "\n".join(
        [
            "### Prompt guard: recall, false positives, latency",
            "",
            f"Load average while running: {load_average()}. Semantic layer: off "
            "(measured by `bench_semantic.py`). `lexicon` cases use lexicon terms, "
            "`heldout` cases the "
            "hand-written variants of `bench/guard/heldout.toml` that the lexicons do not "
            "list verbatim; `age` cases write ages under 18 in 15 languages; `heldout2` is the "
            "second, independent set of `bench/guard/heldout2.toml` (inflections, "
            "transliterations; punctuation, emoji inside words, mixed tricks) and "
            "`heldout2_phrase` its verbatim phrases (ages, limits, code words, romanised, "
            "mixed). FP = decision "
            "other than `allow` (adult nudity/sexual defaults to `review`); blocked = "
            "`block`. Child-mentioning = English child-word regex (see script). Hard "
            "negatives = `bench/guard/hard_negatives.txt`, benign prompts holding a lexicon "
            "word in an innocent sense (the `cp` command, nude lipstick, naked eye, English "
            "`kind`).",
            "",
            *rows,
            *obf,
            "",
            "### Prompt guard: false blocks per language (issue 10)",
            "",
            "Same run, same guard. `child` = text that mentions a child; targets: at most "
            "0.5% of child-mentioning and 0.1% of other benign text blocked. Sources: "
            "`bench/guard/benign_text.py` (Multi30k dev captions for de/fr/es/ar, COCO and "
            "PartiPrompts for en; for the other languages chatterbot-corpus sentences, and "
            "wordfreq's 5,000 most frequent words, alone and in a benign child sentence).",
            "",
            *per_language,
        ]
    )
    print(machine_info())
    print(body)
    if "--no-append" not in sys.argv:
        append_results("Prompt guard: recall, false blocks per language, latency", body)


if __name__ == "__main__":
    main()
