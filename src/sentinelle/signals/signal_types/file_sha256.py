"""SHA-256 of a model file's bytes (the model guard's ``file_sha256``).

The same digest as ``sha256`` over the same bytes, kept as its own type so that banks of
known generative models stay apart from media banks; it changes with any metadata edit
(``tensor_sha256`` does not). Computed by :mod:`sentinelle.modelguard.hashing`.
"""

from __future__ import annotations

from .model_hash import ModelHashType


class FileSHA256Type(ModelHashType):
    name = "file_sha256"
    description = "SHA-256 of a model file's bytes (exact match; model guard)"
