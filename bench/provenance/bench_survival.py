"""Which provenance evidence survives which transform (issue 5, item 9).

Run by hand (not in tests)::

    .venv/bin/python bench/provenance/bench_survival.py            # 50 photos, appends results
    .venv/bin/python bench/provenance/bench_survival.py --n 12 --no-append

From benign photos in ../shared (Kodak PNGs, BSDS500 JPEGs) it makes marked copies:

* ``SDXL watermark`` / ``SD1 watermark``: :func:`watermark.embed`, saved as PNG;
* ``A1111 parameters``: a PNG ``parameters`` text chunk (benign prompt);
* ``IPTC XMP``: a JPEG (q95) whose XMP says DigitalSourceType trainedAlgorithmicMedia;
* ``NovelAI stealth``: the alpha-LSB ``stealth_pngcomp`` payload, PNG;
* ``C2PA signed`` (and ``C2PA + watermark``): :func:`sign.sign_bytes` with a test chain,

then applies each transform and checks whether the evidence is still found:

* ``original``: as made;
* ``jpeg_q75``: decode, re-encode JPEG q75 (4:2:0 chroma, Pillow default), EXIF/XMP carried
  over (what most editors do), PNG text chunks dropped (JPEG has no place for them);
* ``jpeg_q95_444``: a careful re-encode (q95, full-resolution chroma), EXIF/XMP carried;
* ``resize_0.5``: half size (Lanczos), same format, text chunks/EXIF/XMP carried;
* ``screenshot``: 0.8x bilinear rescale saved as PNG with no metadata (pixels only);
* ``strip``: metadata removed at the byte level (PNG ancillary text/EXIF/C2PA chunks, JPEG
  APP1-APP15 and COM segments); pixels untouched.

It also measures the watermark false-positive rate on all 524 unmarked photos (published
bit-count rule vs the correlation rule Sentinelle uses) and the time per image of each of
the P2 sources.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, PngImagePlugin

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from _machine import append_results  # noqa: E402
from sentinelle.provenance import analyze_bytes, camera, metadata, watermark  # noqa: E402
from sentinelle.provenance.evidence import Evidence, SourceContext  # noqa: E402
from sentinelle.provenance.stealth import write_stealth  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpora" / "photos"
PROMPT = "a lighthouse on a rocky coast at sunset"
A1111 = (
    f"{PROMPT}\nNegative prompt: blurry\nSteps: 25, Sampler: Euler a, CFG scale: 7, "
    "Seed: 42, Size: 512x512, Model: sd_xl_base_1.0, Version: v1.9.4"
)
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
    b'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
    b"<Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/digitalsourcetype/"
    b"trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>"
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


# --- encoding helpers -------------------------------------------------------------------


def _save(img: Image.Image, fmt: str, *, text=None, exif=None, xmp=None, **kw) -> bytes:
    buf = io.BytesIO()
    extra = dict(kw)
    if fmt == "PNG" and text:
        info = PngImagePlugin.PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
        extra["pnginfo"] = info
    if exif:
        extra["exif"] = exif
    if xmp and fmt in ("JPEG", "WEBP"):
        extra["xmp"] = xmp
    if xmp and fmt == "PNG":
        info = extra.get("pnginfo") or PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
        extra["pnginfo"] = info
    img.save(buf, fmt, **extra)
    return buf.getvalue()


def _carried(im: Image.Image) -> dict:
    """Metadata a typical editor carries over: PNG text, EXIF, XMP."""
    text = {k: v for k, v in im.info.items() if isinstance(v, str) and k != "XML:com.adobe.xmp"}
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode()
    return {"text": text, "exif": im.info.get("exif"), "xmp": xmp}


def jpeg_q75(data: bytes) -> bytes:
    im = Image.open(io.BytesIO(data))
    meta = _carried(im)
    return _save(im.convert("RGB"), "JPEG", exif=meta["exif"], xmp=meta["xmp"], quality=75)


def jpeg_q95_444(data: bytes) -> bytes:
    im = Image.open(io.BytesIO(data))
    meta = _carried(im)
    return _save(
        im.convert("RGB"), "JPEG", exif=meta["exif"], xmp=meta["xmp"], quality=95, subsampling=0
    )


def resize_half(data: bytes) -> bytes:
    im = Image.open(io.BytesIO(data))
    meta = _carried(im)
    fmt = im.format or "PNG"
    small = im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)
    kw = {"quality": 95} if fmt == "JPEG" else {}
    if fmt == "JPEG":
        small = small.convert("RGB")
    return _save(small, fmt, text=meta["text"], exif=meta["exif"], xmp=meta["xmp"], **kw)


def screenshot(data: bytes) -> bytes:
    im = Image.open(io.BytesIO(data)).convert("RGB")
    shot = im.resize((int(im.width * 0.8), int(im.height * 0.8)), Image.Resampling.BILINEAR)
    return _save(shot, "PNG")


_PNG_DROP = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"caBX", b"tIME"}


def strip(data: bytes) -> bytes:
    """Remove metadata without touching pixels (PNG chunks / JPEG APPn+COM segments)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        out, pos = [data[:8]], 8
        while pos + 8 <= len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            ctype = data[pos + 4 : pos + 8]
            end = pos + 12 + length
            if ctype not in _PNG_DROP:
                out.append(data[pos:end])
            pos = end
        return b"".join(out)
    if data.startswith(b"\xff\xd8"):
        out, pos = [b"\xff\xd8"], 2
        while pos + 4 <= len(data):
            marker = data[pos + 1]
            if marker == 0xDA:  # start of scan: the rest is entropy-coded data
                out.append(data[pos:])
                break
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            seg = data[pos : pos + 2 + length]
            if not (0xE1 <= marker <= 0xEF or marker == 0xFE):
                out.append(seg)
            pos += 2 + length
        return b"".join(out)
    raise ValueError("strip: unsupported format")


TRANSFORMS: dict[str, Callable[[bytes], bytes]] = {
    "original": lambda d: d,
    "jpeg_q75": jpeg_q75,
    "jpeg_q95_444": jpeg_q95_444,
    "resize_0.5": resize_half,
    "screenshot": screenshot,
    "strip": strip,
}


# --- marked copies and their checks -----------------------------------------------------


def _items(data: bytes, sources: list[str], anchors: str | None = None) -> list[Evidence]:
    return analyze_bytes(data, sources=sources, trust_anchors_pem=anchors).evidence


def has_mark(name: str) -> Callable[[bytes], bool]:
    return lambda d: any(
        e.details.get("mark") == name for e in _items(d, ["watermark"]) if e.indicates != "error"
    )


def published_sdxl(data: bytes) -> bool:
    """Stability's own rule: >= 34 of 48 bits (no correlation), for comparison."""
    img = Image.open(io.BytesIO(data))
    if img.width * img.height < 256 * 256:
        return False
    (score,) = watermark.score_marks(img, (watermark.SDXL,))
    return score.matched_bits >= watermark.SDXL.published_likely


def has_rule(rule: str) -> Callable[[bytes], bool]:
    return lambda d: any(
        e.details.get("rule") == rule and e.indicates == "ai_generated"
        for e in _items(d, ["metadata"])
    )


def build_kinds(chain, anchors: str) -> dict[str, tuple[Callable[[Image.Image], bytes], Callable]]:
    from sentinelle.provenance.sign import sign_bytes

    cert, key = chain.chain.read_bytes(), chain.key.read_bytes()

    def c2pa_found(d: bytes) -> bool:
        return any(
            e.source.startswith("c2pa") and e.indicates == "ai_generated"
            for e in _items(d, ["c2pa"], anchors)
        )

    def c2pa_or_mark(d: bytes) -> bool:
        return c2pa_found(d) or has_mark("sdxl")(d)

    def signed(img: Image.Image, wm: bool) -> bytes:
        return sign_bytes(
            _save(img, "PNG"), cert_pem=cert, key_pem=key, software_agent="BenchGen 1.0",
            watermark=wm,
        )  # fmt: skip

    def sdxl(im: Image.Image) -> bytes:
        return _save(watermark.embed_sdxl(im), "PNG")

    def sd1(im: Image.Image) -> bytes:
        return _save(watermark.embed(im, watermark.SD1), "PNG")

    def a1111(im: Image.Image) -> bytes:
        return _save(im, "PNG", text={"parameters": A1111})

    def iptc(im: Image.Image) -> bytes:
        return _save(im, "JPEG", xmp=XMP, quality=95)

    return {
        "SDXL watermark": (sdxl, has_mark("sdxl")),
        "SDXL watermark, published bit rule only": (sdxl, published_sdxl),
        "SD1 watermark": (sd1, has_mark("sd1")),
        "A1111 parameters (PNG)": (a1111, has_rule("a1111")),
        "IPTC XMP (JPEG)": (iptc, has_rule("iptc_digital_source_type")),
        "NovelAI stealth (PNG)": (
            lambda im: _save(write_stealth(im, {"Software": "NovelAI", "Comment": "{}"}), "PNG"),
            has_rule("novelai_stealth"),
        ),
        "C2PA signed (PNG)": (lambda im: signed(im, False), c2pa_found),
        "C2PA + SDXL watermark": (lambda im: signed(im, True), c2pa_or_mark),
    }  # fmt: skip


def photos(n: int) -> list[Image.Image]:
    files = sorted((SHARED / "kodak24").glob("*.png"))[: min(24, n)]
    files += sorted((SHARED / "bsds500").glob("*.jpg"))[: max(0, n - len(files))]
    return [Image.open(p).convert("RGB") for p in files]


def survival_table(images: list[Image.Image], chain, anchors: str) -> str:
    kinds = build_kinds(chain, anchors)
    head = "| evidence | " + " | ".join(TRANSFORMS) + " |"
    rows = [head, "|" + "---|" * (len(TRANSFORMS) + 1)]
    for kind, (make, check) in kinds.items():
        found = dict.fromkeys(TRANSFORMS, 0)
        for img in images:
            marked = make(img)
            for name, transform in TRANSFORMS.items():
                found[name] += bool(check(transform(marked)))
        cells = [f"{found[t]}/{len(images)}" for t in TRANSFORMS]
        rows.append(f"| {kind} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    # false flags: unmarked copies through the same transforms
    flags = dict.fromkeys(TRANSFORMS, 0)
    for img in images:
        base = _save(img, "PNG")
        for name, transform in TRANSFORMS.items():
            items = _items(transform(base), ["metadata", "watermark"])
            flags[name] += any(e.indicates in ("ai_generated", "ai_edited") for e in items)
    rows.append(
        "| *unmarked: false AI flags* | "
        + " | ".join(f"{flags[t]}/{len(images)}" for t in TRANSFORMS)
        + " |"
    )
    return "\n".join(rows)


def watermark_false_positives() -> str:
    files = sorted(SHARED.glob("*/*"))
    published = {m.name: 0 for m in watermark.KNOWN_MARKS}
    ours = {m.name: 0 for m in watermark.KNOWN_MARKS}
    best = {m.name: (0, 0.0) for m in watermark.KNOWN_MARKS}
    for path in files:
        for score in watermark.score_marks(Image.open(path).convert("RGB")):
            name = score.mark.name
            published[name] += score.matched_bits >= score.mark.published_likely
            ours[name] += score.detected
            best[name] = (
                max(best[name][0], score.matched_bits),
                max(best[name][1], score.correlation),
            )
    rows = [
        f"Watermark false positives on {len(files)} unmarked photos (BSDS500 + Kodak; SDXL "
        "also checked with swapped channels):",
        "",
        "| mark | bits | published rule (>= likely bits) | correlation rule | "
        "max bits seen | max correlation seen |",
        "|---|---|---|---|---|---|",
    ]
    for m in watermark.KNOWN_MARKS:
        rows.append(
            f"| {m.name} | {len(m.bits)} | >= {m.published_likely}: {published[m.name]} | "
            f">= {m.min_corr}: {ours[m.name]} | {best[m.name][0]} | {best[m.name][1]:.3f} |"
        )
    return "\n".join(rows)


def source_timings(images: list[Image.Image]) -> str:
    rows = ["| source | ms per image (mean, single core) |", "|---|---|"]
    blobs = [_save(img, "PNG") for img in images]
    for name, fn in (
        ("watermark", watermark.collect),
        ("metadata", metadata.collect),
        ("camera", camera.collect),
    ):
        elapsed = 0.0
        for data in blobs:
            ctx = SourceContext(media_type="image/png").bind(data)
            ctx.image()
            t1 = time.perf_counter()
            fn(data, ctx)
            elapsed += time.perf_counter() - t1
        rows.append(f"| {name} | {1000 * elapsed / len(blobs):.1f} |")
    size = f"{images[0].width}x{images[0].height}"
    return f"Source cost (decode excluded; first image {size}):\n\n" + "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="photos to mark (default 50)")
    ap.add_argument("--no-append", action="store_true", help="print only")
    args = ap.parse_args()
    from sentinelle.provenance.sign import make_test_chain

    images = photos(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        chain = make_test_chain(tmp)
        anchors = chain.root_cert.read_text()
        t0 = time.perf_counter()
        table = survival_table(images, chain, anchors)
        survival_s = time.perf_counter() - t0
    fp = watermark_false_positives()
    print(fp)
    timings = source_timings(images[:24])
    print(timings)
    body = (
        f"Evidence survival: marked copies of {len(images)} benign photos (Kodak24 PNG + "
        "BSDS500 JPEG), cell = copies where the evidence is still found after the "
        f"transform ({survival_s:.0f} s).\n\n{table}\n\n{fp}\n\n{timings}\n"
    )
    if not args.no_append:
        append_results("Issue 5: provenance — evidence survival (bench_survival.py)", body)
    else:
        print(body)
    print(json.dumps({"photos": len(images), "seconds": round(survival_s, 1)}))


if __name__ == "__main__":
    main()
