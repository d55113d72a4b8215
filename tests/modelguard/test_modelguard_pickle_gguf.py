"""Pickle checkpoints read statically, GGUF read within bounds: the normal and hostile cases."""

from __future__ import annotations

import os
import struct
import time
import zipfile

import pytest
from modelguard_files import (
    dangerous_pickle,
    gguf_prefix,
    gguf_string,
    pickle_state_dict,
    torch_zip,
    write_gguf,
)

from sentinelle.modelguard import ModelLimits, scan_model
from sentinelle.modelguard.gguf_reader import read_header
from sentinelle.modelguard.pickle_reader import classify_global, scan_pickle_file

NAMES = ["model.diffusion_model.input_blocks.0.weight", "model.diffusion_model.out.bias"]


def _err(path, **kw):
    r = scan_model(path, **kw)
    assert r.decision == "review" and r.error is not None, r.to_dict()
    return r.error.code


# ------------------------------------------------------------------ pickle
def test_torch_zip_checkpoint_is_read_without_unpickling(tmp_path):
    pkl = pickle_state_dict(NAMES, {"sd_checkpoint_name": "red fox style"})
    p = torch_zip(tmp_path / "model.ckpt", pkl)
    r = scan_model(p)
    assert r.format == "pickle" and r.error is None
    assert r.pickle.globals == {
        "collections.OrderedDict": "safe",
        "torch._utils._rebuild_tensor_v2": "safe",
    }
    assert r.pickle.risk == "none" and r.pickle.calls >= 3
    assert r.pickle.members == ["archive/data.pkl"]
    assert r.decision == "allow"
    assert r.signal("file_sha256") and r.signal("tensor_sha256") is None
    assert ("sd_checkpoint_name", "red fox style") in r.pickle.pairs


@pytest.mark.parametrize("protocol4", [False, True])
def test_code_execution_imports_are_blocked_and_never_run(tmp_path, protocol4, monkeypatch):
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    p = tmp_path / "evil.pt"
    p.write_bytes(dangerous_pickle(protocol4))
    r = scan_model(p)
    assert r.pickle.globals == {"os.system": "dangerous"}
    assert r.decision == "block" and not called
    assert any("code-execution" in reason for reason in r.judgement.reasons)
    z = torch_zip(tmp_path / "evil.ckpt", dangerous_pickle(protocol4))
    assert scan_model(z).decision == "block" and not called


def test_unknown_imports_are_review_and_dynamic_globals_are_flagged(tmp_path):
    p = tmp_path / "odd.bin"
    p.write_bytes(b"\x80\x02cmypackage.layers\nCustomBlock\n)R.")
    r = scan_model(p)
    assert r.pickle.risk == "unknown" and r.decision == "review"
    q = tmp_path / "dyn.bin"
    q.write_bytes(b"\x80\x04K\x01K\x02\x93.")  # STACK_GLOBAL over non-strings
    assert scan_model(q).pickle.globals == {"<dynamic>": "dynamic"}


def test_classify_global():
    assert classify_global("torch", "HalfStorage") == "safe"
    assert classify_global("builtins", "eval") == "dangerous"
    assert classify_global("subprocess.popen", "x") == "dangerous"
    assert classify_global("builtins", "dict") == "safe"
    assert classify_global("numpy", "load") == "unknown"


def test_pickle_bombs_are_bounded(tmp_path):
    flood = tmp_path / "flood.pkl"
    flood.write_bytes(b"\x80\x02" + b"N0" * 300_000 + b".")  # 600k opcodes, no objects
    limits = ModelLimits(max_pickle_opcodes=100_000)
    t = time.perf_counter()
    with pytest.raises(Exception) as e:
        scan_pickle_file(flood, limits)
    assert e.value.code == "pickle_too_many_ops" and time.perf_counter() - t < 30
    # a billion-laughs style memo stream is only opcodes to a static reader
    laughs = b"\x80\x02]q\x00" + b"(h\x00h\x00h\x00h\x00h\x00lq\x00" * 30 + b"."
    (tmp_path / "laughs.pkl").write_bytes(laughs)
    assert scan_pickle_file(tmp_path / "laughs.pkl").risk == "none"
    # a declared 2**62-byte string is refused, not allocated
    huge = tmp_path / "huge.pkl"
    huge.write_bytes(b"\x80\x04\x8d" + struct.pack("<Q", 2**62) + b"abc")
    assert _err(huge) == "bad_pickle"
    # garbage opcodes
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x02\xff\xfe\xfd")
    assert _err(tmp_path / "junk.pkl") == "bad_pickle"


def test_oversized_pickle_members_and_zip_directories(tmp_path):
    big = torch_zip(tmp_path / "big.ckpt", pickle_state_dict(NAMES * 2000))
    with pytest.raises(Exception) as e:
        scan_pickle_file(big, ModelLimits(max_pickle_bytes=10_000))
    assert e.value.code == "pickle_too_large"
    with pytest.raises(Exception) as e:
        scan_pickle_file(big, ModelLimits(max_zip_directory_bytes=10))
    assert e.value.code == "bad_zip"
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(big.read_bytes()[:200])
    assert _err(broken) == "bad_zip"
    nopkl = tmp_path / "nopkl.ckpt"
    with zipfile.ZipFile(nopkl, "w") as z:
        z.writestr("archive/readme", "x")
    assert _err(nopkl) == "bad_pickle"


def test_legacy_torch_file_stops_at_raw_storage_bytes(tmp_path):
    p = tmp_path / "legacy.bin"
    magic = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."  # a pickled int, as torch writes
    body = pickle_state_dict(NAMES)
    p.write_bytes(magic + b"\x80\x02K\x03." + body + b"\x80" + os.urandom(4096))
    r = scan_model(p)
    assert r.error is None and r.pickle.streams >= 3
    assert "torch._utils._rebuild_tensor_v2" in r.pickle.globals


# ------------------------------------------------------------------ GGUF
def test_gguf_metadata_and_tensors(tmp_path):
    p = write_gguf(tmp_path / "m.gguf", name="tiny fox", tags=["fox", "forest"])
    with open(p, "rb") as f:
        h = read_header(f, os.path.getsize(p))
    assert h.version == 3 and h.metadata["general.name"] == "tiny fox"
    assert h.array_counts["tokenizer.ggml.tokens"] == 500
    assert len(h.metadata["tokenizer.ggml.tokens"]) == 256  # kept, the rest counted
    assert [t.name for t in h.layout.tensors] == ["blk.0.attn_q.weight", "blk.0.attn_norm.weight"]
    assert [t.nbytes for t in h.layout.tensors] == [256, 16]
    r = scan_model(p)
    assert r.format == "gguf" and r.error is None and r.decision == "allow"
    assert r.tensor_count == 2 and r.signal("tensor_sha256")
    q = write_gguf(tmp_path / "renamed.gguf", name="another name", tags=["x"])
    assert scan_model(q).signal("tensor_sha256") == r.signal("tensor_sha256")
    assert scan_model(q).signal("file_sha256") != r.signal("file_sha256")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (gguf_prefix(0, 2**63), "gguf_absurd_count"),
        (gguf_prefix(2**40, 0), "gguf_absurd_count"),
        (gguf_prefix(0, 1) + gguf_string("k") + struct.pack("<I", 8) + struct.pack("<Q", 2**60),
         "gguf_absurd_count"),
        (gguf_prefix(0, 1) + gguf_string("k") + struct.pack("<IIQ", 9, 8, 2**62),
         "gguf_absurd_count"),
        (gguf_prefix(0, 1) + gguf_string("k") + struct.pack("<IIQ", 9, 0, 10**6) + b"\0" * 10,
         "gguf_absurd_count"),
        (gguf_prefix(0, 1) + gguf_string("k") + struct.pack("<I", 77), "bad_gguf"),
        (gguf_prefix(0, 1) + gguf_string("k") + struct.pack("<IIQ", 9, 9, 1)
         + struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 9, 1), "bad_gguf"),
        (gguf_prefix(0, 0, version=1), "bad_gguf"),
        (b"GGUF" + struct.pack(">I", 3) + bytes(16), "bad_gguf"),
        (gguf_prefix(1, 0) + gguf_string("t") + struct.pack("<I", 99) + bytes(20), "bad_gguf"),
        (gguf_prefix(1, 0) + gguf_string("t") + struct.pack("<IQIQ", 1, 1024, 0, 0) + bytes(40),
         "gguf_truncated"),
    ],
)  # fmt: skip
def test_hostile_gguf_is_a_structured_error(tmp_path, body, code):
    p = tmp_path / "x.gguf"
    p.write_bytes(body + bytes(64))
    t = time.perf_counter()
    assert _err(p) == code
    assert time.perf_counter() - t < 30


def test_gguf_array_item_budget(tmp_path):
    p = tmp_path / "many.gguf"
    p.write_bytes(
        gguf_prefix(0, 1) + gguf_string("k") + struct.pack("<IIQ", 9, 0, 5000) + bytes(5000)
    )
    with open(p, "rb") as f, pytest.raises(Exception) as e:
        read_header(f, os.path.getsize(p), ModelLimits(max_gguf_array_items=1000))
    assert e.value.code == "gguf_absurd_count"
    assert scan_model(p).error is None


def test_truncated_gguf_tensor_data(tmp_path):
    p = write_gguf(tmp_path / "m.gguf")
    data = p.read_bytes()
    p.write_bytes(data[:-20])
    assert _err(p) == "gguf_truncated"
    for cut in (6, 20, 40, 300):  # inside the counts, a key, a value, the token array
        p.write_bytes(data[:cut])
        assert _err(p) in ("gguf_truncated", "gguf_absurd_count")
