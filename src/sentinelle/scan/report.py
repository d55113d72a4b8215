"""Self-contained HTML triage report built from scan records.

No media is shown by default. With ``thumbnails=True`` small thumbnails are embedded
(as data URIs, made in memory) and displayed blurred and in grayscale until the
reviewer clicks one, so nobody is exposed to an image they did not choose to see.
"""

from __future__ import annotations

import base64
import io
import os
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from .. import __version__

THUMB_PX = 128
MAX_UNMATCHED_ROWS = 2000
MAX_ROWS = 20000


def _thumbnail(path: str) -> str | None:
    """A small JPEG data URI, or None if the file is not a decodable image."""
    from PIL import Image

    try:
        Image.MAX_IMAGE_PIXELS = 100_000_000
        with Image.open(path) as im:
            im.draft("RGB", (THUMB_PX * 2, THUMB_PX * 2))
            im.thumbnail((THUMB_PX, THUMB_PX))
            buf = io.BytesIO()
            im.convert("RGB").save(buf, "JPEG", quality=70)
    except Exception:  # noqa: BLE001 - a thumbnail is optional; no thumbnail then
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def build_report(
    records: Iterable[dict[str, Any]],
    *,
    title: str = "Sentinelle scan report",
    thumbnails: bool = False,
    banks: list[str] | None = None,
) -> str:
    matched: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    per_bank: Counter[str] = Counter()
    per_bank_entries: dict[str, set[int]] = {}
    per_variant: Counter[str] = Counter()
    error_codes: Counter[str] = Counter()
    total = 0
    n_matched = 0
    n_unmatched = 0
    total_bytes = 0
    media_types: Counter[str] = Counter()
    prov_verdicts: Counter[str] = Counter()
    for rec in records:
        total += 1
        if isinstance(rec.get("provenance"), dict):
            prov = rec["provenance"]
            prov_verdicts["tampered" if prov.get("tampered") else prov.get("verdict", "?")] += 1
        total_bytes += int(rec.get("size") or 0)
        media_types[rec.get("media_type") or "unknown"] += 1
        if rec.get("error"):
            error_codes[rec["error"]["code"]] += 1
            if len(errors) < MAX_ROWS:
                errors.append(rec)
            if not rec.get("matches"):
                continue
        if rec.get("matches"):
            n_matched += 1
            for bank in {m["bank"] for m in rec["matches"]}:
                per_bank[bank] += 1
            for m in rec["matches"]:
                per_bank_entries.setdefault(m["bank"], set()).add(m["entry_id"])
                per_variant[m.get("variant") or "plain"] += 1
            if len(matched) < MAX_ROWS:
                row = dict(rec)
                row["best"] = sorted(rec["matches"], key=lambda m: m.get("distance", 0))
                if thumbnails and rec.get("media_type") == "image":
                    row["thumb"] = _thumbnail(rec["path"])
                matched.append(row)
        else:
            n_unmatched += 1
            if len(unmatched) < MAX_UNMATCHED_ROWS:
                unmatched.append(rec)
    env = Environment(
        loader=PackageLoader("sentinelle", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    tpl = env.get_template("scan_report.html")
    return tpl.render(
        title=title,
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        total=total,
        total_bytes=total_bytes,
        n_matched=n_matched,
        n_errors=sum(error_codes.values()),
        n_unmatched=n_unmatched,
        matched=matched,
        unmatched=unmatched,
        unmatched_truncated=MAX_UNMATCHED_ROWS,
        errors=errors,
        per_bank=sorted(per_bank.items(), key=lambda kv: (-kv[1], kv[0])),
        per_bank_entries={k: len(v) for k, v in per_bank_entries.items()},
        per_variant=sorted(per_variant.items(), key=lambda kv: (-kv[1], kv[0])),
        error_codes=sorted(error_codes.items(), key=lambda kv: (-kv[1], kv[0])),
        media_types=sorted(media_types.items()),
        prov_verdicts=sorted(prov_verdicts.items(), key=lambda kv: (-kv[1], kv[0])),
        banks=banks or [],
        thumbnails=thumbnails,
        basename=os.path.basename,
    )


def write_report(records: Iterable[dict[str, Any]], out: str | os.PathLike[str], **kw: Any) -> Path:
    html = build_report(records, **kw)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    return out
