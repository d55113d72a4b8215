"""Bounds every reader of the model guard respects (time and memory stay bounded)."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class ModelLimits:
    """Caps on what a model file may make the readers do.

    The defaults fit every published model layout seen so far with a wide margin: the
    largest safetensors headers (kohya LoRAs with big tag lists, 2,000-tensor
    checkpoints) are a few MiB; torch ``data.pkl`` streams are a few MiB with well
    under a million opcodes; GGUF tokenizer arrays hold a few hundred thousand strings.
    """

    max_header_bytes: int = 16 * MiB  # safetensors JSON header
    max_json_depth: int = 32  # nesting of the header and of JSON inside metadata strings
    max_tensors: int = 200_000
    max_pickle_bytes: int = 64 * MiB  # one pickle stream (torch data.pkl)
    max_pickle_opcodes: int = 2_000_000
    max_pickle_strings: int = 5_000  # strings kept from a pickle for judging
    max_zip_directory_bytes: int = 64 * MiB  # central directory of a torch zip
    max_gguf_kv: int = 100_000
    max_gguf_metadata_bytes: int = 512 * MiB  # the whole GGUF key/value + tensor-info area
    max_gguf_array_items: int = 20_000_000  # items of all GGUF arrays together
    max_gguf_dims: int = 8
    max_text_bytes: int = 1 * MiB  # a model card, config.json, sidecar .json/.info
    max_text_fields: int = 5_000  # distinct tags judged per model (most frequent first)
    max_field_chars: int = 2_000  # one judged text (longer card paragraphs are split)
    max_folder_files: int = 512  # model files scanned in one folder


DEFAULT_LIMITS = ModelLimits()
