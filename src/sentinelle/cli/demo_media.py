"""The `make run` demo: render benign images, bank half of them, scan altered copies.

Everything here is synthetic and benign: procedurally drawn landscapes and shapes.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

DEMO_BANK = "demo-known"


def render_scene(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A colourful procedural 'landscape': sky gradient, sun, hills, shapes, label."""
    rng = random.Random(seed)
    w, h = size
    top = np.array([rng.randint(40, 200) for _ in range(3)], dtype=np.float32)
    bottom = np.array([rng.randint(120, 255) for _ in range(3)], dtype=np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = (top * (1 - t) + bottom * t).repeat(w, axis=1)
    img = Image.fromarray(sky.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    sx, sy, r = rng.randint(40, w - 40), rng.randint(30, h // 2), rng.randint(20, 60)
    d.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(255, rng.randint(180, 240), 80))
    for layer in range(3):
        base = h * (0.55 + 0.12 * layer)
        pts = [(0, h)]
        for x in range(0, w + 40, 40):
            pts.append((x, base - rng.randint(0, int(h * 0.25))))
        pts.append((w, h))
        shade = rng.randint(30, 140)
        d.polygon(pts, fill=(shade // 2, shade, shade // 3 + 20 * layer))
    for _ in range(rng.randint(4, 10)):
        x0, y0 = rng.randint(0, w - 60), rng.randint(0, h - 60)
        x1, y1 = x0 + rng.randint(20, 120), y0 + rng.randint(20, 120)
        col = tuple(rng.randint(0, 255) for _ in range(3))
        (d.rectangle if rng.random() < 0.5 else d.ellipse)((x0, y0, x1, y1), fill=col)
    d.text((12, h - 24), f"Sentinelle demo scene #{seed}", fill=(255, 255, 255))
    # photo-like texture: real photos have no perfectly flat rows (sensor noise, detail)
    noise = np.random.default_rng(seed).normal(0, 9, (h, w, 1)).astype(np.float32)
    arr = np.asarray(img, dtype=np.float32) + noise
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return img.filter(ImageFilter.GaussianBlur(0.8))


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _pad(img: Image.Image, frac: float, colour: tuple[int, int, int]) -> Image.Image:
    b = int(min(img.size) * frac)
    return ImageOps.expand(img, border=b, fill=colour)


def _letterbox(img: Image.Image) -> Image.Image:
    w, h = img.size
    canvas = Image.new("RGB", (w, int(w * 1.0)), (0, 0, 0))
    canvas.paste(img, (0, (canvas.height - h) // 2))
    return canvas


def _screenshot(img: Image.Image) -> Image.Image:
    w, h = img.size
    small = img.resize((int(w * 0.7), int(h * 0.7)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (w, h + 40), (236, 238, 242))
    ImageDraw.Draw(canvas).rectangle((0, 0, w, 28), fill=(60, 64, 72))
    canvas.paste(small, ((w - small.width) // 2, 28 + (h + 12 - small.height) // 2))
    return canvas


def _crop(img: Image.Image, frac: float) -> Image.Image:
    w, h = img.size
    dx, dy = int(w * frac / 2), int(h * frac / 2)
    return img.crop((dx, dy, w - dx, h - dy))


TRANSFORMS = {
    "resized": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
    "jpeg-q35": lambda im: Image.open(io.BytesIO(_jpeg(im, 35))),
    "grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "border": lambda im: _pad(im, 0.1, (255, 255, 255)),
    "letterbox": _letterbox,
    "screenshot": _screenshot,
    "crop10": lambda im: _crop(im, 0.10),
    "rotated90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "mirrored": lambda im: ImageOps.mirror(im),
}


def build_demo(out: Path, n_known: int = 12, n_other: int = 12) -> tuple[Path, Path]:
    """Write originals (to bank) and a folder of files to scan; returns (originals, inbox)."""
    originals = out / "known-originals"
    inbox = out / "inbox"
    originals.mkdir(parents=True, exist_ok=True)
    inbox.mkdir(parents=True, exist_ok=True)
    names = list(TRANSFORMS)
    for i in range(n_known):
        img = render_scene(1000 + i)
        (originals / f"scene-{i:02d}.jpg").write_bytes(_jpeg(img))
        # two altered copies of each known scene land in the inbox
        for name in (names[i % len(names)], names[(i + 4) % len(names)]):
            altered = TRANSFORMS[name](img)
            (inbox / f"copy-{i:02d}-{name}.png").write_bytes(_png(altered))
    for j in range(n_other):
        (inbox / f"unrelated-{j:02d}.jpg").write_bytes(_jpeg(render_scene(5000 + j)))
    # hostile inputs: the scan must report them, not crash or skip them
    (inbox / "truncated.jpg").write_bytes(_jpeg(render_scene(9000))[:700])
    (inbox / "not-an-image.png").write_bytes(b"this is plain text, not a PNG\n")
    (inbox / "empty.gif").write_bytes(b"")
    return originals, inbox


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
