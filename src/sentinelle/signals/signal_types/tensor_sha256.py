"""``tensor_sha256``: a model's tensors, independent of its metadata and tensor order.

SHA-256 over the per-tensor hashes (``tensor_part_sha``) sorted by tensor name, with each
name and its dtype and shape in the framing (see :mod:`sentinelle.modelguard.hashing`):
a re-saved copy with rewritten metadata, padding or tensor order has the same value.
"""

from __future__ import annotations

from .model_hash import ModelHashType


class TensorSHA256Type(ModelHashType):
    name = "tensor_sha256"
    description = "SHA-256 of a model's tensors in name order, metadata ignored (exact match)"
