"""A synthetic "seized folder" from benign photos, with ground truth (triage tests, bench).

Everything is built from the benign corpora in ``../shared/corpora/photos`` (natural
scenes of the BSDS500 and Kodak sets) and procedurally rendered pictures; no real
case material exists here. What it holds:

* **known** sources: enrolled in a bank (PDQ + MD5, category ``B2``); their exact and
  transformed copies (resize, re-encode, small crop, brightness, border) are spread
  over folders and a ZIP.
* **series**: per series, one source photo cut into several "shots" (crops at
  different offsets), all carrying the same fake device EXIF (make, model, body
  serial, plausible exposure fields) and the model's own (non-standard) JPEG
  quantisation tables, capture times in a burst and GPS a few metres apart; some shots
  also get transformed copies (re-encoded: standard tables).
* **singles**: new photos without EXIF (unknown origin), some with transformed copies,
  and decoys sharing a series' camera *model* (other serial, other day).
* **ai**: rendered pictures saved as PNG with an A1111 ``parameters`` chunk (generator
  metadata), some of them with copies.

``truth`` maps each file's path (relative to the root; archive members as
``archive.zip!/member``) to ``{"visual": id, "series": id or None, "kind": ...}``:
files with the same ``visual`` id are copies of one picture (the near-duplicate
ground truth), files with the same ``series`` id belong to one series.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps, PngImagePlugin

PHOTOS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "photos"


def corpus() -> list[Path]:
    return sorted((PHOTOS / "bsds500").glob("*.jpg")) + sorted((PHOTOS / "kodak24").glob("*.png"))


def device_exif(
    make: str,
    model: str,
    serial: str | None,
    taken_at: str,
    gps: tuple[float, float] | None = None,
) -> Image.Exif:
    ex = Image.Exif()
    ex[0x010F] = make
    ex[0x0110] = model
    sub = ex.get_ifd(0x8769)
    sub[0x829A] = (1, 125)  # exposure time
    sub[0x829D] = (28, 10)  # f/2.8
    sub[0x8827] = 200  # ISO
    sub[0x920A] = (50, 1)  # focal length
    sub[0x9003] = taken_at
    if serial:
        sub[0xA431] = serial
    if gps is not None:
        g = ex.get_ifd(0x8825)

        def dms(v: float) -> tuple[float, float, float]:
            v = abs(v)
            d = int(v)
            m = int((v - d) * 60)
            s = round(((v - d) * 60 - m) * 60, 4)
            return (float(d), float(m), float(s))

        g[1] = "N" if gps[0] >= 0 else "S"
        g[2] = dms(gps[0])
        g[3] = "E" if gps[1] >= 0 else "W"
        g[4] = dms(gps[1])
    return ex


def firmware_qtables(model_index: int) -> list[list[int]]:
    """Non-standard JPEG quantisation tables, one pair per fake camera model (firmware)."""
    m = model_index
    luma = [2 + ((i * (3 + m)) % 11) for i in range(64)]
    chroma = [3 + ((i * (5 + m)) % 13) for i in range(64)]
    return [luma, chroma]


def save_jpeg(
    im: Image.Image,
    path: Path,
    quality: int = 90,
    exif: Image.Exif | None = None,
    qtables: list[list[int]] | None = None,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    kw: dict[str, Any] = {"qtables": qtables} if qtables is not None else {"quality": quality}
    if exif is not None:
        kw["exif"] = exif
    im.convert("RGB").save(path, "JPEG", **kw)


def transform(im: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    """A copy that stays the same picture (near-duplicate ground truth)."""
    w, h = im.size
    if kind == "resize":
        f = rng.uniform(0.55, 0.8)
        return im.resize((max(32, int(w * f)), max(32, int(h * f))), Image.Resampling.LANCZOS)
    if kind == "crop":
        dx, dy = int(w * rng.uniform(0.02, 0.05)), int(h * rng.uniform(0.02, 0.05))
        return im.crop((dx, dy, w - dx, h - dy))
    if kind == "bright":
        return ImageEnhance.Brightness(im).enhance(rng.uniform(0.85, 1.15))
    if kind == "border":
        return ImageOps.expand(im, border=int(min(w, h) * 0.06), fill=(0, 0, 0))
    return im  # "reencode": only the save quality changes


TRANSFORMS = ("resize", "crop", "bright", "border", "reencode")


def shots(im: Image.Image, n: int, rng: random.Random) -> list[Image.Image]:
    """``n`` different "shots" of one scene: 60% crops at spread offsets."""
    w, h = im.size
    cw, ch = int(w * 0.6), int(h * 0.6)
    out = []
    for i in range(n):
        fx = (i % 3) / 2
        fy = ((i // 3) % 2) * 1.0 if n > 3 else rng.uniform(0, 1)
        x = int((w - cw) * fx)
        y = int((h - ch) * fy)
        out.append(im.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.BICUBIC))
    return out


def rendered(seed: int, size: int = 384) -> Image.Image:
    """A procedurally rendered, smooth "AI-style" picture (gradients and shapes)."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    a, b, c = r.uniform(0.5, 4, 3)
    base = np.stack(
        [
            np.sin(a * np.pi * xx + r.uniform(0, 6)) * 0.5 + 0.5,
            np.sin(b * np.pi * yy + r.uniform(0, 6)) * 0.5 + 0.5,
            np.sin(c * np.pi * (xx + yy) + r.uniform(0, 6)) * 0.5 + 0.5,
        ],
        axis=-1,
    )
    im = Image.fromarray((base * 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(int(r.integers(3, 8))):
        x0, y0 = (int(v) for v in r.integers(0, size - 40, 2))
        x1, y1 = x0 + int(r.integers(30, size // 2)), y0 + int(r.integers(30, size // 2))
        color = tuple(int(v) for v in r.integers(0, 255, 3))
        (d.ellipse if r.random() < 0.5 else d.rectangle)((x0, y0, x1, y1), fill=color)
    return im


def save_ai_png(im: Image.Image, path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        f"a landscape painting\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: {seed}, "
        "Size: 384x384, Model: sd15",
    )
    im.save(path, "PNG", pnginfo=info)


@dataclass
class Seized:
    root: Path
    truth: dict[str, dict[str, Any]] = field(default_factory=dict)
    known_sources: list[Path] = field(default_factory=list)
    n_files: int = 0

    def add(self, rel: str, visual: str, series: str | None, kind: str) -> None:
        self.truth[rel] = {"visual": visual, "series": series, "kind": kind}
        self.n_files += 1

    def dump(self) -> None:
        (self.root.parent / f"{self.root.name}.truth.json").write_text(json.dumps(self.truth))


def build_seized(
    root: Path,
    *,
    n_known: int = 20,
    n_series: int = 6,
    shots_per_series: int = 4,
    n_singles: int = 20,
    n_ai: int = 8,
    copies: int = 2,
    seed: int = 7,
    zip_known: bool = True,
) -> Seized:
    """Build the folder under ``root`` (see the module docstring); returns the truth."""
    rng = random.Random(seed)
    photos = corpus()
    need = n_known + n_series + n_singles
    if need > len(photos):
        raise ValueError(f"{need} source photos wanted, the corpus has {len(photos)}")
    picks = rng.sample(photos, need)
    known, series_src, singles = (
        picks[:n_known],
        picks[n_known : n_known + n_series],
        picks[n_known + n_series :],
    )
    sz = Seized(root)
    root.mkdir(parents=True, exist_ok=True)
    zbuf = io.BytesIO()
    zf = zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) if zip_known else None

    def put(
        im: Image.Image,
        rel: str,
        visual: str,
        series: str | None,
        kind: str,
        quality: int = 90,
        exif: Image.Exif | None = None,
        into_zip: bool = False,
        qtables: list[list[int]] | None = None,
    ) -> None:
        if into_zip and zf is not None:
            b = io.BytesIO()
            kw: dict[str, Any] = {"quality": quality}
            if exif is not None:
                kw["exif"] = exif
            im.convert("RGB").save(b, "JPEG", **kw)
            zf.writestr(rel, b.getvalue())
            sz.add(f"known.zip!/{rel}", visual, series, kind)
        else:
            save_jpeg(im, root / rel, quality, exif, qtables)
            sz.add(rel, visual, series, kind)

    for i, src in enumerate(known):
        sz.known_sources.append(src)
        im = Image.open(src).convert("RGB")
        v = f"known{i}"
        # an exact copy of the enrolled file
        data = src.read_bytes()
        (root / "downloads").mkdir(parents=True, exist_ok=True)
        (root / "downloads" / f"k{i}{src.suffix}").write_bytes(data)
        sz.add(f"downloads/k{i}{src.suffix}", v, None, "known")
        for c in range(copies):
            t = TRANSFORMS[(i + c) % len(TRANSFORMS)]
            put(
                transform(im, t, rng),
                f"known/k{i}_{c}_{t}.jpg",
                v,
                None,
                "known",
                quality=rng.choice((60, 75, 85)),
                into_zip=(c % 2 == 1),
            )
    models = [
        ("Canon", "Canon EOS 80D"),
        ("NIKON CORPORATION", "NIKON D7500"),
        ("Apple", "iPhone 12"),
        ("samsung", "SM-G991B"),
        ("SONY", "ILCE-7M3"),
    ]
    for s, src in enumerate(series_src):
        im = Image.open(src).convert("RGB")
        make, model = models[s % len(models)]
        serial = f"SN{s:04d}{rng.randint(1000, 9999)}"
        day = 1 + s
        lat, lon = 45.0 + s * 0.5, 5.0 + s * 0.5
        sid = f"series{s}"
        for k, shot in enumerate(shots(im, shots_per_series, rng)):
            t = f"2024:03:{day:02d} 14:{10 + k * 2:02d}:{rng.randint(0, 59):02d}"
            ex = device_exif(make, model, serial, t, (lat + k * 1e-5, lon + k * 1e-5))
            v = f"{sid}_shot{k}"
            put(
                shot,
                f"DCIM/{sid}/IMG_{k:04d}.jpg",
                v,
                sid,
                "series",
                exif=ex,
                qtables=firmware_qtables(s % len(models)),
            )
            if k < copies:  # a transformed copy of some shots (exif kept: a forwarded file)
                tk = TRANSFORMS[(s + k) % len(TRANSFORMS)]
                put(
                    transform(shot, tk, rng),
                    f"chat/{sid}_{k}_{tk}.jpg",
                    v,
                    sid,
                    "series",
                    quality=70,
                    exif=ex,
                )
    for i, src in enumerate(singles):
        im = Image.open(src).convert("RGB")
        v = f"single{i}"
        exif = None
        kind = "single"
        qt = None
        if i % 4 == 0:  # decoy: a series' camera model (same firmware), another serial, day
            make, model = models[i % len(models)]
            exif = device_exif(make, model, f"OTHER{i}", f"2023:0{1 + i % 9}:15 09:00:00")
            kind = "decoy"
            qt = firmware_qtables(i % len(models))
        put(im, f"misc/s{i}.jpg", v, None, kind, quality=85, exif=exif, qtables=qt)
        for c in range(copies if i % 2 == 0 else 0):
            t = TRANSFORMS[(i + c + 1) % len(TRANSFORMS)]
            put(transform(im, t, rng), f"misc/s{i}_{c}_{t}.jpg", v, None, kind, quality=75)
    for i in range(n_ai):
        im = rendered(seed * 1000 + i)
        v = f"ai{i}"
        rel = f"gen/ai{i}.png"
        save_ai_png(im, root / rel, i)
        sz.add(rel, v, None, "ai")
        if i % 2 == 0:
            rel2 = f"gen/ai{i}_copy.png"
            save_ai_png(im, root / rel2, i)  # same bytes: an exact copy
            sz.add(rel2, v, None, "ai")
    if zf is not None:
        zf.close()
        (root / "known.zip").write_bytes(zbuf.getvalue())
    sz.dump()
    return sz


def enroll_known(
    engine: Any, seized: Seized, bank: str = "known-bank", category: str = "B2"
) -> None:
    """A bank holding the known sources (exact PDQ + MD5), as a hash list would."""
    import hashlib

    from sentinelle.banks import BankStore
    from sentinelle.formats.entry import EntryIn
    from sentinelle.signals.hasher import hash_file

    store = BankStore(engine)
    store.create_bank(bank)
    entries = []
    for i, src in enumerate(seized.known_sources):
        r = hash_file(src)
        pdq = r.signal("pdq")
        ref = f"known{i}"
        if pdq is not None:
            entries.append(
                EntryIn(signal_type="pdq", hash=pdq.hash, media_ref=ref, category=category)
            )
        entries.append(
            EntryIn(
                signal_type="md5",
                hash=hashlib.md5(src.read_bytes()).hexdigest(),
                media_ref=ref,
                category=category,
            )
        )
    store.add_entries(bank, entries)
