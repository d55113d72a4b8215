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
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, func, select, update

from ..audit.chain import write_transaction
from .store import id_list
from .tables import triage_groups, triage_media, triage_series

CHUNK = 1000  # groups scored and written at a time (memory does not grow with the case)

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


def _scored_chunks(
    c: Connection,
    case_id: int,
    weights: dict[str, float],
    face_links: dict[int, int],
    age_cues: dict[int, str] | None,
    chunk: int,
) -> Iterator[list[dict[str, Any]]]:
    """The case's groups scored, by id, ``chunk`` groups at a time (update params)."""
    g, m = triage_groups, triage_media
    last = 0
    while True:
        groups = c.execute(
            select(
                g.c.id,
                g.c.key,
                g.c.status,
                g.c.bank_category,
                g.c.n_files,
                g.c.n_media,
                g.c.series_id,
                g.c.media_type,
                g.c.matches,
            )
            .where(g.c.case_id == case_id, g.c.id > last)
            .order_by(g.c.id)
            .limit(chunk)
        ).all()
        if not groups:
            return
        last = groups[-1].id
        sids = sorted({r.series_id for r in groups if r.series_id is not None})
        # a series' size: its groups in this case (what the whole-case count gave)
        sizes: dict[int, int] = (
            dict(
                c.execute(
                    select(g.c.series_id, func.count())
                    .where(g.c.case_id == case_id, g.c.series_id.in_(id_list(sids)))
                    .group_by(g.c.series_id)
                ).all()
            )
            if sids
            else {}
        )
        evidence: dict[int, _Evidence] = defaultdict(_Evidence)
        group_age: dict[int, str] = {}
        # by media id, as the whole-case pass read them (evidence order, age cue)
        rows = c.execute(
            select(m.c.id, m.c.group_id, m.c.provenance_verdict, m.c.provenance)
            .where(m.c.case_id == case_id, m.c.group_id.in_(id_list(r.id for r in groups)))
            .order_by(m.c.id)
        )
        for r in rows:
            prov = json.loads(r.provenance) if r.provenance else None
            _read(evidence[r.group_id], r.provenance_verdict, prov)
            if age_cues and r.id in age_cues:
                group_age.setdefault(r.group_id, str(age_cues[r.id])[:200])
        params = []
        for r in groups:
            ev = evidence[r.id]
            tier, pri, reasons = score(
                r.status,
                r.bank_category,
                ev,
                weights,
                n_files=r.n_files,
                n_media=r.n_media,
                series_size=sizes.get(r.series_id, 1) if r.series_id is not None else 1,
                faces=face_links.get(r.id, 0),
                media_type=r.media_type,
                age_cue=group_age.get(r.id),
                matches=json.loads(r.matches) if r.matches else None,
            )
            verdict = max(ev.verdicts, key=lambda v: ev.verdicts[v]) if ev.verdicts else None
            params.append(
                {
                    "gid": r.id,
                    "b_tier": tier,
                    "pri": pri,
                    "b_reasons": json.dumps(reasons, separators=(",", ":")),
                    "verdict": verdict,
                }
            )
        yield params


def prioritise(
    engine: Engine,
    case_id: int,
    weights: dict[str, float],
    *,
    face_links: dict[int, int] | None = None,
    age_cues: dict[int, str] | None = None,
    chunk: int | None = None,
) -> dict[str, int]:
    """Tier, priority, reasons and rank of every group of the case; series priority.

    Streams: groups are scored ``chunk`` (default :data:`CHUNK`) at a time, by id,
    and written as they are; the rank (priority, then tier order, then key) and each
    series' priority (its best group's) are then set in SQL, so memory does not grow
    with the number of groups. One transaction: readers see the old ranking or the
    new one. Returns the number of groups per tier.
    """
    face_links = face_links or {}
    chunk = chunk or CHUNK
    g, s = triage_groups, triage_series
    with write_transaction(engine) as c:
        inexact = False  # a priority that rounding changes (non-integer weights)
        for params in _scored_chunks(c, case_id, weights, face_links, age_cues, chunk):
            inexact = inexact or any(p["pri"] != round(p["pri"], 3) for p in params)
            c.execute(_WRITE, params)
        # the rank orders the unrounded priorities (stored rounded to 3 decimals, below)
        key = g.c.key.collate("C") if c.dialect.name == "postgresql" else g.c.key
        tier_order = case({t: i for i, t in enumerate(TIERS)}, value=g.c.tier, else_=len(TIERS))
        ordered = (
            select(
                g.c.id,
                func.row_number()
                .over(order_by=(g.c.priority.desc(), tier_order, key, g.c.id))
                .label("rn"),
            )
            .where(g.c.case_id == case_id)
            .subquery()
        )
        c.execute(update(g).where(g.c.id == ordered.c.id).values(rank=ordered.c.rn))
        if inexact:
            _round_priorities(c, case_id, chunk)
        best = (
            select(func.max(g.c.priority))
            .where(g.c.case_id == case_id, g.c.series_id == s.c.id)
            .scalar_subquery()
        )
        c.execute(
            update(s)
            .where(
                s.c.case_id == case_id,
                s.c.id.in_(
                    select(g.c.series_id).where(g.c.case_id == case_id, g.c.series_id.is_not(None))
                ),
            )
            # its best group's priority, never below 0
            .values(priority=case((best > 0.0, best), else_=0.0))
        )
        counts = c.execute(
            select(g.c.tier, func.count())
            .where(g.c.case_id == case_id)
            .group_by(g.c.tier)
            .order_by(func.min(g.c.rank))
        ).all()
    return {t: int(n) for t, n in counts}


_WRITE = (
    update(triage_groups)
    .where(triage_groups.c.id == bindparam("gid"))
    .values(
        tier=bindparam("b_tier"),
        priority=bindparam("pri"),
        reasons=bindparam("b_reasons"),
        provenance_verdict=bindparam("verdict"),
    )
)


def _round_priorities(c: Connection, case_id: int, chunk: int) -> None:
    """Store every priority of the case rounded to 3 decimals (Python's rounding)."""
    g = triage_groups
    last = 0
    while True:
        rows = c.execute(
            select(g.c.id, g.c.priority)
            .where(g.c.case_id == case_id, g.c.id > last)
            .order_by(g.c.id)
            .limit(chunk)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        params = [
            {"gid": r.id, "pri": round(r.priority, 3)}
            for r in rows
            if round(r.priority, 3) != r.priority
        ]
        if params:
            c.execute(
                update(g).where(g.c.id == bindparam("gid")).values(priority=bindparam("pri")),
                params,
            )
