"""Evidence source: generator metadata (text chunks, EXIF, XMP/IPTC, NovelAI stealth bits).

Image generators label their output in many ways. Each rule below turns one of them into
an :class:`Evidence` item:

=====================  ==========================================================
rule                   what it reads
=====================  ==========================================================
``a1111``              ``parameters`` text chunk / EXIF ``UserComment`` in the
                       AUTOMATIC1111 layout (prompt, ``Negative prompt:``, then
                       ``Steps: .., Sampler: ..``); Forge and Fooocus's A1111 scheme
                       are told apart by their ``Version``
``comfyui``            ``prompt`` (API graph) / ``workflow`` (UI graph) JSON chunks
``novelai``            ``Software: NovelAI`` chunk with its ``Comment`` JSON, and the
                       alpha-channel ``stealth_pngcomp`` payload (:mod:`.stealth`)
``invokeai``           ``invokeai_metadata`` / ``invokeai_graph`` / ``sd-metadata`` /
                       ``Dream`` chunks
``fooocus``            ``fooocus_scheme`` chunk or Fooocus JSON ``parameters``
``swarmui``            ``sui_image_params`` JSON (``parameters`` chunk or UserComment)
``drawthings``         XMP ``xmp:CreatorTool = Draw Things`` and its JSON UserComment
``midjourney``         ``Description`` / ``ImageDescription`` with a Midjourney
                       ``Job ID``
``iptc``               XMP ``Iptc4xmpExt:DigitalSourceType`` (trainedAlgorithmicMedia,
                       compositeWithTrainedAlgorithmicMedia, digitalCapture...) and
                       ``Iptc4xmpExt:AISystemUsed``
``software``           EXIF ``Software``, XMP ``CreatorTool``, PNG ``Software`` ...
                       naming a generator from ``data/generators.toml``
=====================  ==========================================================

All of it is **forgeable** (any tool can write these fields) and **strippable** (a
metadata strip, a screenshot or most upload pipelines remove it), which every item says.
Prompts are never copied into evidence: an item records that a prompt is present and its
length; settings such as model name, sampler and seed are kept (short, capped).
"""

from __future__ import annotations

import json
import re
import tomllib
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from .evidence import Evidence
from .metadata_fields import MetadataFields, read_fields
from .stealth import StealthError, read_stealth

if TYPE_CHECKING:  # pragma: no cover
    from .evidence import SourceContext

SOURCE = "metadata"
IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
XMP_BASIC = "http://ns.adobe.com/xap/1.0/"
TIFF_NS = "http://ns.adobe.com/tiff/1.0/"
EXIF_NS = "http://ns.adobe.com/exif/1.0/"
PHOTOSHOP_NS = "http://ns.adobe.com/photoshop/1.0/"
DC_NS = "http://purl.org/dc/elements/1.1/"
DST_PREFIX = "digitalsourcetype/"

MAX_VALUE_CHARS = 80
A1111_KEYS = (
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Seed",
    "Size",
    "Model hash",
    "Model",
    "VAE",
    "Denoising strength",
    "Version",
)

# IPTC digital source types (https://cv.iptc.org/newscodes/digitalsourcetype/)
DIGITAL_SOURCE_TYPES: dict[str, tuple[str, str]] = {
    "trainedAlgorithmicMedia": ("ai_generated", "created by a trained AI model"),
    "compositeWithTrainedAlgorithmicMedia": (
        "ai_edited",
        "composite that includes trained-AI content",
    ),
    "digitalCapture": ("camera", "captured by a camera sensor"),
    "algorithmicMedia": ("none", "procedural (algorithmic, not trained-AI) media"),
    "compositeSynthetic": ("none", "composite including synthetic (not necessarily AI) parts"),
    "algorithmicallyEnhanced": ("none", "camera capture enhanced by algorithms"),
    "digitalArt": ("none", "digital art made by a person"),
    "dataDrivenMedia": ("none", "data-driven media"),
    "virtualRecording": ("none", "virtual recording"),
    "screenCapture": ("none", "screen capture"),
    "compositeCapture": ("none", "composite of captures"),
    "humanEdits": ("none", "edited by a person"),
    "minorHumanEdits": ("none", "minor human edits"),
    "negativeFilm": ("none", "scan of negative film"),
    "positiveFilm": ("none", "scan of positive film"),
    "print": ("none", "scan of a print"),
}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.replace("\n", " ").strip()
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _item(
    rule: str,
    finding: str,
    *,
    indicates: str = "ai_generated",
    strength: str = "moderate",
    **details: Any,
) -> Evidence:
    return Evidence(
        source=SOURCE,
        finding=finding + " (metadata can be forged and is easily stripped)",
        strength=strength,  # type: ignore[arg-type]
        indicates=indicates,  # type: ignore[arg-type]
        forgeable=True,
        strippable=True,
        details={"rule": rule, **{k: v for k, v in details.items() if v is not None}},
    )


def _json_obj(text: str | None) -> dict[str, Any] | None:
    if not text or not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


# --- AUTOMATIC1111 / Forge -------------------------------------------------------------

_A1111_PARAM = re.compile(r'\s*([\w \-/]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_a1111(text: str) -> dict[str, Any] | None:
    """Split an A1111 ``parameters`` string; None when it is not in that layout."""
    lines = text.strip().split("\n")
    if not lines or not re.match(r"^Steps: \d+", lines[-1].strip()):
        return None
    settings = {k.strip(): v.strip().strip('"') for k, v in _A1111_PARAM.findall(lines[-1])}
    body = lines[:-1]
    negative_at = next(
        (i for i, line in enumerate(body) if line.startswith("Negative prompt:")), None
    )
    prompt = "\n".join(body if negative_at is None else body[:negative_at])
    return {
        "prompt_length": len(prompt.strip()),
        "negative_prompt": negative_at is not None,
        "settings": {k: _short(settings[k]) for k in A1111_KEYS if k in settings},
    }


def _a1111_generator(version: str) -> str:
    if "fooocus" in version.lower():
        return "Fooocus"
    if re.match(r"^f\d", version):
        return "Stable Diffusion WebUI Forge"
    return "AUTOMATIC1111 Stable Diffusion WebUI (or compatible)"


def _rule_a1111(f: MetadataFields) -> list[Evidence]:
    for where, text in (
        ("png:parameters", f.text.get("parameters")),
        ("exif:UserComment", f.exif.get("UserComment")),
    ):
        parsed = parse_a1111(text or "")
        if parsed is None:
            continue
        generator = _a1111_generator(parsed["settings"].get("Version", ""))
        return [
            _item(
                "a1111",
                f"{generator} generation parameters in {where}",
                generator=generator,
                field=where,
                prompt_present=parsed["prompt_length"] > 0,
                prompt_length=parsed["prompt_length"],
                negative_prompt=parsed["negative_prompt"],
                settings=parsed["settings"],
            )
        ]
    return []


# --- ComfyUI ---------------------------------------------------------------------------


def _rule_comfyui(f: MetadataFields) -> list[Evidence]:
    graph = _json_obj(f.text.get("prompt"))
    workflow = _json_obj(f.text.get("workflow"))
    nodes = (
        [n for n in graph.values() if isinstance(n, dict) and "class_type" in n] if graph else []
    )
    ui_nodes = workflow.get("nodes") if workflow else None
    if not nodes and not isinstance(ui_nodes, list):
        return []
    classes = sorted({str(n.get("class_type")) for n in nodes})
    checkpoints = sorted(
        {
            _short(n["inputs"][key])
            for n in nodes
            if isinstance(n.get("inputs"), dict)
            for key in ("ckpt_name", "unet_name", "model_name")
            if isinstance(n["inputs"].get(key), str)
        }
    )
    prompt_length = sum(
        len(n["inputs"]["text"])
        for n in nodes
        if isinstance(n.get("inputs"), dict) and isinstance(n["inputs"].get("text"), str)
    )
    return [
        _item(
            "comfyui",
            "ComfyUI workflow embedded in the file",
            generator="ComfyUI",
            field=", ".join(k for k in ("prompt", "workflow") if _json_obj(f.text.get(k))),
            node_count=len(nodes) or (len(ui_nodes) if isinstance(ui_nodes, list) else 0),
            node_types=[_short(c) for c in classes[:20]],
            models=checkpoints[:10],
            prompt_present=prompt_length > 0,
            prompt_length=prompt_length,
        )
    ]


# --- NovelAI (text chunks and stealth alpha) -------------------------------------------


def _novelai_details(meta: dict[str, Any]) -> dict[str, Any]:
    comment = meta.get("Comment")
    settings = comment if isinstance(comment, dict) else _json_obj(comment) or {}
    prompt = settings.get("prompt") or meta.get("Description") or ""
    keep = ("steps", "sampler", "scale", "seed", "width", "height", "noise_schedule")
    return {
        "software": _short(meta.get("Software", "")) or None,
        "model": _short(meta.get("Source", "")) or None,
        "prompt_present": bool(prompt),
        "prompt_length": len(prompt) if isinstance(prompt, str) else None,
        "settings": {k: _short(settings[k]) for k in keep if k in settings},
    }


def _rule_novelai(f: MetadataFields) -> list[Evidence]:
    items: list[Evidence] = []
    software = f.text.get("Software", "")
    comment = _json_obj(f.text.get("Comment"))
    if "novelai" in software.lower() or (
        comment is not None and {"prompt", "uc", "sampler"} <= set(comment)
    ):
        items.append(
            _item(
                "novelai",
                "NovelAI generation metadata in PNG text chunks",
                generator="NovelAI",
                field="png:Software/Comment",
                **_novelai_details({**f.text, "Comment": comment or {}}),
            )
        )
    if f.image is not None and f.format in (None, "PNG", "WEBP", "TIFF"):
        try:
            payload = read_stealth(f.image)
        except StealthError as e:
            return items + [
                Evidence.error(SOURCE, "bad_stealth_payload", f"NovelAI stealth data: {e}")
            ]
        except (OSError, ValueError) as e:  # truncated pixel data
            return items + [Evidence.error(SOURCE, "unreadable_pixels", str(e)[:200])]
        if payload is not None:
            items.append(
                Evidence(
                    source=SOURCE,
                    finding=(
                        f"NovelAI stealth metadata hidden in the {payload.channel} channel's "
                        "low bits (survives a metadata strip, not re-encoding; forgeable)"
                    ),
                    strength="moderate",
                    indicates="ai_generated",
                    forgeable=True,
                    strippable=True,
                    details={
                        "rule": "novelai_stealth",
                        "generator": "NovelAI",
                        "channel": payload.channel,
                        "compressed": payload.compressed,
                        **{
                            k: v for k, v in _novelai_details(payload.data).items() if v is not None
                        },
                    },
                )
            )
    return items


# --- InvokeAI, Fooocus, SwarmUI ---------------------------------------------------------


def _rule_invokeai(f: MetadataFields) -> list[Evidence]:
    for key in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"):
        if key not in f.text:
            continue
        meta = _json_obj(f.text[key]) or {}
        if (
            key == "sd-metadata"
            and "invoke" not in json.dumps(meta).lower()
            and "image" not in meta
        ):
            continue
        model = meta.get("model")
        model_name = model.get("name") if isinstance(model, dict) else model
        prompt = meta.get("positive_prompt")
        if prompt is None and isinstance(meta.get("image"), dict):
            prompt = meta["image"].get("prompt")
        return [
            _item(
                "invokeai",
                f"InvokeAI generation metadata in the {key!r} chunk",
                generator="InvokeAI",
                field=f"png:{key}",
                version=_short(meta["app_version"]) if "app_version" in meta else None,
                model=_short(model_name) if model_name else None,
                prompt_present=bool(prompt) or key == "Dream",
                prompt_length=len(prompt) if isinstance(prompt, str) else None,
            )
        ]
    return []


def _rule_fooocus(f: MetadataFields) -> list[Evidence]:
    scheme = f.text.get("fooocus_scheme")
    params = _json_obj(f.text.get("parameters"))
    version = str((params or {}).get("version") or (params or {}).get("Version") or "")
    if scheme is None and "fooocus" not in version.lower():
        return []
    prompt = (params or {}).get("prompt") or (params or {}).get("Prompt") or ""
    model = (params or {}).get("base_model") or (params or {}).get("Base Model")
    return [
        _item(
            "fooocus",
            "Fooocus generation metadata",
            generator="Fooocus",
            field="png:fooocus_scheme/parameters",
            scheme=_short(scheme) if scheme else None,
            version=_short(version) if version else None,
            model=_short(model) if model else None,
            prompt_present=bool(prompt),
            prompt_length=len(prompt) if isinstance(prompt, str) else None,
        )
    ]


def _rule_swarmui(f: MetadataFields) -> list[Evidence]:
    for where, text in (
        ("png:parameters", f.text.get("parameters")),
        ("exif:UserComment", f.exif.get("UserComment")),
    ):
        meta = _json_obj(text)
        params = meta.get("sui_image_params") if meta else None
        if not isinstance(params, dict):
            continue
        prompt = params.get("prompt") or ""
        return [
            _item(
                "swarmui",
                f"SwarmUI generation parameters in {where}",
                generator="SwarmUI",
                field=where,
                version=_short(params["swarm_version"]) if "swarm_version" in params else None,
                model=_short(params["model"]) if "model" in params else None,
                prompt_present=bool(prompt),
                prompt_length=len(prompt) if isinstance(prompt, str) else None,
            )
        ]
    return []


# --- Draw Things, Midjourney --------------------------------------------------------------


def _rule_drawthings(f: MetadataFields) -> list[Evidence]:
    tools = f.xmp_values(XMP_BASIC, "CreatorTool")
    if not any("draw things" in t.lower() for t in tools):
        return []
    settings: dict[str, Any] = {}
    for comment in f.xmp_values(EXIF_NS, "UserComment"):
        settings = _json_obj(comment) or settings
    prompt = settings.get("c") or ""
    return [
        _item(
            "drawthings",
            "Draw Things generation metadata in XMP",
            generator="Draw Things",
            field="xmp:CreatorTool",
            model=_short(settings["model"]) if "model" in settings else None,
            prompt_present=bool(prompt) or bool(f.xmp_values(DC_NS, "description")),
            prompt_length=len(prompt) if isinstance(prompt, str) and prompt else None,
        )
    ]


_MJ_JOB = re.compile(
    r"Job ID:\s*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.I
)


def _rule_midjourney(f: MetadataFields) -> list[Evidence]:
    candidates = [
        ("png:Description", f.text.get("Description")),
        ("exif:ImageDescription", f.exif.get("ImageDescription")),
        *(("xmp:dc:description", v) for v in f.xmp_values(DC_NS, "description")),
    ]
    for where, text in candidates:
        match = _MJ_JOB.search(text or "")
        if not match:
            continue
        return [
            _item(
                "midjourney",
                f"Midjourney job description in {where}",
                generator="Midjourney",
                field=where,
                job_id=match.group(1).lower(),
                prompt_present=bool(text[: match.start()].strip()),
                prompt_length=len(text[: match.start()].strip()),
            )
        ]
    return []


# --- IPTC DigitalSourceType / AISystemUsed ----------------------------------------------


def _rule_iptc(f: MetadataFields) -> list[Evidence]:
    items: list[Evidence] = []
    for uri in dict.fromkeys(f.xmp_values(IPTC_EXT, "DigitalSourceType")):
        code = uri.rstrip("/").rsplit("/", 1)[-1]
        indicates, meaning = DIGITAL_SOURCE_TYPES.get(code, ("none", "unknown source type"))
        items.append(
            _item(
                "iptc_digital_source_type",
                f"IPTC DigitalSourceType {code}: {meaning}",
                indicates=indicates,
                strength="weak" if indicates in ("camera", "none") else "moderate",
                digital_source_type=_short(uri),
                field="xmp:Iptc4xmpExt:DigitalSourceType",
            )
        )
    systems = f.xmp_values(IPTC_EXT, "AISystemUsed")
    if systems:
        versions = f.xmp_values(IPTC_EXT, "AISystemVersionUsed")
        prompts = f.xmp_values(IPTC_EXT, "AIPromptInformation")
        items.append(
            _item(
                "iptc_ai_system",
                f"IPTC AISystemUsed: {_short(systems[0])}",
                ai_system=_short(systems[0]),
                ai_system_version=_short(versions[0]) if versions else None,
                prompt_present=bool(prompts),
                prompt_length=len(prompts[0]) if prompts else None,
                field="xmp:Iptc4xmpExt:AISystemUsed",
            )
        )
    return items


# --- known generator names in Software-like fields ---------------------------------------


@lru_cache(maxsize=1)
def known_generators() -> tuple[tuple[re.Pattern[str], str, str], ...]:
    """(pattern, name, indicates) from ``data/generators.toml``."""
    raw = resources.files("sentinelle.provenance").joinpath("data/generators.toml").read_text()
    entries = tomllib.loads(raw).get("generator", [])
    return tuple(
        (re.compile(e["pattern"], re.I), e["name"], e.get("indicates", "ai_generated"))
        for e in entries
    )


def _software_fields(f: MetadataFields) -> list[tuple[str, str]]:
    out = [(f"exif:{k}", f.exif[k]) for k in ("Software", "Artist", "Make", "Model") if k in f.exif]
    out += [
        (f"png:{k}", f.text[k]) for k in ("Software", "Source", "Author", "Title") if k in f.text
    ]
    for ns, name, label in (
        (XMP_BASIC, "CreatorTool", "xmp:CreatorTool"),
        (TIFF_NS, "Software", "xmp:tiff:Software"),
        (PHOTOSHOP_NS, "Credit", "xmp:photoshop:Credit"),
    ):
        out += [(label, v) for v in f.xmp_values(ns, name)]
    return [(where, value[:200]) for where, value in out]


def _rule_software(f: MetadataFields, already: set[str]) -> list[Evidence]:
    items: list[Evidence] = []
    seen: set[str] = set()
    for where, value in _software_fields(f):
        for pattern, name, indicates in known_generators():
            if name in seen or not pattern.search(value):
                continue
            seen.add(name)
            if any(name.lower() in a.lower() or a.lower() in name.lower() for a in already):
                continue
            items.append(
                _item(
                    "software",
                    f"{where} names the generator {name}: {_short(value)!r}",
                    indicates=indicates,
                    generator=name,
                    field=where,
                    value=_short(value),
                )
            )
    return items


def analyze_fields(f: MetadataFields) -> list[Evidence]:
    """Apply every rule to already-read fields (handy for tests and other callers)."""
    items: list[Evidence] = []
    for rule in (
        _rule_swarmui,
        _rule_fooocus,
        _rule_a1111,
        _rule_comfyui,
        _rule_novelai,
        _rule_invokeai,
        _rule_drawthings,
        _rule_midjourney,
        _rule_iptc,
    ):
        found = rule(f)
        if rule is _rule_a1111 and any(i.details.get("rule") == "fooocus" for i in items):
            found = [i for i in found if i.details.get("generator") != "Fooocus"]
        items.extend(found)
    named = {str(i.details["generator"]) for i in items if "generator" in i.details}
    items.extend(_rule_software(f, named))
    if f.xmp_error:
        items.append(Evidence.error(SOURCE, "malformed_xmp", f.xmp_error))
    return items


def collect(data: bytes, ctx: SourceContext) -> list[Evidence]:
    """Evidence source: every generator label the file's metadata carries."""
    return analyze_fields(read_fields(data, ctx))
