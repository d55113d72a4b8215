"""Generator metadata rules, each tested on a benign rendered image we write the metadata into.

Prompts in these fixtures are short benign phrases; the tests also check that no prompt
text ever reaches the evidence.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from sentinelle.provenance import metadata
from sentinelle.provenance.evidence import SourceContext
from sentinelle.provenance.metadata_fields import decode_user_comment, parse_xmp
from sentinelle.provenance.stealth import read_stealth, write_stealth

PROMPT = "a red bicycle leaning on a garden wall"
A1111 = (
    f"{PROMPT}\nNegative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
    'Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned, Lora hashes: "a: 1, b: 2", '
    "Version: v1.9.4"
)


def _scene(mode: str = "RGB", size: tuple[int, int] = (96, 64)) -> Image.Image:
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x * 2 % 256, y * 3 % 256, (x + y) % 256], axis=2).astype(np.uint8)
    return Image.fromarray(rgb).convert(mode)


def _png(text: dict[str, str] | None = None, *, img: Image.Image | None = None, **kw) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        if key == "XML:com.adobe.xmp":
            info.add_itxt(key, value)
        else:
            info.add_text(key, value, zip=len(value) > 200)
    buf = io.BytesIO()
    (img or _scene()).save(buf, "PNG", pnginfo=info, **kw)
    return buf.getvalue()


def _jpeg(*, exif: Image.Exif | None = None, xmp: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    kwargs = {}
    if exif is not None:
        kwargs["exif"] = exif
    if xmp is not None:
        kwargs["xmp"] = xmp
    _scene().save(buf, "JPEG", quality=90, **kwargs)
    return buf.getvalue()


def _xmp(body: str, extra_ns: str = "") -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'xmlns:exif="http://ns.adobe.com/exif/1.0/" {extra_ns}>'
        f"{body}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def _collect(data: bytes):
    ctx = SourceContext(media_type="image/png").bind(data)
    items = metadata.collect(data, ctx)
    for it in items:  # never any prompt text in evidence
        assert PROMPT not in json.dumps(it.to_dict())
        assert "bicycle" not in json.dumps(it.to_dict())
        if it.indicates != "error":
            assert it.forgeable and it.strippable and it.source == "metadata"
    return items


def _one(items, rule: str):
    hits = [it for it in items if it.details.get("rule") == rule]
    assert len(hits) == 1, [it.to_dict() for it in items]
    return hits[0]


def test_a1111_parameters_png() -> None:
    item = _one(_collect(_png({"parameters": A1111})), "a1111")
    assert item.indicates == "ai_generated" and item.strength == "moderate"
    assert item.details["generator"].startswith("AUTOMATIC1111")
    assert item.details["prompt_length"] == len(PROMPT)
    assert item.details["negative_prompt"] is True
    s = item.details["settings"]
    assert s["Steps"] == "20" and s["Seed"] == "1234" and s["Model"] == "v1-5-pruned"
    assert s["Sampler"] == "DPM++ 2M" and s["Version"] == "v1.9.4"


def test_forge_and_a1111_in_jpeg_user_comment() -> None:
    forge = A1111.replace("Version: v1.9.4", "Version: f0.0.17v1.8.0rc-latest-276-g29be1da7")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + forge.encode("utf-16-be")
    item = _one(_collect(_jpeg(exif=exif)), "a1111")
    assert item.details["field"] == "exif:UserComment"
    assert item.details["generator"] == "Stable Diffusion WebUI Forge"


def test_plain_text_parameters_are_not_a1111() -> None:
    assert _collect(_png({"parameters": "just some words\nno settings line"})) == []


def test_comfyui_prompt_and_workflow() -> None:
    graph = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20}},
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "sdxl_base.safetensors"},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT}},
    }
    workflow = {"nodes": [{"id": 3}, {"id": 4}, {"id": 6}], "links": []}
    item = _one(
        _collect(_png({"prompt": json.dumps(graph), "workflow": json.dumps(workflow)})),
        "comfyui",
    )
    assert item.details["node_count"] == 3
    assert item.details["models"] == ["sdxl_base.safetensors"]
    assert "KSampler" in item.details["node_types"]
    assert item.details["prompt_length"] == len(PROMPT)
    only_workflow = _one(_collect(_png({"workflow": json.dumps(workflow)})), "comfyui")
    assert only_workflow.details["node_count"] == 3


def test_novelai_text_chunks() -> None:
    comment = {"prompt": PROMPT, "steps": 28, "sampler": "k_euler", "seed": 7, "uc": "lowres"}
    data = _png(
        {
            "Software": "NovelAI",
            "Source": "NovelAI Diffusion V4.5 4BDE2A90",
            "Description": PROMPT,
            "Comment": json.dumps(comment),
        }
    )
    items = _collect(data)
    item = _one(items, "novelai")
    assert item.details["model"].startswith("NovelAI Diffusion")
    assert item.details["settings"]["seed"] == "7"
    assert item.details["prompt_length"] == len(PROMPT)
    # the Software chunk does not add a second NovelAI item
    assert not [it for it in items if it.details.get("rule") == "software"]


@pytest.mark.parametrize("compressed", [True, False])
def test_novelai_stealth_alpha_survives_metadata_strip(compressed: bool) -> None:
    payload = {
        "Software": "NovelAI",
        "Source": "NovelAI Diffusion V3",
        "Description": PROMPT,
        "Comment": json.dumps({"prompt": PROMPT, "steps": 28, "seed": 99}),
    }
    img = write_stealth(_scene(), payload, compressed=compressed)
    assert read_stealth(img).data["Software"] == "NovelAI"
    item = _one(_collect(_png(img=img)), "novelai_stealth")  # no text chunks at all
    assert item.details["channel"] == "alpha"
    assert item.details["compressed"] is compressed
    assert item.details["settings"]["seed"] == "99"
    assert item.details["prompt_length"] == len(PROMPT)


def _alpha_with_bits(message: bytes, size=(64, 64)) -> Image.Image:
    img = _scene("RGBA", size)
    alpha = np.full((size[1], size[0]), 255, np.uint8).T.copy()
    flat = alpha.reshape(-1)
    bits = np.unpackbits(np.frombuffer(message, np.uint8))
    flat[: bits.size] = 254 | bits
    img.putalpha(Image.fromarray(np.ascontiguousarray(alpha.T)))
    return img


def test_novelai_stealth_hostile_payloads_are_errors_not_crashes() -> None:
    bad_len = _alpha_with_bits(b"stealth_pngcomp" + (2**31).to_bytes(4, "big"))
    not_gzip = _alpha_with_bits(b"stealth_pngcomp" + (80).to_bytes(4, "big") + b"0123456789")
    bomb_raw = gzip.compress(b"{" + b" " * 20_000_000)
    assert len(bomb_raw) < 20_000  # 20 MB of JSON in under 20 kB of alpha bits
    bomb = _alpha_with_bits(
        b"stealth_pngcomp" + (len(bomb_raw) * 8).to_bytes(4, "big") + bomb_raw, size=(400, 400)
    )
    not_json = _alpha_with_bits(b"stealth_pnginfo" + (32).to_bytes(4, "big") + b"abcd")
    for img, code in (
        (bad_len, "bad_stealth_payload"),
        (not_gzip, "bad_stealth_payload"),
        (bomb, "bad_stealth_payload"),  # stops at the inflate cap
        (not_json, "bad_stealth_payload"),
    ):
        items = _collect(_png(img=img))
        assert [it.details.get("code") for it in items] == [code]
        assert items[0].indicates == "error"


def test_invokeai_chunks() -> None:
    meta = {
        "generation_mode": "txt2img",
        "positive_prompt": PROMPT,
        "model": {"name": "stable-diffusion-v1-5"},
        "app_version": "4.2.9",
    }
    item = _one(_collect(_png({"invokeai_metadata": json.dumps(meta)})), "invokeai")
    assert item.details["version"] == "4.2.9"
    assert item.details["model"] == "stable-diffusion-v1-5"
    legacy = {"model": "stable diffusion", "app_id": "invoke-ai/InvokeAI", "image": {"prompt": []}}
    assert _one(_collect(_png({"sd-metadata": json.dumps(legacy)})), "invokeai")


def test_fooocus_json_scheme_and_a1111_scheme() -> None:
    params = {"prompt": PROMPT, "base_model": "juggernautXL", "version": "Fooocus v2.5.5"}
    data = _png({"parameters": json.dumps(params), "fooocus_scheme": "fooocus"})
    item = _one(_collect(data), "fooocus")
    assert item.details["version"] == "Fooocus v2.5.5"
    assert item.details["model"] == "juggernautXL"
    a1111_scheme = A1111.replace("Version: v1.9.4", "Version: Fooocus v2.5.5")
    items = _collect(_png({"parameters": a1111_scheme, "fooocus_scheme": "a1111"}))
    assert _one(items, "fooocus").details["scheme"] == "a1111"
    assert not [it for it in items if it.details.get("rule") == "a1111"]


def test_swarmui_params_png_and_jpeg() -> None:
    params = {
        "sui_image_params": {
            "prompt": PROMPT,
            "model": "OfficialStableDiffusion/sd_xl_base_1.0",
            "swarm_version": "0.9.2.1",
        }
    }
    item = _one(_collect(_png({"parameters": json.dumps(params)})), "swarmui")
    assert item.details["version"] == "0.9.2.1"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + json.dumps(params).encode("utf-16-le")
    assert _one(_collect(_jpeg(exif=exif)), "swarmui").details["field"] == "exif:UserComment"


def test_draw_things_xmp() -> None:
    settings = json.dumps({"c": PROMPT, "model": "sd_xl_base_1.0_f16.ckpt", "seed": 3})
    body = (
        "<xmp:CreatorTool>Draw Things</xmp:CreatorTool>"
        f"<exif:UserComment><rdf:Alt><rdf:li xml:lang='x-default'>{settings}</rdf:li>"
        "</rdf:Alt></exif:UserComment>"
    )
    item = _one(_collect(_jpeg(xmp=_xmp(body))), "drawthings")
    assert item.details["model"] == "sd_xl_base_1.0_f16.ckpt"
    assert item.details["prompt_length"] == len(PROMPT)


def test_midjourney_description_png_and_exif() -> None:
    text = f"{PROMPT} --ar 3:2 --v 6.1 Job ID: 0c5e8f04-4bd3-4b39-a0d5-0f0b8a5b5a7e"
    item = _one(_collect(_png({"Description": text, "Author": "someone"})), "midjourney")
    assert item.details["job_id"] == "0c5e8f04-4bd3-4b39-a0d5-0f0b8a5b5a7e"
    exif = Image.Exif()
    exif[0x010E] = text
    assert _one(_collect(_jpeg(exif=exif)), "midjourney").details["field"] == (
        "exif:ImageDescription"
    )


@pytest.mark.parametrize(
    ("code", "indicates"),
    [
        ("trainedAlgorithmicMedia", "ai_generated"),
        ("compositeWithTrainedAlgorithmicMedia", "ai_edited"),
        ("digitalCapture", "camera"),
        ("algorithmicMedia", "none"),
    ],
)
def test_iptc_digital_source_type_element_and_attribute(code: str, indicates: str) -> None:
    uri = f"http://cv.iptc.org/newscodes/digitalsourcetype/{code}"
    as_element = _xmp(f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{uri}"/>')
    as_text = _xmp(f"<Iptc4xmpExt:DigitalSourceType>{uri}</Iptc4xmpExt:DigitalSourceType>")
    as_attr = _xmp("").replace(
        b'rdf:about=""', f'rdf:about="" Iptc4xmpExt:DigitalSourceType="{uri}"'.encode()
    )
    for packet in (as_element, as_text, as_attr):
        for data in (_jpeg(xmp=packet), _png({"XML:com.adobe.xmp": packet.decode()})):
            item = _one(_collect(data), "iptc_digital_source_type")
            assert item.indicates == indicates
            assert item.strength == ("moderate" if indicates.startswith("ai_") else "weak")


def test_iptc_ai_system_used() -> None:
    body = (
        "<Iptc4xmpExt:AISystemUsed>ImageMaker 3</Iptc4xmpExt:AISystemUsed>"
        "<Iptc4xmpExt:AISystemVersionUsed>3.1</Iptc4xmpExt:AISystemVersionUsed>"
        f"<Iptc4xmpExt:AIPromptInformation>{PROMPT}</Iptc4xmpExt:AIPromptInformation>"
    )
    item = _one(_collect(_jpeg(xmp=_xmp(body))), "iptc_ai_system")
    assert item.details["ai_system"] == "ImageMaker 3"
    assert item.details["ai_system_version"] == "3.1"
    assert item.details["prompt_length"] == len(PROMPT)


@pytest.mark.parametrize(
    ("software", "name"),
    [
        ("Adobe Firefly", "Adobe Firefly"),
        ("DALL·E 3", "OpenAI DALL-E"),
        ("Midjourney", "Midjourney"),
        ("Stable Diffusion XL", "Stable Diffusion"),
        ("Leonardo.Ai", "Leonardo.Ai"),
    ],
)
def test_exif_software_of_known_generators(software: str, name: str) -> None:
    exif = Image.Exif()
    exif[0x0131] = software
    item = _one(_collect(_jpeg(exif=exif)), "software")
    assert item.details["generator"] == name and item.details["field"] == "exif:Software"


def test_camera_and_editor_software_is_not_flagged() -> None:
    for software in ("Adobe Photoshop 25.0 (Windows)", "GIMP 2.10.34", "Ver.1.00", "HDR+ 1.0"):
        exif = Image.Exif()
        exif[0x0131] = software
        exif[0x010F] = "Canon"
        assert _collect(_jpeg(exif=exif)) == []


def test_xmp_creator_tool_names_generator() -> None:
    item = _one(_collect(_jpeg(xmp=_xmp("<xmp:CreatorTool>ComfyUI</xmp:CreatorTool>"))), "software")
    assert item.details["field"] == "xmp:CreatorTool"


def test_hostile_xmp_is_an_error_item() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><x>&b;</x>'
    )
    for packet in (bomb, b"<x:xmpmeta><unclosed>", b"no xml here"):
        items = _collect(_jpeg(xmp=packet))
        assert [it.details.get("code") for it in items] == ["malformed_xmp"]
    with pytest.raises(ValueError):
        parse_xmp(b"<a>" * 10 + b"x" * 3_000_000)


def test_plain_photo_and_garbage_give_nothing() -> None:
    assert _collect(_png()) == []
    assert _collect(_jpeg()) == []
    assert _collect(b"\x00\x01garbage") == []
    # truncated PNG: header chunks are still read, nothing crashes
    truncated = _png({"parameters": A1111})[:120]
    assert all(it.indicates in ("ai_generated", "error") for it in _collect(truncated))


def test_user_comment_decoding() -> None:
    assert decode_user_comment(b"ASCII\x00\x00\x00hello") == "hello"
    assert decode_user_comment(b"UNICODE\x00" + "héllo".encode("utf-16-be")) == "héllo"
    assert decode_user_comment(b"UNICODE\x00" + "héllo".encode("utf-16-le")) == "héllo"
    assert decode_user_comment(b"\x00" * 8 + b"plain") == "plain"
    assert decode_user_comment(12) == ""


def test_generator_list_loads_from_data_file() -> None:
    names = {name for _, name, _ in metadata.known_generators()}
    assert {"NovelAI", "Midjourney", "Adobe Firefly", "ComfyUI"} <= names


def test_text_chunk_bomb_does_not_crash_or_hang() -> None:
    """A zTXt chunk inflating to 50 MB: Pillow's text limit stops it, no evidence, no crash."""
    import struct

    body = b"parameters\x00\x00" + zlib.compress(b"a" * 50_000_000, 9)
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"zTXt" + body) & 0xFFFFFFFF)
    png = _png()
    data = png[:33] + chunk + png[33:]  # right after IHDR
    items = _collect(data)
    assert all(it.indicates == "error" for it in items)


def test_metadata_and_camera_share_one_parse_of_the_file():
    from sentinelle.provenance import camera
    from sentinelle.provenance.analyze import media_type_of
    from sentinelle.provenance.metadata_fields import read_fields

    exif = Image.Exif()
    exif[0x0131] = "Midjourney v6"  # Software
    data = _jpeg(exif=exif)
    decodes: list[int] = []

    def decoder() -> Image.Image:  # what scan hands over: counts pixel decodes
        decodes.append(1)
        return Image.open(io.BytesIO(data)).convert("RGB")

    ctx = SourceContext(media_type=media_type_of(data)).bind(data, decoder)
    first = read_fields(data, ctx)
    assert first.exif["Software"] == "Midjourney v6" and first.image is ctx.header_image()
    metadata.collect(data, ctx)
    camera.collect(data, ctx)
    assert read_fields(data, ctx) is first  # parsed once, reused by both sources
    assert decodes == []  # a JPEG's EXIF, XMP and tables need no pixel decode
    assert ctx.image() is not None and decodes == [1]  # a pixel source gets the shared one
    other = _png({"Software": "NovelAI"})
    ctx.bind(other)  # a new file clears what was shared
    assert read_fields(other, ctx).text["Software"] == "NovelAI"


def test_shared_decoder_refuses_bombs_and_undetected_formats():
    big = _png(img=Image.new("L", (200, 200)))
    ctx = SourceContext(media_type="image/png", max_pixels=100 * 100).bind(big)
    assert ctx.image() is None and ctx.image_error.startswith("too_many_pixels")
    ppm = io.BytesIO()
    _scene().save(ppm, "PPM")  # Pillow reads it, but it is no format sentinelle.media admits
    ctx = SourceContext(media_type=None).bind(ppm.getvalue())
    assert ctx.image() is None and "not a supported image type" in ctx.image_error
    ok = _png()
    assert SourceContext(media_type="image/png").bind(ok).image().size == (96, 64)
