"""Priority of each group, explained: a possible real, unidentified victim first.

Tiers, in order (each group gets exactly one; ``tier.*`` weights):

1. ``camera_new`` -- new material with camera evidence (a C2PA capture claim, EXIF
   capture fields, camera quantisation tables) and **no** generator evidence of any
   strength: a possible real victim.
2. ``unknown_new`` -- new material of unknown origin (no evidence either way, weak
   generator hints, conflicting or tampered provenance).
3. ``ai_new`` -- new material the provenance verdict calls AI-generated or AI-edited
   (moderate or strong evidence). Still illegal in many countries: flagged as such.
4. ``known`` -- matched a bank (its category is shown).

Within a tier, bonuses order the queue (camera evidence, series size, copies, a face
link, video); their sum is capped at ``bonus_cap`` (default 99), below the gap between
tiers (100), so no bonus ever lifts a group over a tier above it. Every term is stored
as a reason ``{cue, weight, detail}``; the weights are configurable (``--weight
name=value``) and stored with the case, so every output can show them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, bindparam, select, update

from .tables import triage_groups, triage_media, triage_series

DEFAULT_WEIGHTS: dict[str, float] = {
    "tier.camera_new": 300.0,
    "tier.unknown_new": 200.0,
    "tier.ai_new": 100.0,
    "tier.known": 0.0,
    "camera_signed": 30.0,  # C2PA capture claim (signed)
    "camera_exif": 15.0,  # consistent EXIF capture fields (weak: forgeable)
    "camera_qtables": 10.0,  # camera-firmware quantisation tables (weak: lost on re-encode)
    "series_member": 3.0,  # per other group in the same series (up to 10)
    "copies": 1.0,  # per extra copy (up to 10): distributed material
    "face": 10.0,  # a face links it to another group (a lead, not an identification)
    "video": 5.0,
    "apparent_minor": 20.0,  # the age model sees a possible minor: raises, never lowers
    "victim_unidentified": 10.0,  # known material whose bank entry says: victim not identified
    "bonus_cap": 99.0,
}
TIERS = ("camera_new", "unknown_new", "ai_new", "known")
TIER_TEXT = {
    "camera_new": "new material, camera evidence, no generator evidence (possible real victim)",
    "unknown_new": "new material of unknown origin",
    "ai_new": "new material flagged AI-generated or AI-edited (still illegal in many countries)",
    "known": "known material (matched a bank)",
}


def weights_from(overrides: dict[str, float] | None) -> dict[str, float]:
    w = dict(DEFAULT_WEIGHTS)
    for k, v in (overrides or {}).items():
        if k not in DEFAULT_WEIGHTS:
            raise ValueError(f"unknown weight {k!r}; choose from {sorted(DEFAULT_WEIGHTS)}")
        w[k] = float(v)
    return w


@dataclass
class _Evidence:
    """What a group's members' provenance records say."""

    camera_signed: list[str] = field(default_factory=list)
    camera_exif: list[str] = field(default_factory=list)
    camera_qtables: list[str] = field(default_factory=list)
    ai: list[str] = field(default_factory=list)  # verdict ai_* (moderate or strong)
    ai_weak: list[str] = field(default_factory=list)  # any weaker generator hint
    conflicting: bool = False
    tampered: bool = False
    verdicts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _read(ev: _Evidence, verdict: str | None, prov: dict[str, Any] | None) -> None:
    if verdict:
        ev.verdicts[verdict] += 1
    if not prov:
        return
    if verdict in ("ai_generated", "ai_edited"):
        ev.ai.append(f"verdict {verdict} ({prov.get('confidence')})")
    if verdict == "conflicting":
        ev.conflicting = True
    if prov.get("tampered"):
        ev.tampered = True
    for e in prov.get("evidence") or []:
        ind, src = e.get("indicates"), str(e.get("source", ""))
        finding = str(e.get("finding", ""))[:160]
        if ind == "camera":
            if src.startswith("c2pa"):
                ev.camera_signed.append(finding)
            elif (e.get("details") or {}).get("rule") == "exif_capture":
                ev.camera_exif.append(finding)
            else:
                ev.camera_qtables.append(finding)
        elif ind in ("ai_generated", "ai_edited") and verdict not in ("ai_generated", "ai_edited"):
            ev.ai_weak.append(f"{src} ({e.get('strength')}): {finding}")


def tier_of(status: str, ev: _Evidence) -> str:
    if status == "known":
        return "known"
    if ev.ai:
        return "ai_new"
    camera = ev.camera_signed or ev.camera_exif or ev.camera_qtables
    if camera and not ev.ai_weak and not ev.conflicting and not ev.tampered:
        return "camera_new"
    return "unknown_new"


def _first(items: list[str]) -> str:
    more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
    return items[0] + more


def score(
    status: str,
    bank_category: str | None,
    ev: _Evidence,
    w: dict[str, float],
    *,
    n_files: int,
    n_media: int,
    series_size: int,
    faces: int,
    media_type: str | None,
    age_cue: str | None = None,
    matches: list[dict[str, Any]] | None = None,
) -> tuple[str, float, list[dict[str, Any]]]:
    """(tier, priority, reasons) of one group."""
    tier = tier_of(status, ev)
    text = TIER_TEXT[tier]
    if tier == "known" and bank_category:
        text += f", category {bank_category}"
    reasons: list[dict[str, Any]] = [
        {"cue": f"tier.{tier}", "weight": w[f"tier.{tier}"], "detail": text}
    ]
    if tier == "ai_new":
        reasons.append({"cue": "ai_flag", "weight": 0.0, "detail": _first(ev.ai)})
    if tier == "unknown_new":
        if ev.ai_weak:
            reasons.append({"cue": "generator_hint", "weight": 0.0, "detail": _first(ev.ai_weak)})
        if ev.conflicting or ev.tampered:
            what = "tampered signed manifest" if ev.tampered else "conflicting provenance"
            reasons.append({"cue": "provenance_conflict", "weight": 0.0, "detail": what})
    bonus: list[dict[str, Any]] = []
    if tier != "known":
        for cue in ("camera_signed", "camera_exif", "camera_qtables"):
            items = getattr(ev, cue)
            if items:
                bonus.append({"cue": cue, "weight": w[cue], "detail": _first(items)})
        if series_size > 1:
            k = min(series_size - 1, 10)
            bonus.append(
                {
                    "cue": "series_member",
                    "weight": w["series_member"] * k,
                    "detail": f"in a series with {series_size - 1} other group(s)",
                }
            )
        if faces:
            bonus.append({"cue": "face", "weight": w["face"], "detail": f"{faces} face link(s)"})
        if age_cue:
            bonus.append(
                {"cue": "apparent_minor", "weight": w["apparent_minor"], "detail": age_cue}
            )
    if tier == "known":
        unident = [m for m in matches or [] if m.get("victim_identified") is False]
        if unident:
            series = next((m["series"] for m in unident if m.get("series")), None)
            bonus.append(
                {
                    "cue": "victim_unidentified",
                    "weight": w["victim_unidentified"],
                    "detail": "bank entry: victim not identified"
                    + (f" (series {series})" if series else ""),
                }
            )
    if n_files > 1:
        k = min(n_files - 1, 10)
        bonus.append(
            {
                "cue": "copies",
                "weight": w["copies"] * k,
                "detail": f"{n_files} copies ({n_media} distinct contents)",
            }
        )
    if media_type == "video":
        bonus.append({"cue": "video", "weight": w["video"], "detail": "video"})
    total = sum(b["weight"] for b in bonus)
    if total > w["bonus_cap"]:
        bonus.append(
            {
                "cue": "bonus_cap",
                "weight": w["bonus_cap"] - total,
                "detail": f"bonuses capped at {w['bonus_cap']:g}",
            }
        )
        total = w["bonus_cap"]
    return tier, w[f"tier.{tier}"] + total, reasons + bonus


def prioritise(
    engine: Engine,
    case_id: int,
    weights: dict[str, float],
    *,
    face_links: dict[int, int] | None = None,
    age_cues: dict[int, str] | None = None,
) -> dict[str, int]:
    """Tier, priority, reasons and rank of every group of the case; series priority.

    Returns the number of groups per tier.
    """
    face_links = face_links or {}
    with engine.connect() as c:
        groups = c.execute(
            select(
                triage_groups.c.id,
                triage_groups.c.key,
                triage_groups.c.status,
                triage_groups.c.bank_category,
                triage_groups.c.n_files,
                triage_groups.c.n_media,
                triage_groups.c.series_id,
                triage_groups.c.media_type,
                triage_groups.c.matches,
            ).where(triage_groups.c.case_id == case_id)
        ).all()
        series_sizes: dict[int, int] = defaultdict(int)
        for g in groups:
            if g.series_id is not None:
                series_sizes[g.series_id] += 1
    evidence: dict[int, _Evidence] = defaultdict(_Evidence)
    group_age: dict[int, str] = {}
    last = 0
    while True:
        with engine.connect() as c:
            rows = c.execute(
                select(
                    triage_media.c.id,
                    triage_media.c.group_id,
                    triage_media.c.provenance_verdict,
                    triage_media.c.provenance,
                )
                .where(
                    triage_media.c.case_id == case_id,
                    triage_media.c.id > last,
                    triage_media.c.group_id.is_not(None),
                )
                .order_by(triage_media.c.id)
                .limit(5000)
            ).all()
        if not rows:
            break
        last = rows[-1].id
        for r in rows:
            prov = json.loads(r.provenance) if r.provenance else None
            _read(evidence[r.group_id], r.provenance_verdict, prov)
            if age_cues and r.id in age_cues:
                group_age.setdefault(r.group_id, str(age_cues[r.id])[:200])
    scored = []
    for g in groups:
        ev = evidence[g.id]
        tier, pri, reasons = score(
            g.status,
            g.bank_category,
            ev,
            weights,
            n_files=g.n_files,
            n_media=g.n_media,
            series_size=series_sizes.get(g.series_id, 1) if g.series_id is not None else 1,
            faces=face_links.get(g.id, 0),
            media_type=g.media_type,
            age_cue=group_age.get(g.id),
            matches=json.loads(g.matches) if g.matches else None,
        )
        verdict = max(ev.verdicts, key=lambda v: ev.verdicts[v]) if ev.verdicts else None
        scored.append((g.id, g.key, tier, pri, reasons, verdict, g.series_id))
    scored.sort(key=lambda t: (-t[3], TIERS.index(t[2]), t[1]))
    params = [
        {
            "gid": gid,
            "b_tier": tier,
            "pri": round(pri, 3),
            "b_rank": rank,
            "b_reasons": json.dumps(reasons, separators=(",", ":")),
            "verdict": verdict,
        }
        for rank, (gid, _k, tier, pri, reasons, verdict, _s) in enumerate(scored, start=1)
    ]
    series_pri: dict[int, float] = {}
    for _gid, _k, _t, pri, _r, _v, sid in scored:
        if sid is not None:
            series_pri[sid] = max(series_pri.get(sid, 0.0), pri)
    with engine.begin() as c:
        for s in range(0, len(params), 2000):
            c.execute(
                update(triage_groups)
                .where(triage_groups.c.id == bindparam("gid"))
                .values(
                    tier=bindparam("b_tier"),
                    priority=bindparam("pri"),
                    rank=bindparam("b_rank"),
                    reasons=bindparam("b_reasons"),
                    provenance_verdict=bindparam("verdict"),
                ),
                params[s : s + 2000],
            )
        if series_pri:
            c.execute(
                update(triage_series)
                .where(triage_series.c.id == bindparam("sid"))
                .values(priority=bindparam("pri")),
                [{"sid": k, "pri": round(v, 3)} for k, v in series_pri.items()],
            )
    counts: dict[str, int] = defaultdict(int)
    for t in scored:
        counts[t[2]] += 1
    return dict(counts)
