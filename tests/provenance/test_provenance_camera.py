"""Camera evidence: EXIF capture consistency and JPEG quantisation tables (benign images)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from sentinelle.provenance import camera
from sentinelle.provenance.evidence import SourceContext


def _scene(mode: str = "RGB") -> Image.Image:
    y, x = np.mgrid[0:64, 0:96]
    rgb = np.stack([x * 2 % 256, y * 3 % 256, (x + y) % 256], axis=2).astype(np.uint8)
    return Image.fromarray(rgb).convert(mode)


def _camera_exif(**override) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = override.pop("make", "Canon")
    exif[0x0110] = override.pop("model", "Canon EOS R6")
    sub = exif.get_ifd(0x8769)
    sub[0x829A] = override.pop("exposure", IFDRational(1, 250))
    sub[0x829D] = override.pop("fnumber", IFDRational(28, 10))
    sub[0x8827] = override.pop("iso", 400)
    sub[0x920A] = override.pop("focal", IFDRational(50, 1))
    sub[0x9003] = override.pop("when", "2023:06:01 10:11:12")
    sub[0xA434] = "RF50mm F1.8 STM"
    return exif


def _jpeg(img: Image.Image | None = None, **save) -> bytes:
    buf = io.BytesIO()
    (img or _scene()).save(buf, "JPEG", **save)
    return buf.getvalue()


def _collect(data: bytes):
    return camera.collect(data, SourceContext(media_type="image/jpeg").bind(data))


def _rule(items, rule: str):
    hits = [it for it in items if it.details.get("rule") == rule]
    assert len(hits) == 1, [it.to_dict() for it in items]
    return hits[0]


def test_consistent_camera_exif_is_weak_camera_evidence() -> None:
    item = _rule(_collect(_jpeg(exif=_camera_exif(), quality=90)), "exif_capture")
    assert item.indicates == "camera" and item.strength == "weak"
    assert item.forgeable and item.strippable
    assert item.details["make"] == "Canon" and item.details["model"] == "Canon EOS R6"
    assert set(item.details["exposure_fields"]) == set(camera.EXPOSURE_FIELDS)
    assert item.details["lens"] == "RF50mm F1.8 STM" and item.details["capture_time"]


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"fnumber": IFDRational(1, 10)}, "f-number"),
        ({"iso": 0}, "ISO"),
        ({"exposure": IFDRational(20000, 1)}, "exposure time"),
        ({"when": "yesterday"}, "capture time"),
    ],
)
def test_impossible_exif_values_are_flagged(override: dict, problem: str) -> None:
    item = _rule(_collect(_jpeg(exif=_camera_exif(**override))), "exif_capture")
    assert item.indicates == "none"
    assert any(problem in p for p in item.details["problems"])


def test_make_without_exposure_data_says_nothing() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R6"
    assert [it for it in _collect(_jpeg(exif=exif)) if it.details["rule"] == "exif_capture"] == []


@pytest.mark.parametrize("quality", [35, 75, 90, 100])
def test_standard_libjpeg_tables_are_recognised_with_quality(quality: int) -> None:
    item = _rule(_collect(_jpeg(quality=quality)), "jpeg_quantization")
    assert item.indicates == "none" and item.details["standard"] is True
    assert item.details["libjpeg_quality"] == quality


def test_greyscale_standard_table() -> None:
    item = _rule(_collect(_jpeg(_scene("L"), quality=80)), "jpeg_quantization")
    assert item.details == {
        "rule": "jpeg_quantization",
        "tables": 1,
        "standard": True,
        "libjpeg_quality": 80,
    }


def test_custom_table_is_weak_camera_evidence() -> None:
    luma = [2 + (i % 7) for i in range(64)]  # not a scaled libjpeg table
    chroma = [3 + (i % 5) for i in range(64)]
    item = _rule(_collect(_jpeg(qtables=[luma, chroma])), "jpeg_quantization")
    assert item.indicates == "camera" and item.strength == "weak"
    assert item.details["standard"] is False


def test_png_and_garbage_have_no_camera_evidence() -> None:
    buf = io.BytesIO()
    _scene().save(buf, "PNG")
    assert _collect(buf.getvalue()) == []
    assert _collect(b"not an image at all") == []


def test_truncated_jpeg_still_reads_tables_without_crashing() -> None:
    data = _jpeg(exif=_camera_exif(), quality=75)
    items = _collect(data[: len(data) // 2])
    assert _rule(items, "jpeg_quantization").details["libjpeg_quality"] == 75
    assert _rule(items, "exif_capture").indicates == "camera"


def test_exif_number_parsing() -> None:
    assert camera._number("(1, 250)") == pytest.approx(0.004)
    assert camera._number("2.8") == 2.8
    assert camera._number("") is None and camera._number("n/a") is None
