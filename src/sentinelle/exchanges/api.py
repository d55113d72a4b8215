"""The exchange interface: one class per counterpart, modelled on pytx's ``SignalExchangeAPI``.

An :class:`ExchangeAPI` knows one remote protocol. It turns the remote's pages
into :class:`ExchangeRecord` objects in the remote's own order, and (where the
remote accepts it) sends opinions back. It never touches the database: the
runner (:mod:`.runner`) applies each page and its checkpoint in one
transaction, so an implementation only has to be right about the wire format.

Contract, as pytx states it and HMA learned the hard way:

* :meth:`ExchangeAPI.fetch` yields :class:`FetchPage` objects **one at a time**
  (never a whole fetch in memory), strictly ordered (a create must not come after
  its own delete). Each page carries the checkpoint that is valid *once that page
  has been applied*. The iterator may be abandoned after any page; returning means
  "up to date".
* Checkpoints are small JSON objects. Whatever an API needs to resume exactly
  (NCMEC: the ``next`` link *with the window it belongs to*; StopNCII: the last
  ``nextSetTimestamp``) lives in it. ``None`` means "from the beginning".
* A page that cannot be parsed raises :class:`MalformedPage`; an HTTP failure
  that may pass raises :class:`TransientError` (the transport already retried
  429/5xx with back-off). The runner counts, quarantines and reports them; the
  checkpoint never moves past a page it did not apply.
* A record whose signal type Sentinelle does not bank has ``signal_type=None``:
  it is counted as unknown and skipped, never fatal.
* A record with ``deleted=True`` removes every signal previously seen under its
  key (a tombstone in the bank: a later file import does not bring it back).

Why records and not bank entries? A remote record (one NCMEC entry, one
StopNCII hash record) may carry several hashes and be updated or withdrawn as a
whole; keeping the record key lets updates and deletions be applied exactly, and
lets feedback name the remote's own ids.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NamedTuple

from ..errors import SentinelleError

#: How much a resume from a lost checkpoint re-reads before the known progress.
RESUME_OVERLAP_S = 3600
#: Review verdicts an exchange can be told about.
VERDICTS = ("confirm", "reject")


class ExchangeError(SentinelleError):
    """Configuration or protocol error of an exchange (shown on its status)."""

    code = "exchange_error"


class MalformedPage(ExchangeError):
    """The remote sent something that is not a valid page (bad XML/JSON, wrong
    content type, oversized, bad signature). ``body`` is kept for quarantine."""

    code = "malformed_page"

    def __init__(self, message: str, body: bytes = b"", code: str | None = None) -> None:
        super().__init__(message, code)
        self.body = body


class TransientError(ExchangeError):
    """Network trouble, 429 or 5xx after the transport's retries: try again later."""

    code = "exchange_unavailable"


class AuthError(ExchangeError):
    """Missing or refused credentials (401/403): not retried until reconfigured."""

    code = "exchange_auth"


class NotSupported(ExchangeError):
    code = "not_supported"


class Signal(NamedTuple):
    """One hash of a record. ``signal_type`` is Sentinelle's name (``pdq``, ``md5``,
    ``vpdq``...) or None when the remote type is not one we bank. (A named tuple:
    a million-entry fetch builds millions of them.)"""

    raw_type: str
    signal_type: str | None
    value: str


@dataclass(slots=True)
class ExchangeRecord:
    """One remote record, as the remote identifies it.

    ``key`` is stable across updates (NCMEC ``member-entry``; StopNCII
    ``signalType:hash``). ``owner`` is who contributed it (an NCMEC member, a
    TE app id), ``source`` the remote's display name. ``extra`` is small JSON the
    API needs again for feedback (ids), never media.
    """

    key: str
    signals: tuple[Signal, ...] = ()
    deleted: bool = False
    owner: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FetchPage:
    """Records of one remote page and the checkpoint valid after applying them."""

    records: list[ExchangeRecord]
    checkpoint: dict[str, Any]
    progress_at: float | None = None  # unix time the remote data is current to (lag)
    malformed_records: int = 0  # records inside an otherwise good page that were unusable
    #: The page is the remote's whole current list (a file feed): records of the
    #: exchange that are not on it are deleted.
    replace_all: bool = False
    #: More records of the same page, produced lazily in bounded lists (a snapshot
    #: of a large file is streamed: the store applies them one list at a time,
    #: inside the page's single transaction). An exception raised while producing
    #: them rolls the whole page back.
    chunks: Iterable[list[ExchangeRecord]] | None = None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """What the database remembers about a record, handed back for feedback."""

    key: str
    signal_type: str
    hash: str
    owner: str | None
    category: str | None
    tags: tuple[str, ...]


@dataclass
class ExchangeConfig:
    """Non-secret settings of an exchange (stored as JSON). Subclasses add fields."""

    base_url: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExchangeConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ExchangeError(f"unknown setting(s): {', '.join(unknown)}", "bad_config")
        try:
            return cls(**data)
        except TypeError as e:
            raise ExchangeError(f"bad settings: {e}", "bad_config") from None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class ExchangeAPI(ABC):
    """One remote hash-sharing protocol. Subclasses live one per module in this package.

    ``type_name`` is the stable name used by ``sentinelle exchange add --type``;
    ``environments`` maps names such as ``test`` / ``production`` to base URLs
    (``base_url`` in the config overrides them, e.g. for a local test server).
    """

    type_name: ClassVar[str]
    description: ClassVar[str] = ""
    config_cls: ClassVar[type[ExchangeConfig]] = ExchangeConfig
    environments: ClassVar[dict[str, str]] = {}
    #: Credential format accepted by :meth:`parse_credentials` (shown in ``--help``).
    credential_format: ClassVar[str] = ""
    supports_feedback: ClassVar[bool] = False
    supports_submit: ClassVar[bool] = False

    def __init__(self, config: ExchangeConfig, credentials: Any, http: Any) -> None:
        self.config = config
        self.credentials = credentials
        self.http = http

    @classmethod
    def parse_credentials(cls, secret: str) -> Any:
        """Turn the secret text (env var or file content) into what the client needs.
        Raise :class:`AuthError` (without echoing the secret) when malformed."""
        return secret.strip() or None

    @classmethod
    def base_url(cls, config: ExchangeConfig, environment: str = "test") -> str:
        if config.base_url:
            return config.base_url.rstrip("/")
        try:
            return cls.environments[environment].rstrip("/")
        except KeyError:
            raise ExchangeError(
                f"{cls.type_name}: unknown environment {environment!r}", "bad_config"
            ) from None

    @abstractmethod
    def fetch(self, checkpoint: dict[str, Any] | None) -> Iterator[FetchPage]:
        """Pages after ``checkpoint`` (None: from the start), oldest first."""

    def checkpoint_from_progress(self, progress_at: float) -> dict[str, Any] | None:
        """A checkpoint that resumes near ``progress_at`` (unix time the data was
        current to) when the stored one is lost; None: the API cannot (start over).
        Re-reading an overlap is harmless: applying a page is idempotent."""
        return None

    def send_feedback(self, record: StoredRecord, verdict: str) -> None:
        """Tell the remote a reviewer confirmed or rejected a match on ``record``."""
        raise NotSupported(f"{self.type_name} does not accept feedback")

    def submit(self, signals: Iterable[tuple[str, str]]) -> int:
        """Share our own ``(signal_type, hash)`` pairs; returns how many were sent."""
        raise NotSupported(f"{self.type_name} does not accept submissions")
