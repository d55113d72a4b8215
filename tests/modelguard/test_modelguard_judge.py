"""Judging a model's text: tag frequencies weighed, names and cards, evidence."""

from __future__ import annotations

import json

import pytest
from modelguard_files import write_lora

from sentinelle.modelguard import ModelJudge, TextField, scan_model
from sentinelle.modelguard.training_metadata import extract, folder_words


@pytest.fixture(scope="module")
def judge():
    return ModelJudge()


def tags(counts, images=None):
    return [TextField("ss_tag_frequency", t, "tag", n) for t, n in counts.items()], images


def test_benign_tag_lists_are_allowed(judge):
    for counts in (
        {"red fox": 40, "forest": 30, "snow": 12},
        {"child": 30, "birthday cake": 20, "smile": 30, "balloon": 8},
        {"woman": 40, "nude": 40, "studio lighting": 20},  # adult-only: not the guard's call
    ):
        j = judge.judge(*tags(counts, 40))
        assert j.decision == "allow", (counts, j.reasons)
    j = judge.judge(*tags({"woman": 40, "nude": 40}, 40))
    assert j.stats["adult_fields"] == 1 and j.evidence[0].role == "sexual"


def test_many_images_with_minor_and_sexual_tags_block(judge):
    j = judge.judge(*tags({"child": 45, "nude": 40, "smile": 20}, 50))
    assert j.decision == "block"
    assert j.stats["proven_overlap_images"] == 35
    roles = {e.text: (e.role, e.count) for e in j.evidence}
    assert roles["child"] == ("minor", 45) and roles["nude"] == ("sexual", 40)


def test_one_stray_tag_is_not_a_trained_model(judge):
    # one image out of 500 carries a tag the guard blocks by itself: review, not block
    j = judge.judge(*tags({"red fox": 500, "nude child": 1}, 500))
    assert j.decision == "review"
    j = judge.judge(*tags({"red fox": 500, "nude child": 60}, 500))
    assert j.decision == "block"
    assert any("60 of 500" in r for r in j.reasons)
    # minor and sexual tags both on a small share of the set: review; on a sliver: allow
    assert judge.judge(*tags({"kid": 30, "nsfw": 30, "park": 500}, 500)).decision == "review"
    assert judge.judge(*tags({"kid": 1, "nsfw": 1, "park": 500}, 500)).decision == "allow"


def test_deliberate_names_block_and_free_text_reviews(judge):
    for field, kind in (("ss_output_name", "name"), ("modelspec.trigger_phrase", "trigger"),
                        ("ss_dataset_dirs", "dataset")):  # fmt: skip
        j = judge.judge([TextField(field, "teen nsfw", kind)])
        assert j.decision == "block", field
        assert j.evidence[0].field == field and j.evidence[0].role == "minor_sexual"
    # a card that says what the model must not be used for quotes the terms: review only
    j = judge.judge(
        [TextField("README.md", "do not use to make sexual images of children", "text")]
    )
    assert j.decision == "review"
    # a minor term in one name and a sexual one in another make one model
    j = judge.judge([TextField("trigger", "kid", "trigger"), TextField("name", "nsfw", "name")])
    assert j.decision == "block" and "together" in j.reasons[-1]


def test_evasion_and_other_languages_go_through_the_prompt_guard(judge):
    assert judge.judge(*tags({"enfant": 40, "nu": 40}, 40)).decision == "block"
    assert judge.judge([TextField("ss_output_name", "t33n n$fw", "name")]).decision == "block"


def test_kohya_metadata_extraction():
    meta = {
        "ss_tag_frequency": json.dumps({"10_red fox": {"red_fox": 40, "snow": 3},
                                        "5_forest": {"red_fox": 2, "tree": 9}}),
        "ss_dataset_dirs": json.dumps({"10_red fox": {"n_repeats": 10, "img_count": 40},
                                       "5_forest": {"n_repeats": 5, "img_count": 9}}),
        "ss_datasets": json.dumps([{"tag_frequency": {"x": {"snow": 1}},
                                    "subsets": [{"image_dir": "/data/3_winter", "img_count": 3,
                                                 "class_tokens": "wntr"}]}]),
        "ss_output_name": "fox style",
        "modelspec.trigger_phrase": "rdfx, snowy",
        "modelspec.tags": "animal, winter",
        "prompt": json.dumps({"6": {"class_type": "CLIPTextEncode",
                                    "inputs": {"text": "a fox in snow", "clip": ["4", 1]}}}),
        "ss_learning_rate": "0.0001",
        "sshs_model_hash": "ab" * 32,
    }  # fmt: skip
    md = extract(meta)
    got = {(f.field, f.text, f.kind, f.count) for f in md.fields}
    assert ("ss_tag_frequency", "red fox", "tag", 42) in got
    assert ("ss_tag_frequency", "snow", "tag", 4) in got
    assert ("ss_dataset_dirs", "red fox", "dataset", 40) in got
    assert ("ss_datasets.image_dir", "winter", "dataset", 3) in got
    assert ("ss_datasets.class_tokens", "wntr", "trigger", None) in got
    assert ("ss_output_name", "fox style", "name", None) in got
    assert {("modelspec.trigger_phrase", t, "trigger", None) for t in ("rdfx", "snowy")} <= got
    assert ("modelspec.tags", "winter", "tag", None) in got
    assert ("prompt", "a fox in snow", "prompt", None) in got
    assert not any(f.field in ("ss_learning_rate", "sshs_model_hash") for f in md.fields)
    assert md.images == 52  # the folders' img_count: 40 + 9 + 3
    assert folder_words("/x/y/10_red fox") == "red fox"


def test_malformed_metadata_json_is_noted_not_fatal(tmp_path):
    meta = {"ss_tag_frequency": "{not json", "ss_dataset_dirs": "[" * 5000 + "]" * 5000,
            "ss_output_name": "fox"}  # fmt: skip
    p = write_lora(tmp_path / "m.safetensors", metadata=meta)
    r = scan_model(p)
    assert r.error is None and r.decision == "allow"
    assert len(r.notes) == 2


def test_scan_gives_field_tag_and_count(tmp_path):
    p = write_lora(tmp_path / "m.safetensors", {"child": 45, "nude": 40}, images=50)
    r = scan_model(p)
    d = r.to_dict()
    assert d["decision"] == "block"
    ev = {e["text"]: e for e in d["evidence"]}
    assert ev["child"]["field"] == "ss_tag_frequency" and ev["child"]["count"] == 45
    assert ev["child"]["context"] == "style"
