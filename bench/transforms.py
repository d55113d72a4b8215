"""Named image transforms for the robustness benchmark (benign photos only).

Each transform takes an RGB :class:`PIL.Image.Image` and a seeded
:class:`random.Random` (so a run is reproducible per photo) and returns the
*encoded file bytes* of the transformed copy, as a platform would store it:
JPEG quality 90 unless the transform itself is a JPEG re-encode.

``crop<N>`` keeps the central (100-N)% of each side, matching
:func:`sentinelle.signals.augment.central_crops` naming.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

Transform = Callable[[Image.Image, random.Random], bytes]

DEFAULT_QUALITY = 90

# Flat colours of bars, borders and UI canvases.
BORDER_COLOURS = [(255, 255, 255), (0, 0, 0), (128, 128, 128), (200, 30, 30), (20, 60, 160)]
BAR_COLOURS = [(0, 0, 0), (0, 0, 0), (16, 16, 16), (255, 255, 255)]
UI_CANVAS = [(240, 240, 240), (32, 33, 36), (255, 255, 255), (30, 30, 30), (246, 248, 250)]
UI_TITLE = [(222, 225, 230), (53, 54, 58), (0, 120, 215), (60, 60, 60), (36, 41, 47)]


def encode(img: Image.Image, fmt: str = "JPEG", quality: int = DEFAULT_QUALITY) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, fmt)
    return buf.getvalue()


def resize(img: Image.Image, scale: float) -> Image.Image:
    w, h = img.size
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)


def central_crop(img: Image.Image, percent: float) -> Image.Image:
    """Keep the central (100 - percent)% of each side."""
    w, h = img.size
    dx = round(w * percent / 200)
    dy = round(h * percent / 200)
    return img.crop((dx, dy, w - dx, h - dy))


def add_border(img: Image.Image, fraction: float, colour: tuple[int, int, int]) -> Image.Image:
    w, h = img.size
    bx, by = round(w * fraction), round(h * fraction)
    canvas = Image.new("RGB", (w + 2 * bx, h + 2 * by), colour)
    canvas.paste(img, (bx, by))
    return canvas


def letterbox(img: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """Bars above and below: landscape -> 1:1 canvas, portrait/square -> 9:16 canvas."""
    w, h = img.size
    ch = w if w > h else round(w * 16 / 9)
    ch = max(ch, h + 2)
    canvas = Image.new("RGB", (w, ch), colour)
    canvas.paste(img, (0, (ch - h) // 2))
    return canvas


def pillarbox(img: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """Bars left and right: landscape/square -> 16:9 canvas, portrait -> 1:1 canvas."""
    w, h = img.size
    cw = round(h * 16 / 9) if w >= h else h
    cw = max(cw, w + 2)
    canvas = Image.new("RGB", (cw, h), colour)
    canvas.paste(img, ((cw - w) // 2, 0))
    return canvas


def screenshot(img: Image.Image, rng: random.Random) -> Image.Image:
    """The image shrunk to 60-80% and pasted on a flat UI canvas under a title bar."""
    w, h = img.size
    k = rng.randrange(len(UI_CANVAS))
    scale = rng.uniform(0.6, 0.8)
    small = resize(img, scale)
    title_h = max(4, round(h * rng.uniform(0.04, 0.08)))
    canvas = Image.new("RGB", (w, h + title_h), UI_CANVAS[k])
    ImageDraw.Draw(canvas).rectangle((0, 0, w - 1, title_h - 1), fill=UI_TITLE[k])
    sw, sh = small.size
    x = (w - sw) // 2 + rng.randint(-(w - sw) // 4, (w - sw) // 4)
    y = title_h + (h - sh) // 2 + rng.randint(-(h - sh) // 4, (h - sh) // 4)
    canvas.paste(small, (x, y))
    return canvas


def text_overlay(img: Image.Image, rng: random.Random) -> Image.Image:
    """Two lines of caption text (Pillow's default font) over the lower part."""
    out = img.copy()
    w, h = out.size
    size = max(10, h // 9)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(out)
    words = ["WHEN YOU", "SEE IT", "MONDAY", "MOOD", "LOOK AT", "THIS", "NO WAY"]
    lines = [" ".join(rng.sample(words, 2)) for _ in range(2)]
    y = int(h * 0.62)
    for line in lines:
        draw.text(
            (w // 20, y),
            line,
            fill=(255, 255, 255),
            font=font,
            stroke_width=2,
            stroke_fill=(0, 0, 0),
        )
        y += int(size * 1.2)
    return out


def _q(img: Image.Image) -> bytes:
    return encode(img)


TRANSFORMS: dict[str, Transform] = {
    "resize50": lambda im, r: _q(resize(im, 0.5)),
    "resize25": lambda im, r: _q(resize(im, 0.25)),
    "jpeg70": lambda im, r: encode(im, quality=70),
    "jpeg30": lambda im, r: encode(im, quality=30),
    "crop5": lambda im, r: _q(central_crop(im, 5)),
    "crop10": lambda im, r: _q(central_crop(im, 10)),
    "crop15": lambda im, r: _q(central_crop(im, 15)),
    "crop20": lambda im, r: _q(central_crop(im, 20)),
    "rotate90": lambda im, r: _q(im.transpose(Image.ROTATE_90)),
    "rotate180": lambda im, r: _q(im.transpose(Image.ROTATE_180)),
    "mirror": lambda im, r: _q(ImageOps.mirror(im)),
    "grayscale": lambda im, r: _q(ImageOps.grayscale(im)),
    "bright+30": lambda im, r: _q(ImageEnhance.Brightness(im).enhance(1.3)),
    "bright-30": lambda im, r: _q(ImageEnhance.Brightness(im).enhance(0.7)),
    "contrast+50": lambda im, r: _q(ImageEnhance.Contrast(im).enhance(1.5)),
    "text": lambda im, r: _q(text_overlay(im, r)),
    "border10": lambda im, r: _q(add_border(im, 0.10, r.choice(BORDER_COLOURS))),
    "letterbox": lambda im, r: _q(letterbox(im, r.choice(BAR_COLOURS))),
    "pillarbox": lambda im, r: _q(pillarbox(im, r.choice(BAR_COLOURS))),
    "screenshot": lambda im, r: _q(screenshot(im, r)),
}
"""Transform name -> function(image, rng) -> encoded bytes."""

PADDING_TRANSFORMS = ("border10", "letterbox", "pillarbox", "screenshot")
CROP_TRANSFORMS = ("crop5", "crop10", "crop15", "crop20")
DIHEDRAL_TRANSFORMS = ("rotate90", "rotate180", "mirror")
