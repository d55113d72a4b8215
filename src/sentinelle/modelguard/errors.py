"""Structured errors of the model guard.

Every hostile or broken model file ends in one :class:`ModelFileError` with a stable
``code`` (nothing is executed, nothing read past a limit):

=========================  ======================================================
code                       meaning
=========================  ======================================================
``unsupported_model``      not a safetensors / GGUF / pickle / diffusers model
``io_error``               the file could not be read
``header_too_large``       safetensors header over ``ModelLimits.max_header_bytes``
``header_beyond_file``     declared header length runs past the end of the file
``bad_header``             header is not UTF-8 JSON, or not the expected shape
``json_too_deep``          JSON nested deeper than ``ModelLimits.max_json_depth``
``bad_tensor_entry``       a tensor entry has a bad dtype / shape / offsets
``overlapping_tensors``    two tensors claim the same bytes
``truncated_tensors``      tensor data runs past the end of the file
``too_many_tensors``       more tensors than ``ModelLimits.max_tensors``
``pickle_too_large``       pickle stream over ``ModelLimits.max_pickle_bytes``
``pickle_too_many_ops``    more opcodes than ``ModelLimits.max_pickle_opcodes``
``bad_pickle``             the opcode stream is malformed
``bad_zip``                a torch zip checkpoint's directory is malformed or huge
``bad_gguf``               GGUF magic / version / value type is wrong
``gguf_absurd_count``      a GGUF count cannot fit in the file or passes a limit
``gguf_truncated``         GGUF metadata or tensor data runs past the end
``bad_folder``             a diffusers folder's ``model_index.json`` is unusable
=========================  ======================================================
"""

from __future__ import annotations

from typing import Any

from ..errors import MediaError


class ModelFileError(MediaError):
    """A model file could not be read safely. ``format`` is the format it claimed."""

    code = "model_file_error"

    def __init__(self, message: str, code: str, *, format: str | None = None) -> None:
        super().__init__(message, code)
        self.format = format

    def to_dict(self) -> dict[str, Any]:  # type: ignore[override]
        d: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.format:
            d["format"] = self.format
        return d
