"""trim_box's four-strip early answer equals the full walk's."""

from __future__ import annotations

import pytest
from PIL import Image, ImageOps

import sentinelle.signals.trim as trim
from sentinelle.cli.demo_media import render_scene


def _variants(seed: int) -> list[Image.Image]:
    im = render_scene(seed, (480, 360))
    return [
        im,
        im.convert("L"),
        ImageOps.expand(im, 30, (20, 20, 20)),
        ImageOps.expand(im, (0, 40, 0, 40), (0, 0, 0)),
        ImageOps.expand(im, (50, 0, 0, 0), (240, 240, 244)),
        ImageOps.expand(im.convert("L"), 12, 250),
    ]


@pytest.mark.parametrize("seed", range(8))
def test_early_answer_matches_the_full_walk(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for img in _variants(seed):
        fast = trim.trim_box(img)
        with monkeypatch.context() as m:
            m.setattr(trim, "_any_outer_line_uniform", lambda im: True)
            full = trim.trim_box(img)
        assert fast == full


def test_a_bordered_image_is_walked_and_a_plain_one_is_not() -> None:
    plain = render_scene(4, (480, 360))  # a scene with no flat outer line
    assert not trim._any_outer_line_uniform(plain)
    assert trim.trim_box(plain) is None
    framed = ImageOps.expand(plain, 24, (10, 10, 10))
    assert trim._any_outer_line_uniform(framed)
    assert trim.trim_box(framed) is not None
