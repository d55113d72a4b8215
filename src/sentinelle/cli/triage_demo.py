"""The `make run` demo triage case: a small "seized folder" of benign rendered scenes.

:func:`build_triage_folder` writes, under ``<demo dir>/triage-seized``:

* a **camera series**: three shots of one rendered scene with the same fake device
  EXIF (make, model, body serial) taken a minute apart, one with an exact copy and one
  with a resized copy;
* an **unknown-origin** scene (no metadata) and a ZIP holding another copy of it;
* an **AI-style** picture saved as PNG with generator metadata (an A1111
  ``parameters`` chunk);
* **known** material: two altered copies of scenes banked in ``demo-known`` (the
  ``inbox`` of :func:`sentinelle.cli.demo_media.build_demo`);
* an unreadable file (a per-file error).

:func:`setup_triage_demo` triages it into the case ``demo-triage`` with the service's
matcher (once; a later start reuses the case) and writes its HTML report
(``<demo dir>/triage-report.html``) and VICS export (``triage-case.vics.json``).
Everything is synthetic and benign.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from .demo_media import render_scene

DEMO_CASE = "demo-triage"


def _exif(serial: str, taken_at: str) -> Image.Exif:
    ex = Image.Exif()
    ex[0x010F] = "DemoCam"
    ex[0x0110] = "DC-100"
    sub = ex.get_ifd(0x8769)
    sub[0x829A] = (1, 125)
    sub[0x829D] = (28, 10)
    sub[0x8827] = 200
    sub[0x9003] = taken_at
    sub[0xA431] = serial
    return ex


def _jpeg(im: Image.Image, exif: Image.Exif | None = None, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    kw: dict[str, Any] = {"quality": quality}
    if exif is not None:
        kw["exif"] = exif
    im.convert("RGB").save(buf, "JPEG", **kw)
    return buf.getvalue()


def build_triage_folder(demo_dir: Path) -> Path:
    """Write the demo seized folder (idempotent) and return it."""
    root = demo_dir / "triage-seized"
    done = demo_dir / "triage-seized.complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "DCIM").mkdir(parents=True)
    (root / "Downloads").mkdir()
    scene = render_scene(7100, size=(800, 600))
    for i in range(3):  # three shots of one scene, one camera, a minute apart
        x = 60 * i
        shot = scene.crop((x, 40 * i, x + 640, 40 * i + 480))
        data = _jpeg(shot, _exif("DC100-0042", f"2021:06:01 14:0{i}:00"))
        (root / "DCIM" / f"IMG_{100 + i:04d}.JPG").write_bytes(data)
        if i == 0:
            (root / "Downloads" / "IMG_0100 (1).JPG").write_bytes(data)  # exact copy
        if i == 1:
            small = shot.resize((320, 240), Image.Resampling.LANCZOS)
            (root / "Downloads" / "small.jpg").write_bytes(_jpeg(small, quality=70))
    other = _jpeg(render_scene(7200))
    (root / "Downloads" / "picture.jpg").write_bytes(other)
    with zipfile.ZipFile(root / "backup.zip", "w") as z:
        z.writestr("old/picture.jpg", other)
    ai = render_scene(7300, size=(512, 512))
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a landscape\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 7300, "
        "Size: 512x512, Model: sd15",
    )
    ai.save(root / "Downloads" / "generated.png", "PNG", pnginfo=info)
    inbox = demo_dir / "inbox"
    for p in sorted(inbox.glob("copy-*.png"))[:2]:
        shutil.copyfile(p, root / "Downloads" / p.name)
    (root / "Downloads" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    done.write_text("demo triage folder written\n")
    return root


def setup_triage_demo(engine: Any, matcher: Any, demo_dir: Path) -> int | None:
    """The demo triage case's id (triaged on first use); None if it could not be built."""
    from ..triage import store
    from ..triage.run import run_triage
    from ..triage.series import SeriesOptions

    case = store.get_case(engine, DEMO_CASE)
    if case is not None and store.case_summary(engine, case.id)["groups"]:
        return case.id
    folder = build_triage_folder(demo_dir)
    summary = run_triage(
        engine,
        DEMO_CASE,
        [folder],
        workers=1,
        matcher=matcher,
        series_options=SeriesOptions(scene="none"),
    )
    write_outputs(engine, demo_dir)
    return int(summary.case.id)


def write_outputs(engine: Any, demo_dir: Path) -> tuple[Path, Path]:
    """The demo case's HTML report and VICS export, beside the demo folder."""
    from ..triage.report_html import write_report
    from ..triage.vics_case import export_case

    html, vics = demo_dir / "triage-report.html", demo_dir / "triage-case.vics.json"
    write_report(engine, DEMO_CASE, html)
    export_case(engine, DEMO_CASE, vics)
    return html, vics
