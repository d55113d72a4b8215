"""Model cards and sidecar files next to a model file, read as text fields.

Looked for beside ``name.safetensors`` (or inside a model folder):

* ``README.md`` / ``MODEL_CARD.md`` / ``name.md`` / ``name.txt``: Hugging Face style cards;
  the YAML front matter's ``tags``, ``instance_prompt``, ``widget`` texts, ``base_model``
  and the body's paragraphs are taken (front matter is read line by line, no YAML
  loader: a card cannot make us build objects);
* ``name.json`` (A1111 extra-networks sidecar: ``activation text``, ``description``,
  ``notes``) and ``name.civitai.info`` (``trainedWords``, model name and tags).

Every file is read up to ``ModelLimits.max_text_bytes``; larger ones are cut there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._json import loads_bounded
from .errors import ModelFileError
from .fields import TextField
from .limits import DEFAULT_LIMITS, ModelLimits
from .training_metadata import clean_tag, extract

CARD_NAMES = ("README.md", "readme.md", "MODEL_CARD.md", "model_card.md")
FRONT_KEYS = {"tags": "tag", "instance_prompt": "trigger", "text": "prompt", "base_model": "name",
              "model_name": "name", "pipeline_tag": None, "license": None}  # fmt: skip
_KEY_LINE = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z_][\w\-]*)\s*:\s*(.*)$")
_ITEM_LINE = re.compile(r"^\s*-\s+(.*)$")
_HTML = re.compile(r"<[^>]{0,500}>")
_MD_NOISE = re.compile(r"!\[[^\]]*\]\([^)]*\)|\[([^\]]*)\]\([^)]*\)|[#*_`>|]+")


def _read_text(path: Path, limits: ModelLimits) -> str | None:
    try:
        with open(path, "rb") as f:
            data = f.read(limits.max_text_bytes)
    except OSError:
        return None
    return data.decode("utf-8", "replace")


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        v = v[1:-1]
    return v.strip()


def _front_matter(lines: list[str], source: str) -> list[TextField]:
    out: list[TextField] = []
    key: str | None = None
    for line in lines:
        m = _KEY_LINE.match(line)
        if m:
            key, value = m.group(2), _unquote(m.group(3))
            kind = FRONT_KEYS.get(key, "text") if key in FRONT_KEYS else None
            if kind and value and value not in ("|", ">", "|-", ">-"):
                if value.startswith("[") and value.endswith("]"):
                    for part in value[1:-1].split(","):
                        if _unquote(part):
                            out.append(TextField(f"{source}:{key}", _field_text(part, kind), kind))
                else:
                    out.append(TextField(f"{source}:{key}", _field_text(value, kind), kind))
            continue
        m = _ITEM_LINE.match(line)
        if m and key in FRONT_KEYS and FRONT_KEYS[key]:
            kind = FRONT_KEYS[key]
            out.append(TextField(f"{source}:{key}", _field_text(m.group(1), kind), kind))
    return out


def _field_text(value: str, kind: str | None) -> str:
    v = _unquote(value)
    return clean_tag(v) if kind == "tag" else v


def paragraphs(text: str, max_chars: int) -> list[str]:
    """Card body -> plain paragraphs, each at most ``max_chars`` (split at sentence ends)."""
    plain = _MD_NOISE.sub(lambda m: m.group(1) or " ", _HTML.sub(" ", text))
    out = []
    for para in re.split(r"\n\s*\n", plain):
        p = " ".join(para.split())
        while len(p) > max_chars:
            cut = p.rfind(". ", 0, max_chars)
            cut = cut + 1 if cut > max_chars // 2 else max_chars
            out.append(p[:cut].strip())
            p = p[cut:].strip()
        if p:
            out.append(p)
    return out


def read_card(path: Path, limits: ModelLimits = DEFAULT_LIMITS) -> list[TextField]:
    """Text fields of a Markdown model card."""
    text = _read_text(path, limits)
    if text is None:
        return []
    source = path.name
    fields: list[TextField] = []
    body = text
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end > 0:
            fields += _front_matter(text[3:end].splitlines(), source)
            body = text[end + 4 :]
    fields += [TextField(source, p, "text") for p in paragraphs(body, limits.max_field_chars)]
    return fields


def read_sidecar_json(path: Path, limits: ModelLimits = DEFAULT_LIMITS) -> list[TextField]:
    """A1111 ``name.json`` or Civitai ``name.civitai.info``."""
    text = _read_text(path, limits)
    if text is None:
        return []
    try:
        doc = loads_bounded(text, max_depth=limits.max_json_depth, what=path.name, format=None)
    except ModelFileError:
        return []
    if not isinstance(doc, Mapping):
        return []
    flat: dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(v, Mapping) and k == "model":  # civitai: {"model": {"name", "tags"}}
            flat.update({f"{kk}": vv for kk, vv in v.items() if kk in ("name", "tags")})
        elif isinstance(v, str) and k == "description":
            flat[k] = " ".join(_HTML.sub(" ", v).split())
        else:
            flat[k] = v
    fields = extract(flat, limits).fields
    return [TextField(f"{path.name}:{f.field}", f.text, f.kind, f.count, f.context) for f in fields]


def sidecars(model: Path) -> list[Path]:
    """Card and sidecar files that belong to ``model`` (a file or a folder)."""
    folder = model if model.is_dir() else model.parent
    found: list[Path] = []
    names = list(CARD_NAMES)
    if not model.is_dir():
        stem = model.name.split(".")[0] if model.suffix else model.name
        names += [f"{stem}.md", f"{stem}.txt", f"{stem}.json", f"{stem}.civitai.info"]
    seen: set[str] = set()
    for n in names:
        p = folder / n
        if n.lower() not in seen and p.is_file():
            seen.add(n.lower())
            found.append(p)
    return found


def read_sidecars(model: Path, limits: ModelLimits = DEFAULT_LIMITS) -> list[TextField]:
    out: list[TextField] = []
    for p in sidecars(model):
        if p.suffix in (".json", ".info"):
            out += read_sidecar_json(p, limits)
        else:
            out += read_card(p, limits)
    return out
