"""safetensors headers, tensor hashing and hostile safetensors files."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import numpy as np
import pytest
from modelguard_files import lora_tensors, raw_safetensors, write_lora, write_ordered
from safetensors import safe_open
from safetensors.numpy import save_file

from sentinelle.modelguard import ModelLimits, hash_model_file, scan_model
from sentinelle.modelguard.errors import ModelFileError
from sentinelle.modelguard.hashing import LayoutHasher, combine_digests
from sentinelle.modelguard.safetensors_reader import read_header


def _header(path):
    with open(path, "rb") as f:
        return read_header(f, os.path.getsize(path))


def test_header_matches_the_safetensors_library(tmp_path):
    p = write_lora(tmp_path / "a.safetensors", {"red fox": 12, "forest": 3})
    h = _header(p)
    with safe_open(str(p), framework="numpy") as f:
        assert h.metadata == f.metadata()
        assert sorted(t.name for t in h.layout.tensors) == sorted(f.keys())
        for t in h.layout.tensors:
            arr = f.get_tensor(t.name)
            assert list(arr.shape) == list(t.shape)
            raw = p.read_bytes()[t.start : t.end]
            assert raw == arr.tobytes()


def test_tensor_hash_is_the_documented_framing(tmp_path):
    tensors = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.zeros(0, np.float16)}
    p = tmp_path / "m.safetensors"
    save_file(tensors, str(p))
    rep = hash_model_file(p, _header(p).layout)
    want_b = hashlib.sha256(b"sentinelle.tensor.v1\0F32\x002,3\0" + tensors["b"].tobytes())
    want_a = hashlib.sha256(b"sentinelle.tensor.v1\0F16\x000\0")
    by_name = {d.name: d.sha256 for d in rep.tensors}
    assert by_name == {"a": want_a.hexdigest(), "b": want_b.hexdigest()}
    model = hashlib.sha256(b"sentinelle.tensors.v1\0")
    for name, d in (("a", want_a), ("b", want_b)):
        model.update(struct.pack(">I", 1) + name.encode() + d.digest())
    assert rep.tensor_sha256 == model.hexdigest()
    assert rep.file_sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


def test_resaved_copy_with_new_metadata_and_order_matches_by_tensor_sha256(tmp_path):
    a = write_lora(tmp_path / "a.safetensors", {"red fox": 12}, seed=1)
    tensors = lora_tensors(seed=1)
    b = write_ordered(
        tmp_path / "b.safetensors",
        list(reversed(list(tensors.items()))),
        {"ss_output_name": "renamed copy", "note": "rewritten"},
        pad=7,
    )
    ra, rb = scan_model(a), scan_model(b)
    order_a = [t.name for t in _header(a).layout.tensors]
    order_b = [t.name for t in _header(b).layout.tensors]
    assert order_a != order_b and sorted(order_a) == sorted(order_b)
    assert _header(a).metadata != _header(b).metadata
    assert ra.signal("file_sha256") != rb.signal("file_sha256")
    assert ra.signal("tensor_sha256") == rb.signal("tensor_sha256")
    assert {d.to_dict()["sha256"] for d in ra.tensors} == {d.sha256 for d in rb.tensors}
    # a changed tensor changes it
    tensors["lora_unet_mid_attn1_to_q.alpha"] = np.array(8.0, dtype=np.float32)
    c = tmp_path / "c.safetensors"
    save_file(tensors, str(c))
    assert scan_model(c).signal("tensor_sha256") != ra.signal("tensor_sha256")


def test_part_hashes_find_a_lora_inside_a_bigger_file_even_renamed(tmp_path):
    lora = lora_tensors(seed=2)
    small = tmp_path / "lora.safetensors"
    save_file(lora, str(small))
    rng = np.random.default_rng(9)
    big = {f"base.{k.replace('lora_unet', 'unet')}": v for k, v in lora.items()}
    big |= {f"base.other_{i}": rng.standard_normal((16, 16), dtype=np.float32) for i in range(5)}
    merged = tmp_path / "merged.safetensors"
    save_file(big, str(merged))
    parts_small = {d.sha256 for d in scan_model(small).tensors}
    parts_big = {d.sha256 for d in scan_model(merged).tensors}
    # the alpha scalars of the three blocks are equal, so the small file has 7 unique parts
    assert parts_small <= parts_big and len(parts_big - parts_small) == 5


def test_streamed_hashing_in_odd_chunks_equals_the_file_pass(tmp_path):
    p = write_lora(tmp_path / "a.safetensors", {"x": 1}, seed=3)
    layout = _header(p).layout
    data = p.read_bytes()
    rng = np.random.default_rng(0)
    lh = LayoutHasher(layout)
    at = 0
    while at < len(data):
        step = int(rng.integers(1, 300))
        lh.update(data[at : at + step])
        at += step
    rep = hash_model_file(p, layout, chunk_bytes=4096)
    assert combine_digests(lh.result()) == rep.tensor_sha256
    only = hash_model_file(p, layout, file_sha256=False)
    assert only.file_sha256 is None and only.tensor_sha256 == rep.tensor_sha256
    assert only.bytes_hashed == layout.data_end - layout.data_start


def test_header_only_scan_of_a_huge_sparse_file(tmp_path):
    n = 3 * 1024**3 // 4  # 3 GiB of F32 "data" that is a hole in the file
    header = {"__metadata__": {"ss_output_name": "big"}, "w": {
        "dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}  # fmt: skip
    p = raw_safetensors(tmp_path / "big.safetensors", header)
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) + 4 * n)
    r = scan_model(p, hash_tensors=False, file_hash=False)
    assert r.error is None and r.tensor_count == 1 and r.tensor_bytes == 4 * n
    assert r.signals == [] and r.metadata["ss_output_name"] == "big"


# ------------------------------------------------------------------ hostile files
def _code(path, **kw):
    r = scan_model(path, **kw)
    assert r.decision == "review" and r.error is not None, r.to_dict()
    return r.error.code


def test_header_length_larger_than_the_file(tmp_path):
    p = raw_safetensors(tmp_path / "x.safetensors", {"a": 1}, length=10**9)
    assert _code(p) == "header_beyond_file"


def test_100_mb_header_is_refused_before_it_is_read(tmp_path):
    p = tmp_path / "x.safetensors"
    declared = 100 * 1024 * 1024
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", declared) + b"{")
        f.truncate(8 + declared + 16)  # sparse: the bytes exist but are never read
    assert _code(p) == "header_too_large"
    with pytest.raises(ModelFileError) as e, open(p, "rb") as f:
        read_header(f, os.path.getsize(p), ModelLimits(max_header_bytes=declared))
    assert e.value.code == "bad_header"  # within a raised cap it is read, and is not JSON


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (b"{not json", "bad_header"),
        (b"\xff\xfe{}", "bad_header"),
        (b"[1, 2]", "bad_header"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "json_too_deep"),
        (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "bad_tensor_entry"),
        (b'{"__metadata__": ' + b"[" * 40 + b"]" * 40 + b"}", "bad_header"),
        (b'{"__metadata__": {"k": 1}}', "bad_header"),
        (b'{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}', "bad_tensor_entry"),
        (b'{"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}', "bad_tensor_entry"),
        (b'{"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', "bad_tensor_entry"),
        (b'{"t": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}', "bad_tensor_entry"),
        (b'{"t": {"dtype": "F32", "shape": [1' + b"0" * 5000 + b'], "data_offsets": [0, 8]}}',
         "bad_header"),
        (b'{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
         b'"u": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}', "overlapping_tensors"),
    ],
)  # fmt: skip
def test_malformed_headers_are_structured_errors(tmp_path, header, code):
    p = raw_safetensors(tmp_path / "x.safetensors", header, data=bytes(16))
    assert _code(p) == code


def test_truncated_tensors(tmp_path):
    p = write_lora(tmp_path / "a.safetensors", {"x": 1})
    data = p.read_bytes()
    p.write_bytes(data[:-10])
    assert _code(p) == "truncated_tensors"
    assert _code(p, hash_tensors=False, file_hash=False) == "truncated_tensors"


def test_too_many_tensors(tmp_path):
    header = {f"t{i}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for i in range(50)}
    p = raw_safetensors(tmp_path / "x.safetensors", header)
    with open(p, "rb") as f, pytest.raises(ModelFileError) as e:
        read_header(f, os.path.getsize(p), ModelLimits(max_tensors=10))
    assert e.value.code == "too_many_tensors"
    assert scan_model(p).error is None  # within the default limit


def test_a_header_length_that_starts_like_a_pickle_is_still_safetensors(tmp_path):
    header = json.dumps({"__metadata__": {"k": "v" * 300}}).encode()
    header += b" " * (0x180 - len(header))  # length 384: first byte 0x80 (pickle PROTO)
    p = raw_safetensors(tmp_path / "x.safetensors", header)
    assert p.read_bytes()[0] == 0x80
    r = scan_model(p)
    assert r.format == "safetensors" and r.error is None


def test_short_and_unknown_files(tmp_path):
    (tmp_path / "short.safetensors").write_bytes(b"\x01\x00")
    assert _code(tmp_path / "short.safetensors") == "bad_header"
    (tmp_path / "text.bin").write_text("hello world, not a model")
    assert _code(tmp_path / "text.bin") == "unsupported_model"
    assert _code(tmp_path / "missing.safetensors") == "io_error"
    assert json.loads(json.dumps(scan_model(tmp_path / "missing.safetensors").to_dict()))
