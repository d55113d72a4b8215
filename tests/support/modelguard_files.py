"""Small synthetic model files for the model guard tests (benign, term-level metadata)."""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def lora_tensors(seed: int = 0, rank: int = 4, width: int = 64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for block in ("down_0", "mid", "up_1"):
        key = f"lora_unet_{block}_attn1_to_q"
        out[f"{key}.lora_down.weight"] = rng.standard_normal((rank, width), dtype=np.float32)
        out[f"{key}.lora_up.weight"] = rng.standard_normal((width, rank)).astype(np.float16)
        out[f"{key}.alpha"] = np.array(float(rank), dtype=np.float32)
    return out


def kohya_metadata(
    tags: Mapping[str, int],
    *,
    folder: str = "10_style",
    images: int | None = None,
    output_name: str = "style lora",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    n = images if images is not None else max(tags.values(), default=1)
    meta = {
        "ss_output_name": output_name,
        "ss_tag_frequency": json.dumps({folder: dict(tags)}),
        "ss_dataset_dirs": json.dumps({folder: {"n_repeats": 10, "img_count": n}}),
        "ss_num_train_images": str(n * 10),
        "ss_network_module": "networks.lora",
    }
    meta.update(extra or {})
    return meta


def write_lora(
    path: Path,
    tags: Mapping[str, int] | None = None,
    *,
    seed: int = 0,
    metadata: Mapping[str, str] | None = None,
    **kw: object,
) -> Path:
    meta = dict(metadata) if metadata is not None else kohya_metadata(tags or {}, **kw)  # type: ignore[arg-type]
    save_file(lora_tensors(seed), str(path), metadata=meta)
    return path


def raw_safetensors(path: Path, header: bytes | dict, data: bytes = b"", length: int | None = None
                    ) -> Path:  # fmt: skip
    """A safetensors file from a raw header (bytes or a dict) and raw data bytes."""
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(h) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + h + data)
    return path


# ---------------------------------------------------------------- pickle opcodes
def _unicode(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def pickle_state_dict(names: list[str], extra_strings: Mapping[str, str] | None = None) -> bytes:
    """Protocol-2 opcodes of a torch-like state dict: OrderedDict of tensors rebuilt by
    ``torch._utils._rebuild_tensor_v2`` (never loaded: torch is not needed)."""
    out = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01("
    for n in names:
        out += _unicode(n) + b"ctorch._utils\n_rebuild_tensor_v2\n(K\x00K\x04\x85tR"
    for k, v in (extra_strings or {}).items():
        out += _unicode(k) + _unicode(v)
    return out + b"u."


def dangerous_pickle(protocol4: bool = False) -> bytes:
    """Opcodes that would call ``os.system`` if unpickled (they never are)."""
    if protocol4:  # STACK_GLOBAL with memoised strings
        return (
            b"\x80\x04"
            + _unicode("os")
            + b"\x94"
            + _unicode("system")
            + b"\x94\x93"
            + (_unicode("true") + b"\x85R.")
        )
    return b"\x80\x02cos\nsystem\n" + _unicode("true") + b"\x85R."


def torch_zip(path: Path, pkl: bytes, storages: int = 2) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")
        for i in range(storages):
            z.writestr(f"archive/data/{i}", bytes(16))
    return path


# ---------------------------------------------------------------- GGUF
def write_gguf(path: Path, name: str = "tiny fox", tags: list[str] | None = None) -> Path:
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_string("general.description", "a small test model")
    w.add_array("general.tags", tags or ["fox", "forest"])
    w.add_token_list([f"tok{i}" for i in range(500)])
    w.add_tensor("blk.0.attn_q.weight", np.arange(64, dtype=np.float32).reshape(8, 8))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(8, dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def gguf_prefix(n_tensors: int, n_kv: int, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


def gguf_string(s: str | bytes, length: int | None = None) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b) if length is None else length) + b


_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int64): "I64"}


def write_ordered(
    path: Path,
    tensors: list[tuple[str, np.ndarray]],
    metadata: Mapping[str, str] | None = None,
    pad: int = 0,
) -> Path:
    """A safetensors file whose tensors are laid out in exactly the given order."""
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    blobs, at = [], 0
    for name, arr in tensors:
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": _DTYPES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [at, at + len(b)]}  # fmt: skip
        blobs.append(b)
        at += len(b)
    h = json.dumps(header).encode() + b" " * pad
    return raw_safetensors(path, h, b"".join(blobs))
