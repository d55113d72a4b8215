"""Text fields from the training metadata trainers and UIs write into model files.

* kohya sd-scripts (``ss_*`` keys): ``ss_tag_frequency`` (JSON ``{folder: {tag: images}}``),
  ``ss_dataset_dirs`` (``{folder: {"n_repeats", "img_count"}}``), ``ss_reg_dataset_dirs``,
  ``ss_datasets`` (JSON list; each with ``tag_frequency`` and ``subsets`` carrying
  ``image_dir``, ``class_tokens``, ``img_count``), ``ss_output_name``,
  ``ss_training_comment``, ``ss_sd_model_name``, ``ss_num_train_images``;
* the Stability model-spec (``modelspec.title``, ``.description``, ``.trigger_phrase``,
  ``.tags``, ``.author``, ``.usage_hint``);
* A1111 / Civitai style keys (``activation text``, ``trigger_words``, ``trainedWords``,
  ``instance_prompt``, ``description``, ``name``...), also in sidecar ``.json`` files;
* ComfyUI checkpoint saves (``prompt`` / ``workflow``: the graph that made the model,
  whose text inputs are prompts).

kohya folder names are ``<repeats>_<words>`` (``10_red fox``): the repeat count is dropped.
Danbooru-style tags use underscores for spaces (``red_fox``): they are read as spaces.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._json import loads_bounded
from .errors import ModelFileError
from .fields import TextField
from .limits import DEFAULT_LIMITS, ModelLimits

NAME_KEYS = {
    "ss_output_name": "name", "modelspec.title": "name", "ss_sd_model_name": "name",
    "name": "name", "title": "name", "model_name": "name", "modelspec.author": "name",
    "modelspec.trigger_phrase": "trigger", "activation text": "trigger",
    "activation_text": "trigger", "trigger_words": "trigger", "trigger_word": "trigger",
    "trigger": "trigger", "trainedWords": "trigger", "instance_prompt": "trigger",
    "ss_training_comment": "text", "modelspec.description": "text", "description": "text",
    "modelspec.usage_hint": "text", "notes": "text", "comment": "text",
}  # fmt: skip
LIST_KEYS = {"modelspec.tags": "tag", "tags": "tag"}
#: Keys whose values are JSON documents handled below, or numbers/hashes not worth judging.
STRUCTURED = {"ss_tag_frequency", "ss_dataset_dirs", "ss_reg_dataset_dirs", "ss_datasets",
              "prompt", "workflow", "ss_bucket_info", "ss_network_args"}  # fmt: skip
PROMPT_INPUTS = ("text", "text_g", "text_l", "prompt", "positive", "clip_l", "t5xxl")
_REPEATS = re.compile(r"^\d+_")
_HASHLIKE = re.compile(r"^(0x)?[0-9a-fA-F]{8,}$|^[\d.,:eE+\-\s]*$|^(true|false|none|null)$", re.I)


@dataclass
class TrainingMetadata:
    fields: list[TextField] = field(default_factory=list)
    images: int | None = None  # training images (the folders' img_count, else ss_num_train_images)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # unreadable parts, skipped


def clean_tag(tag: str) -> str:
    return " ".join(tag.replace("_", " ").split())


def folder_words(folder: str) -> str:
    """``"10_red fox"`` -> ``"red fox"``; path parts are dropped (``a/b/5_x`` -> ``x``)."""
    base = re.split(r"[\\/]", folder.rstrip("/\\"))[-1]
    return clean_tag(_REPEATS.sub("", base))


def _int(v: Any) -> int | None:
    try:
        n = int(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return n if 0 <= n < 2**53 else None


class _Extractor:
    def __init__(self, limits: ModelLimits) -> None:
        self.limits = limits
        self.out = TrainingMetadata()
        self.tags: Counter[str] = Counter()
        self.tag_folder: dict[str, str] = {}
        self.folder_images: dict[str, int] = {}

    def json(self, key: str, raw: str) -> Any:
        try:
            return loads_bounded(raw, max_depth=self.limits.max_json_depth, what=key, format=None)
        except ModelFileError as e:
            self.out.notes.append(f"{key}: {e.message}")
            return None

    def add(self, f: TextField) -> None:
        if f.text and len(self.out.fields) < self.limits.max_text_fields * 2:
            self.out.fields.append(f)

    def tag_frequency(self, key: str, doc: Any) -> None:
        if not isinstance(doc, Mapping):
            return
        for folder, tags in doc.items():
            if not isinstance(tags, Mapping):
                continue
            words = folder_words(str(folder))
            for tag, n in tags.items():
                t, c = clean_tag(str(tag)), _int(n)
                if t and c:
                    self.tags[t] += c
                    self.tag_folder.setdefault(t, words)

    def dataset_dirs(self, key: str, doc: Any) -> None:
        if not isinstance(doc, Mapping):
            return
        for folder, info in doc.items():
            n = _int(info.get("img_count")) if isinstance(info, Mapping) else None
            words = folder_words(str(folder))
            self.add(TextField(key, words, "dataset", n))
            if n is not None and key == "ss_dataset_dirs":
                self.folder_images[words] = n

    def datasets(self, doc: Any) -> None:
        if not isinstance(doc, list):
            return
        for ds in doc:
            if not isinstance(ds, Mapping):
                continue
            self.tag_frequency("ss_datasets", ds.get("tag_frequency"))
            for sub in ds.get("subsets") or []:
                if not isinstance(sub, Mapping):
                    continue
                n = _int(sub.get("img_count"))
                if isinstance(sub.get("image_dir"), str):
                    words = folder_words(sub["image_dir"])
                    self.add(TextField("ss_datasets.image_dir", words, "dataset", n))
                    if n is not None:
                        self.folder_images.setdefault(words, n)
                if isinstance(sub.get("class_tokens"), str):
                    self.add(TextField("ss_datasets.class_tokens", sub["class_tokens"], "trigger"))

    def comfy_prompt(self, key: str, doc: Any) -> None:
        """ComfyUI API graph ``{id: {"class_type", "inputs": {...}}}`` or UI workflow."""
        nodes: list[Any] = []
        if isinstance(doc, Mapping):
            nodes = list(doc.get("nodes") or []) if "nodes" in doc else list(doc.values())
        for node in nodes[:5_000]:
            if not isinstance(node, Mapping):
                continue
            inputs = node.get("inputs")
            if isinstance(inputs, Mapping):
                for name in PROMPT_INPUTS:
                    if isinstance(inputs.get(name), str):
                        self.add(TextField(key, inputs[name][:10_000], "prompt"))
            ctype = str(node.get("class_type") or node.get("type") or "")
            values = node.get("widgets_values")
            if "TextEncode" in ctype and isinstance(values, list):
                for v in values:
                    if isinstance(v, str):
                        self.add(TextField(key, v[:10_000], "prompt"))

    def generic(self, key: str, value: Any) -> None:
        low = key.lower()
        if isinstance(value, list):
            for v in value[:1_000]:
                if isinstance(v, str):
                    kind = LIST_KEYS.get(key) or NAME_KEYS.get(key) or "text"
                    self.add(TextField(key, v, "trigger" if kind == "trigger" else kind))
            return
        if not isinstance(value, str):
            return
        v = value.strip()
        if key in LIST_KEYS:
            for part in v.split(","):
                if part.strip():
                    self.add(TextField(key, clean_tag(part), "tag"))
        elif key in NAME_KEYS or low in NAME_KEYS:
            kind = NAME_KEYS.get(key) or NAME_KEYS[low]
            if kind == "trigger":
                for part in re.split(r"[,\n]", v):
                    if part.strip():
                        self.add(TextField(key, part.strip(), "trigger"))
            else:
                self.add(TextField(key, v, kind))
        elif (
            v
            and len(v) <= 300
            and not _HASHLIKE.match(v)
            and not v.startswith(("{", "["))
            and not low.endswith(("hash", "_version", "_args", "_dir", "_path", "date", "seed"))
        ):
            self.add(TextField(key, v, "text"))

    def run(self, meta: Mapping[str, Any]) -> TrainingMetadata:
        for key, value in meta.items():
            if key == "ss_tag_frequency" and isinstance(value, str):
                self.tag_frequency(key, self.json(key, value))
            elif key in ("ss_dataset_dirs", "ss_reg_dataset_dirs") and isinstance(value, str):
                self.dataset_dirs(key, self.json(key, value))
            elif key == "ss_datasets" and isinstance(value, str):
                self.datasets(self.json(key, value))
            elif key in ("prompt", "workflow") and isinstance(value, str) and value[:1] == "{":
                self.comfy_prompt(key, self.json(key, value))
            elif key not in STRUCTURED:
                self.generic(key, value)
        out = self.out
        for tag, n in self.tags.most_common(self.limits.max_text_fields):
            out.fields.append(
                TextField("ss_tag_frequency", tag, "tag", n, self.tag_folder.get(tag))
            )
        if len(self.tags) > self.limits.max_text_fields:
            out.notes.append(
                f"{len(self.tags)} distinct tags; the {self.limits.max_text_fields} most "
                "frequent were judged"
            )
        # The folders' img_count are images; ss_num_train_images counts repeats too.
        images = sum(self.folder_images.values()) or _int(meta.get("ss_num_train_images"))
        out.images = images or None
        for k in ("ss_output_name", "ss_sd_model_name", "ss_base_model_version",
                  "modelspec.architecture", "modelspec.title", "ss_network_module",
                  "ss_num_train_images", "ss_training_started_at", "general.name",
                  "general.architecture"):  # fmt: skip
            if isinstance(meta.get(k), str | int | float):
                out.summary[k] = meta[k]
        if self.tags:
            out.summary["distinct_tags"] = len(self.tags)
        return out


def extract(meta: Mapping[str, Any], limits: ModelLimits = DEFAULT_LIMITS) -> TrainingMetadata:
    """Text fields of a metadata mapping (safetensors ``__metadata__``, GGUF, sidecars)."""
    return _Extractor(limits).run(meta)


def iter_strings(value: Any, depth: int = 0) -> Iterator[str]:
    """Strings anywhere in a parsed JSON value (bounded depth)."""
    if depth > 8:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from iter_strings(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            yield from iter_strings(v, depth + 1)
