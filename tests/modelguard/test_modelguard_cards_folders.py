"""Model cards, sidecars and diffusers folders."""

from __future__ import annotations

import json
from pathlib import Path

from modelguard_files import lora_tensors, write_lora
from safetensors.numpy import save_file

from sentinelle.modelguard import iter_model_paths, scan_model
from sentinelle.modelguard.card_reader import paragraphs, read_card, read_sidecars

CARD = """---
license: openrail
base_model: some-base-model
instance_prompt: rdfx fox
tags:
  - animal
  - "winter_scene"
widget:
  - text: a red fox in the snow
---
# Red fox style

A small style model trained on photos of foxes.

Use the trigger word in your prompt.
"""


def test_card_front_matter_and_body(tmp_path):
    p = tmp_path / "README.md"
    p.write_text(CARD)
    got = {(f.field, f.text, f.kind) for f in read_card(p)}
    assert ("README.md:instance_prompt", "rdfx fox", "trigger") in got
    assert ("README.md:tags", "winter scene", "tag") in got
    assert ("README.md:text", "a red fox in the snow", "prompt") in got
    assert ("README.md:base_model", "some-base-model", "name") in got
    assert ("README.md", "A small style model trained on photos of foxes.", "text") in got
    assert not any(f.field.endswith(":license") for f in read_card(p))


def test_sidecars_next_to_a_lora_are_judged(tmp_path):
    lora = write_lora(tmp_path / "fox.safetensors", {"red fox": 20})
    (tmp_path / "fox.json").write_text(json.dumps({"activation text": "rdfx", "notes": "fox"}))
    (tmp_path / "fox.civitai.info").write_text(
        json.dumps({"trainedWords": ["rdfx"], "model": {"name": "Fox", "tags": ["animal"]}})
    )
    fields = {(f.field, f.text, f.kind) for f in read_sidecars(lora)}
    assert ("fox.json:activation text", "rdfx", "trigger") in fields
    assert ("fox.civitai.info:trainedWords", "rdfx", "trigger") in fields
    assert scan_model(lora).decision == "allow"
    (tmp_path / "fox.civitai.info").write_text(json.dumps({"trainedWords": ["teen nsfw"]}))
    r = scan_model(lora)
    assert r.decision == "block"
    assert r.judgement.evidence[0].field == "fox.civitai.info:trainedWords"
    (tmp_path / "fox.civitai.info").write_text("{broken")  # ignored, not fatal
    assert scan_model(lora).decision == "allow"


def test_huge_card_is_cut_and_split(tmp_path):
    p = tmp_path / "README.md"
    p.write_text(("A fox runs. " * 400 + "\n\n") * 400)  # ~2 MB
    fields = read_card(p)
    assert sum(len(f.text) for f in fields) <= 1024 * 1024
    assert max(len(f.text) for f in fields) <= 2000
    assert paragraphs("one.\n\ntwo", 100) == ["one.", "two"]


def _diffusers(root: Path, added_tokens: dict | None = None) -> Path:
    root.mkdir()
    (root / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "safety_checker": [None, None]}))  # fmt: skip
    (root / "unet").mkdir()
    (root / "unet" / "config.json").write_text(json.dumps({"_name_or_path": "/runs/fox-style"}))
    save_file(lora_tensors(seed=5), str(root / "unet" / "diffusion_pytorch_model.safetensors"))
    (root / "tokenizer").mkdir()
    if added_tokens:
        (root / "tokenizer" / "added_tokens.json").write_text(json.dumps(added_tokens))
    return root


def test_diffusers_folder(tmp_path):
    root = _diffusers(tmp_path / "pipe", {"<rdfx>": 49408})
    r = scan_model(root)
    assert r.format == "diffusers" and r.error is None and r.decision == "allow"
    assert r.metadata["components"]["unet"] == "diffusers.UNet2DConditionModel"
    assert len(r.parts) == 1 and r.parts[0].format == "safetensors"
    assert r.tensor_count == 9 and all(t.name.startswith("unet/") for t in r.tensors)
    assert r.signal("tensor_sha256") != r.parts[0].signal("tensor_sha256")
    assert list(iter_model_paths([tmp_path])) == [root]
    flagged = _diffusers(tmp_path / "pipe2", {"teen nsfw": 49408})
    r = scan_model(flagged)
    assert r.decision == "block"
    assert r.judgement.evidence[0].field == "tokenizer/added_tokens.json"


def test_bad_folders(tmp_path):
    (tmp_path / "plain").mkdir()
    assert scan_model(tmp_path / "plain").error.code == "unsupported_model"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model_index.json").write_text("[" * 10_000)
    assert scan_model(bad).error.code == "json_too_deep"
    (bad / "model_index.json").write_text("[1]")
    assert scan_model(bad).error.code == "bad_folder"
    big = tmp_path / "big"
    big.mkdir()
    (big / "model_index.json").write_bytes(b" " * (2 * 1024 * 1024))
    assert scan_model(big).error.code == "bad_folder"
