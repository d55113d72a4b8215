"""The model guard: check generative model files without running them.

Model hubs, hosting providers and investigators get, for a safetensors / GGUF / pickle
checkpoint or a diffusers folder:

* a decision (``allow`` / ``review`` / ``block``) from the text the model carries about
  itself (training tags and their frequencies, dataset folder names, output names,
  trigger words, model cards) judged by the prompt guard, with the evidence;
* identifiers for hash banks: ``file_sha256``, ``tensor_sha256`` (stable when the
  metadata or the tensor order is rewritten) and per-tensor hashes (``tensor_part_sha``)
  to find a LoRA merged into or extracted from another file by overlap;
* a static pickle opcode scan (nothing is unpickled) reporting code-execution imports.

    from sentinelle.modelguard import scan_model
    result = scan_model("some_lora.safetensors")
    result.decision, result.signal("tensor_sha256")

See docs/MODEL_GUARD.md.
"""

from .errors import ModelFileError
from .fields import TextField
from .hashing import TensorDigest, combine_digests, hash_model_file
from .judge import Evidence, Judgement, JudgeThresholds, ModelJudge
from .limits import DEFAULT_LIMITS, ModelLimits
from .result import ModelScanResult
from .scan import iter_model_paths, scan_model, sniff_format

__all__ = [
    "DEFAULT_LIMITS",
    "Evidence",
    "JudgeThresholds",
    "Judgement",
    "ModelFileError",
    "ModelJudge",
    "ModelLimits",
    "ModelScanResult",
    "TensorDigest",
    "TextField",
    "combine_digests",
    "hash_model_file",
    "iter_model_paths",
    "scan_model",
    "sniff_format",
]
