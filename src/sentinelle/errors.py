"""Structured errors. Every failure a user can trigger maps to a stable ``code``."""

from __future__ import annotations

from dataclasses import dataclass


class SentinelleError(Exception):
    """Base class: carries a stable machine-readable ``code`` and a human message."""

    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def __reduce__(self):  # keep ``code`` (and other fields) across processes
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[SentinelleError], state: dict) -> SentinelleError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class MediaError(SentinelleError):
    """A media file could not be hashed (corrupt, too large, unsupported, timeout...).

    Codes: ``unsupported_type``, ``file_too_large``, ``too_many_pixels``,
    ``too_many_frames``, ``decode_timeout``, ``corrupt_media``, ``empty_file``,
    ``io_error``, ``no_frames``.
    """

    code = "media_error"


class InvalidHashError(SentinelleError):
    code = "invalid_hash"


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class BankImportError(SentinelleError):
    """An import was rejected as a whole; ``errors`` lists every bad line."""

    code = "import_rejected"

    def __init__(self, message: str, errors: list[LineError] | None = None) -> None:
        self.errors = list(errors or [])
        if self.errors:
            shown = "; ".join(str(e) for e in self.errors[:20])
            more = f" (+{len(self.errors) - 20} more)" if len(self.errors) > 20 else ""
            message = f"{message}: {shown}{more}"
        super().__init__(message)

    def to_dict(self) -> dict:  # type: ignore[override]
        d: dict = super().to_dict()
        d["errors"] = [{"line": e.line, "message": e.message} for e in self.errors]
        return d


class BankError(SentinelleError):
    """Bank-level problem: unknown bank, duplicate name, bad threshold..."""

    code = "bank_error"
