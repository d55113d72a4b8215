"""`ModelScanResult`: what scanning one model file or folder found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..signals.types import HashSignal
from .errors import ModelFileError
from .hashing import TensorDigest
from .judge import Judgement
from .pickle_reader import PickleScan


@dataclass
class ModelScanResult:
    """One model. ``decision`` is ``allow`` / ``review`` / ``block``; a file that could
    not be read safely is ``review`` with ``error`` set (a broken or hostile model file
    is not waved through)."""

    path: str | None
    format: str | None = None  # safetensors / gguf / pickle / diffusers
    size: int | None = None
    decision: str = "allow"
    judgement: Judgement | None = None
    signals: list[HashSignal] = field(default_factory=list)  # file_sha256, tensor_sha256
    tensors: tuple[TensorDigest, ...] = ()
    tensor_count: int = 0
    tensor_bytes: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)  # summary of what the file says
    pickle: PickleScan | None = None
    parts: list[ModelScanResult] = field(default_factory=list)  # diffusers components
    notes: list[str] = field(default_factory=list)
    matches: list[Any] = field(default_factory=list)  # ModelMatch, when matched against banks
    error: ModelFileError | None = None

    def signal(self, type_: str) -> str | None:
        return next((s.hash for s in self.signals if s.type == type_), None)

    def to_dict(self, *, tensors: bool = True) -> dict[str, Any]:
        j = self.judgement
        return {
            "path": self.path,
            "format": self.format,
            "size": self.size,
            "decision": self.decision,
            "reasons": list(j.reasons) if j else [],
            "evidence": [e.to_dict() for e in j.evidence] if j else [],
            "stats": dict(j.stats) if j else {},
            "signals": [s.to_dict() for s in self.signals],
            "tensor_count": self.tensor_count,
            "tensor_bytes": self.tensor_bytes,
            "tensors": [t.to_dict() for t in self.tensors] if tensors else None,
            "metadata": dict(self.metadata),
            "pickle": self.pickle.to_dict() if self.pickle else None,
            "parts": [p.to_dict(tensors=tensors) for p in self.parts],
            "notes": list(self.notes),
            "matches": [m.to_dict() for m in self.matches],
            "error": self.error.to_dict() if self.error else None,
        }
