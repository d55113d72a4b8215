"""Diffusers model folders: ``model_index.json``, component configs, added tokens.

A diffusers folder has ``model_index.json`` (``{"_class_name", "_diffusers_version",
component: [library, class]}``) and one subfolder per component (``unet/``,
``text_encoder/``, ``vae/``...) with a ``config.json`` and weight files
(``*.safetensors``, or pickle ``*.bin``; large ones sharded with an index JSON).
Text taken for the judge: class and ``_name_or_path`` values (they often keep the
training run's folder name) and textual-inversion tokens added to the tokenizer
(``added_tokens.json``: trigger words). The weight files are listed for the scanner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._json import loads_bounded
from .errors import ModelFileError
from .fields import TextField
from .limits import DEFAULT_LIMITS, ModelLimits

FORMAT = "diffusers"
INDEX = "model_index.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".gguf")


@dataclass
class DiffusersFolder:
    class_name: str | None
    components: dict[str, str] = field(default_factory=dict)  # name -> "library.Class"
    fields: list[TextField] = field(default_factory=list)
    weights: list[tuple[str, Path]] = field(default_factory=list)  # (component, file)


def _json_file(path: Path, limits: ModelLimits) -> Any:
    try:
        size = path.stat().st_size
        if size > limits.max_text_bytes:
            raise ModelFileError(
                f"{path.name} is {size} bytes; the limit is {limits.max_text_bytes}",
                "bad_folder",
                format=FORMAT,
            )
        data = path.read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror}", "io_error", format=FORMAT) from e
    return loads_bounded(data, max_depth=limits.max_json_depth, what=path.name, format=FORMAT)


def is_diffusers_folder(path: Path) -> bool:
    return path.is_dir() and (path / INDEX).is_file()


def read_folder(path: Path, limits: ModelLimits = DEFAULT_LIMITS) -> DiffusersFolder:
    index = _json_file(path / INDEX, limits)
    if not isinstance(index, Mapping):
        raise ModelFileError(f"{INDEX} is not a JSON object", "bad_folder", format=FORMAT)
    out = DiffusersFolder(str(index.get("_class_name")) if index.get("_class_name") else None)
    if isinstance(index.get("_name_or_path"), str):
        out.fields.append(TextField(f"{INDEX}:_name_or_path", index["_name_or_path"], "name"))
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2:
            continue
        if not all(isinstance(s, str | None) for s in spec) or spec[1] is None:
            continue
        out.components[name] = f"{spec[0]}.{spec[1]}"
        sub = path / name
        if not sub.is_dir() or sub.is_symlink():
            continue
        for cfg_name in ("config.json", "tokenizer_config.json", "added_tokens.json"):
            cfg = sub / cfg_name
            if not cfg.is_file():
                continue
            try:
                doc = _json_file(cfg, limits)
            except ModelFileError:
                continue
            if not isinstance(doc, Mapping):
                continue
            where = f"{name}/{cfg_name}"
            if cfg_name == "added_tokens.json":
                out.fields += [TextField(where, str(k), "trigger") for k in list(doc)[:1_000]]
            elif isinstance(doc.get("_name_or_path"), str):
                out.fields.append(TextField(f"{where}:_name_or_path", doc["_name_or_path"], "name"))
        files = sorted(p for p in sub.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
        # one format per component: safetensors when both are shipped
        if any(p.suffix == ".safetensors" for p in files):
            files = [p for p in files if p.suffix == ".safetensors"]
        for p in files:
            if len(out.weights) >= limits.max_folder_files:
                break
            out.weights.append((name, p))
    return out
