"""`scan_model`: read a model file or folder, judge its text, identify its tensors.

    from sentinelle.modelguard import scan_model
    r = scan_model("lora.safetensors")
    r.decision, r.signal("tensor_sha256"), r.judgement.evidence

Formats are told by their first bytes, not their names: safetensors (8-byte length then
``{``), GGUF (``GGUF``), torch zip (``PK``) or pickle (``0x80``); a folder with
``model_index.json`` is a diffusers model. Nothing is executed and, with
``hash_tensors=False``, no tensor byte is read.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from ..signals.types import HashSignal
from . import card_reader, diffusers_reader, gguf_reader, pickle_reader, safetensors_reader
from .errors import ModelFileError
from .fields import TextField
from .hashing import TensorDigest, combine_digests, hash_model_file
from .judge import ModelJudge, most_severe
from .layout import TensorLayout
from .limits import DEFAULT_LIMITS, ModelLimits
from .result import ModelScanResult
from .training_metadata import clean_tag, extract, iter_strings

PROTOCOLS = (b"\x02", b"\x03", b"\x04", b"\x05")
MODEL_SUFFIXES = (".safetensors", ".gguf", ".ckpt", ".pt", ".pth", ".bin", ".pkl", ".sft")
#: When the first bytes say nothing, a file named for its format gets that format's reader
#: (and so its precise error).
SUFFIX_FORMATS = {".safetensors": "safetensors", ".sft": "safetensors", ".gguf": "gguf"}
_DEFAULT_JUDGE: ModelJudge | None = None


def default_judge() -> ModelJudge:
    global _DEFAULT_JUDGE
    if _DEFAULT_JUDGE is None:
        _DEFAULT_JUDGE = ModelJudge()
    return _DEFAULT_JUDGE


def sniff_format(head: bytes) -> str | None:
    """Format of a file from its first 16 bytes.

    safetensors is tried first: its little-endian header length may begin with ``0x80``
    (a 384-byte header does), which alone would look like a pickle's PROTO opcode; a
    pickle needs PROTO with a protocol of 2 to 5 (what torch and numpy write).
    """
    if head[:4] == gguf_reader.MAGIC:
        return "gguf"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] >= 2:
        return "safetensors"
    if head[:4] == pickle_reader.ZIP_MAGIC or (head[:1] == b"\x80" and head[1:2] in PROTOCOLS):
        return "pickle"
    return None


def _file_name_field(path: Path) -> TextField:
    stem = path.name.split(".")[0] if path.suffix else path.name
    return TextField("file_name", clean_tag(stem.replace("-", " ")), "name")


def pickle_fields(scan: pickle_reader.PickleScan) -> list[TextField]:
    """Strings of a pickle worth judging: named values and word-like strings."""
    out = []
    for key, value in scan.pairs:
        if key in ("name", "sd_checkpoint_name", "ss_output_name", "trigger", "activation text"):
            out.append(TextField(f"pickle:{key}", value, "name"))
    for s in scan.strings:
        if " " in s.strip() and len(s) <= 300 and "." not in s.split(" ", 1)[0]:
            out.append(TextField("pickle:string", s, "text"))
    for tok in scan.pairs:  # textual inversion: {"string_to_token": {"<tok>": id}}
        if tok[0] == "string_to_param" and tok[1] not in ("*",):
            out.append(TextField("pickle:string_to_param", tok[1], "trigger"))
    return out


def scan_model(
    path: str | os.PathLike[str],
    *,
    hash_tensors: bool = True,
    file_hash: bool = True,
    judge: ModelJudge | None = None,
    limits: ModelLimits = DEFAULT_LIMITS,
    read_sidecars: bool = True,
    progress: Callable[[int], None] | None = None,
) -> ModelScanResult:
    """Scan one model file or diffusers folder; never raises for a bad file (the error is
    in ``result.error`` and the decision is ``review``)."""
    p = Path(path)
    judge = judge or default_judge()
    try:
        if p.is_dir():
            return _scan_folder(p, hash_tensors, file_hash, judge, limits, progress)
        return _scan_file(p, hash_tensors, file_hash, judge, limits, read_sidecars, progress)
    except ModelFileError as e:
        return ModelScanResult(str(p), e.format, _size(p), "review", error=e)


def _size(p: Path) -> int | None:
    try:
        return p.stat().st_size
    except OSError:
        return None


def _scan_file(
    p: Path,
    hash_tensors: bool,
    file_hash: bool,
    judge: ModelJudge,
    limits: ModelLimits,
    read_sidecars: bool,
    progress: Callable[[int], None] | None,
) -> ModelScanResult:
    fields: list[TextField] = [_file_name_field(p)]
    layout: TensorLayout | None = None
    images: int | None = None
    pickle_scan = None
    summary: dict = {}
    notes: list[str] = []
    try:
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fmt = sniff_format(fh.read(16)) or SUFFIX_FORMATS.get(p.suffix.lower())
            fh.seek(0)
            if fmt == "safetensors":
                h = safetensors_reader.read_header(fh, size, limits)
                layout = h.layout
                md = extract(h.metadata, limits)
                fields += md.fields
                images, summary, notes = md.images, md.summary, md.notes
                summary["metadata_keys"] = len(h.metadata)
            elif fmt == "gguf":
                g = gguf_reader.read_header(fh, size, limits)
                layout = g.layout
                general = {
                    k.removeprefix("general."): v for k, v in g.metadata.items()
                    if k.startswith("general.")
                }  # fmt: skip
                md = extract(general, limits)
                fields += md.fields
                summary = {k: v for k, v in general.items() if isinstance(v, str | int)}
                summary = dict(list(summary.items())[:20])
                summary["gguf_version"] = g.version
                notes = md.notes
            elif fmt == "pickle":
                pass
            else:
                raise ModelFileError(
                    f"{p.name} is not a safetensors, GGUF, pickle or torch zip model file",
                    "unsupported_model",
                )
    except OSError as e:
        raise ModelFileError(f"cannot read {p}: {e.strerror}", "io_error") from e
    if fmt == "pickle":
        pickle_scan = pickle_reader.scan_pickle_file(p, limits)
        fields += pickle_fields(pickle_scan)
        notes.append("pickle: tensors are not located statically; only file_sha256 is computed")
    if read_sidecars:
        fields += card_reader.read_sidecars(p, limits)
    judgement = judge.judge(fields, images, pickle_scan.risk if pickle_scan else None)
    result = ModelScanResult(str(p), fmt, size, judgement.decision, judgement)
    result.metadata, result.notes, result.pickle = summary, notes, pickle_scan
    if layout is not None:
        result.tensor_count = len(layout.tensors)
        result.tensor_bytes = layout.data_bytes
    if (hash_tensors and layout is not None) or file_hash:
        rep = hash_model_file(
            p, layout, file_sha256=file_hash, tensors=hash_tensors, progress=progress
        )
        if rep.file_sha256:
            result.signals.append(HashSignal("file_sha256", rep.file_sha256))
        if rep.tensor_sha256:
            result.signals.append(HashSignal("tensor_sha256", rep.tensor_sha256))
        result.tensors = rep.tensors
    return result


def _scan_folder(
    p: Path,
    hash_tensors: bool,
    file_hash: bool,
    judge: ModelJudge,
    limits: ModelLimits,
    progress: Callable[[int], None] | None,
) -> ModelScanResult:
    if not diffusers_reader.is_diffusers_folder(p):
        raise ModelFileError(
            f"{p} is a folder without {diffusers_reader.INDEX}; scan its files instead",
            "unsupported_model",
        )
    folder = diffusers_reader.read_folder(p, limits)
    parts = [
        scan_model(
            w,
            hash_tensors=hash_tensors,
            file_hash=file_hash,
            judge=judge,
            limits=limits,
            read_sidecars=False,
            progress=progress,
        )
        for _, w in folder.weights
    ]
    fields = folder.fields + [_file_name_field(p)] + card_reader.read_sidecars(p, limits)
    for part in parts:
        if part.judgement:
            fields += [
                TextField(f"{Path(part.path or '').parent.name}/{e.field}", e.text, e.kind, e.count)
                for e in part.judgement.evidence
            ]
    judgement = judge.judge(fields)
    decision = most_severe(judgement.decision, *(x.decision for x in parts))
    result = ModelScanResult(str(p), diffusers_reader.FORMAT, None, decision, judgement)
    result.parts = parts
    result.metadata = {"class_name": folder.class_name, "components": folder.components}
    digests: list[TensorDigest] = []
    for (component, _w), part in zip(folder.weights, result.parts, strict=True):
        digests += [
            TensorDigest(f"{component}/{d.name}", d.dtype, d.shape, d.nbytes, d.sha256)
            for d in part.tensors
        ]
    result.tensor_count = sum(x.tensor_count for x in result.parts)
    result.tensor_bytes = sum(x.tensor_bytes for x in result.parts)
    if hash_tensors and digests:
        result.signals.append(HashSignal("tensor_sha256", combine_digests(digests)))
        result.tensors = tuple(digests)
    return result


def iter_model_paths(paths: list[str | os.PathLike[str]], limits: ModelLimits = DEFAULT_LIMITS
                     ) -> Iterator[Path]:  # fmt: skip
    """Expand folders: a diffusers folder is one model; other folders yield their model
    files (recursively, by suffix, at most ``limits.max_folder_files``)."""
    for raw in paths:
        p = Path(raw)
        if not p.is_dir() or diffusers_reader.is_diffusers_folder(p):
            yield p
            continue
        n = 0
        for root, dirs, files in os.walk(p):
            dirs.sort()
            here = Path(root)
            if diffusers_reader.is_diffusers_folder(here) and here != p:
                dirs.clear()
                yield here
                continue
            for name in sorted(files):
                if name.lower().endswith(MODEL_SUFFIXES):
                    n += 1
                    if n > limits.max_folder_files:
                        return
                    yield here / name


__all__ = ["iter_model_paths", "iter_strings", "scan_model", "sniff_format"]
