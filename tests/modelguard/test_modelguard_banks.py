"""Model signals in banks: enrolment, CSV export/import, exact and overlap matching."""

from __future__ import annotations

import io
import json

import numpy as np
from modelguard_files import lora_tensors, write_lora, write_ordered
from safetensors.numpy import save_file
from typer.testing import CliRunner

from sentinelle.banks import BankStore
from sentinelle.cli.main import app as cli_app
from sentinelle.formats import get_format
from sentinelle.index.matcher import Matcher
from sentinelle.modelguard import scan_model
from sentinelle.modelguard.matching import entries_for, match_model
from sentinelle.signals.signal_types import get_signal_type
from sentinelle.store.db import open_engine


def _known(tmp_path):
    lora = write_lora(tmp_path / "known.safetensors", {"red fox": 10}, seed=7)
    return lora, scan_model(lora)


def test_signal_types_are_registered():
    for name in ("file_sha256", "tensor_sha256", "tensor_part_sha"):
        st = get_signal_type(name)
        assert st.exact and st.hex_length == 64 and len(name) <= 16
        assert st.validate("AB" * 32) == "ab" * 32


def test_enrol_export_import_and_match(tmp_path, sqlite_url):
    lora, known = _known(tmp_path)
    store = BankStore(open_engine(sqlite_url))
    store.create_bank("models")
    entries = entries_for(known, "known-lora-1", category="test")
    assert {e.signal_type for e in entries} == {"file_sha256", "tensor_sha256", "tensor_part_sha"}
    store.add_entries("models", entries)
    # CSV export and re-import carry the new types
    buf = io.StringIO()
    store.export("models", "csv", buf)
    store.create_bank("copy")
    store.add_entries("copy", get_format("csv").parse(io.StringIO(buf.getvalue())))
    got = {(e.signal_type, e.hash) for e in store.iter_entries("copy")}
    assert got == {(e.signal_type, e.hash) for e in entries}
    matcher = Matcher(store, banks=["models"])
    # a re-saved copy: new metadata, reversed tensor order -> tensor_sha256 and all parts
    order = list(reversed(list(lora_tensors(seed=7).items())))
    copy = write_ordered(tmp_path / "copy.safetensors", order, {"k": "v"})
    ms = match_model(scan_model(copy), matcher, store)
    kinds = {(m.kind, m.signal) for m in ms}
    assert ("exact", "tensor_sha256") in kinds and ("exact", "file_sha256") not in kinds
    overlap = next(m for m in ms if m.kind == "overlap")
    assert overlap.media_ref == "known-lora-1" and overlap.parts_matched == overlap.parts_scanned
    # the same LoRA merged into a bigger file, tensors renamed: overlap only
    rng = np.random.default_rng(3)
    big = {f"x.{k}": v for k, v in lora_tensors(seed=7).items()}
    big |= {f"base.{i}": rng.standard_normal((8, 8), dtype=np.float32) for i in range(20)}
    merged = tmp_path / "merged.safetensors"
    save_file(big, str(merged))
    ms = match_model(scan_model(merged), matcher, store)
    assert [m.kind for m in ms] == ["overlap"]
    # 6 identifying LoRA tensors (the 4-byte alpha scalars are left out) of 26
    assert ms[0].parts_matched == 6 and ms[0].parts_scanned == 26
    assert ms[0].to_dict()["overlap"] == round(6 / 26, 4)
    # the exact file as enrolled
    ms = match_model(scan_model(lora), matcher, store)
    assert {m.signal for m in ms if m.kind == "exact"} == {"file_sha256", "tensor_sha256"}
    # an unrelated model of the same shape (same alpha scalars) matches nothing
    other = write_lora(tmp_path / "other.safetensors", {"x": 1}, seed=99)
    assert match_model(scan_model(other), matcher, store) == []


def test_cli_match(tmp_path, sqlite_url, monkeypatch):
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", sqlite_url)
    lora, known = _known(tmp_path)
    store = BankStore(open_engine(sqlite_url))
    store.create_bank("models")
    store.add_entries("models", entries_for(known, "known-lora-1"))
    r = CliRunner().invoke(cli_app, ["model", "scan", "--match", "--json", str(lora)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert {m["signal"] for m in d["matches"]} == {
        "file_sha256",
        "tensor_sha256",
        "tensor_part_sha",
    }
    r = CliRunner().invoke(cli_app, ["model", "scan", "--match", str(lora)])
    assert "match" in r.output and "known-lora-1" in r.output
    r = CliRunner().invoke(cli_app, ["model", "scan", "--bank", "nope", str(lora)])
    assert r.exit_code == 1 and "unknown_bank" in r.output
