"""``tensor_part_sha``: one tensor of a model (bytes, dtype and shape; not its name).

A known model is enrolled as one entry per tensor under one ``media_ref``; a scanned
file whose per-tensor hashes hit many of those entries contains that model's tensors (a
LoRA merged into or extracted from another file, a renamed copy). Name kept to 16
characters (the bank column's width). Computed by :mod:`sentinelle.modelguard.hashing`.
"""

from __future__ import annotations

from .model_hash import ModelHashType


class TensorPartSHAType(ModelHashType):
    name = "tensor_part_sha"
    description = "SHA-256 of one model tensor with its dtype and shape (exact; overlap)"
