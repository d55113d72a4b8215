"""Operator settings of the generation guard, read from the environment.

=========================================  ===========  =========================================
variable                                   default      meaning
=========================================  ===========  =========================================
``SENTINELLE_GUARD_LOG_PROMPTS``           false        keep the prompt text of blocked attempts
                                                        (off: only its keyed hash is stored)
``SENTINELLE_GUARD_HASH_KEY``              (generated)  secret (>= 32 characters) of the prompt
                                                        HMACs in the attempt log; unset: a
                                                        random key kept in the database (see
                                                        :mod:`sentinelle.guard.hashkey`)
``SENTINELLE_GUARD_ESCALATE_BLOCKS``       3            blocks that flag an account for review...
``SENTINELLE_GUARD_ESCALATE_WINDOW_S``     86400        ...within this many seconds (sliding)
``SENTINELLE_GUARD_MAX_PROMPT_CHARS``      10000        longer prompts are refused (422)
``SENTINELLE_GUARD_NSFW_MODEL``            auto         ``auto``: NudeNet's bundled ONNX model
                                                        (extra ``sentinelle[nsfw]``); ``off``; or
                                                        the path of a compatible ONNX file
``SENTINELLE_GUARD_NSFW_THRESHOLD``        0.45         detector score at which a region counts
                                                        as explicit
``SENTINELLE_GUARD_FACES``                 when_needed  OpenCV's Haar face detector (and the
                                                        age model behind it): ``when_needed``
                                                        runs them only when explicit content was
                                                        found or that check could not run (on a
                                                        clean image they cannot change the
                                                        decision); ``always``; ``off``.
                                                        ``true``/``false`` mean always/off
``SENTINELLE_GUARD_AGE_MODEL``             (none)       ONNX apparent-age estimator (see
                                                        :mod:`sentinelle.guard.faces`)
``SENTINELLE_GUARD_MINOR_AGE``             18           apparent ages below this are a minor
                                                        signal (raise it to absorb estimator
                                                        error)
``SENTINELLE_GUARD_IMAGE_ADULT``           review       what explicit adult imagery gets:
                                                        ``allow``, ``review`` or ``block``
``SENTINELLE_GUARD_ONNX_THREADS``          0            onnxruntime intra-op threads (0: its
                                                        default)
``SENTINELLE_GUARD_SEMANTIC``              false        the HTTP API also runs the prompt guard's
                                                        optional semantic layer
=========================================  ===========  =========================================

Bad values raise :class:`GuardConfigError` (code ``bad_guard_config``) naming the
variable, so a typo in a deployment fails loudly instead of weakening the guard.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import SentinelleError

DECISIONS = ("allow", "review", "block")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
#: Values of ``SENTINELLE_GUARD_FACES`` (:attr:`GuardConfig.faces`).
FACE_MODES = ("when_needed", "always", "off")
#: Shortest accepted ``SENTINELLE_GUARD_HASH_KEY`` (a secret, not a password).
MIN_HASH_KEY_BYTES = 32


class GuardConfigError(SentinelleError):
    """An invalid guard setting (code ``bad_guard_config``)."""

    code = "bad_guard_config"


class GuardInputError(SentinelleError):
    """Bad input to a guard: ``prompt_too_long``, ``bad_prompt_result``, ``empty_prompt``."""

    code = "bad_guard_input"


@dataclass(frozen=True)
class GuardConfig:
    """Every guard knob in one immutable value (see the module docstring)."""

    log_prompts: bool = False
    escalate_blocks: int = 3
    escalate_window_s: int = 86_400
    max_prompt_chars: int = 10_000
    nsfw_model: str = "auto"
    nsfw_threshold: float = 0.45
    faces: str = "when_needed"  # one of FACE_MODES; True/False are read as always/off
    age_model: str | None = None
    minor_age: float = 18.0
    image_adult: str = "review"
    onnx_threads: int = 0
    semantic: bool = False
    hash_key: bytes | None = field(default=None, repr=False)  # None: the database's key

    def __post_init__(self) -> None:
        if isinstance(self.faces, bool):  # the pre-mode boolean setting
            object.__setattr__(self, "faces", "always" if self.faces else "off")
        if self.faces not in FACE_MODES:
            raise GuardConfigError(f"SENTINELLE_GUARD_FACES must be one of {', '.join(FACE_MODES)}")
        if self.escalate_blocks < 1:
            raise GuardConfigError("SENTINELLE_GUARD_ESCALATE_BLOCKS must be >= 1")
        if self.escalate_window_s < 1:
            raise GuardConfigError("SENTINELLE_GUARD_ESCALATE_WINDOW_S must be >= 1")
        if self.max_prompt_chars < 1:
            raise GuardConfigError("SENTINELLE_GUARD_MAX_PROMPT_CHARS must be >= 1")
        if not 0.0 < self.nsfw_threshold <= 1.0:
            raise GuardConfigError("SENTINELLE_GUARD_NSFW_THRESHOLD must be in (0, 1]")
        if self.image_adult not in DECISIONS:
            raise GuardConfigError(
                f"SENTINELLE_GUARD_IMAGE_ADULT must be one of {', '.join(DECISIONS)}"
            )
        if not 0 < self.minor_age <= 30:
            raise GuardConfigError("SENTINELLE_GUARD_MINOR_AGE must be in (0, 30]")
        if self.onnx_threads < 0:
            raise GuardConfigError("SENTINELLE_GUARD_ONNX_THREADS must be >= 0")
        if self.hash_key is not None and len(self.hash_key) < MIN_HASH_KEY_BYTES:
            raise GuardConfigError(
                f"SENTINELLE_GUARD_HASH_KEY must be at least {MIN_HASH_KEY_BYTES} characters "
                "(e.g. the output of `openssl rand -base64 32`)"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GuardConfig:
        """The configuration described by ``env`` (default ``os.environ``)."""
        env = os.environ if env is None else env
        d = cls()
        return cls(
            log_prompts=_bool(env, "SENTINELLE_GUARD_LOG_PROMPTS", d.log_prompts),
            escalate_blocks=_int(env, "SENTINELLE_GUARD_ESCALATE_BLOCKS", d.escalate_blocks),
            escalate_window_s=_int(env, "SENTINELLE_GUARD_ESCALATE_WINDOW_S", d.escalate_window_s),
            max_prompt_chars=_int(env, "SENTINELLE_GUARD_MAX_PROMPT_CHARS", d.max_prompt_chars),
            nsfw_model=env.get("SENTINELLE_GUARD_NSFW_MODEL", "").strip() or d.nsfw_model,
            nsfw_threshold=_float(env, "SENTINELLE_GUARD_NSFW_THRESHOLD", d.nsfw_threshold),
            faces=_face_mode(env, "SENTINELLE_GUARD_FACES", d.faces),
            age_model=env.get("SENTINELLE_GUARD_AGE_MODEL", "").strip() or None,
            minor_age=_float(env, "SENTINELLE_GUARD_MINOR_AGE", d.minor_age),
            image_adult=env.get("SENTINELLE_GUARD_IMAGE_ADULT", "").strip().lower()
            or d.image_adult,
            onnx_threads=_int(env, "SENTINELLE_GUARD_ONNX_THREADS", d.onnx_threads),
            semantic=_bool(env, "SENTINELLE_GUARD_SEMANTIC", d.semantic),
            hash_key=env.get("SENTINELLE_GUARD_HASH_KEY", "").strip().encode("utf-8") or None,
        )


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    v = raw.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise GuardConfigError(f"{name} must be true or false, not {raw!r}")


def _face_mode(env: Mapping[str, str], name: str, default: str) -> str:
    """``when_needed`` | ``always`` | ``off``; the older true/false values (and their
    synonyms) still work and mean ``always``/``off``."""
    raw = env.get(name)
    if raw is None:
        return default
    v = raw.strip().lower().replace("-", "_")
    if not v:
        return default
    if v in FACE_MODES:
        return v
    if v in _TRUE:
        return "always"
    if v in _FALSE:
        return "off"
    raise GuardConfigError(
        f"{name} must be one of {', '.join(FACE_MODES)} (or true/false), not {raw!r}"
    )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise GuardConfigError(f"{name} must be an integer, not {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise GuardConfigError(f"{name} must be a number, not {raw!r}") from None
    if value != value:  # NaN
        raise GuardConfigError(f"{name} must be a number, not {raw!r}")
    return value
