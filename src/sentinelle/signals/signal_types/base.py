"""`SignalType`: everything Sentinelle knows about one kind of hash, in one class.

One subclass per signal type, one module per subclass (``md5.py``, ``pdq.py``, ...), as in
python-threatexchange's ``signal_type/``. The rest of the code never branches on a type's
name: it asks the registry (:mod:`sentinelle.signals.signal_types`) for the type and reads
these attributes -- hex length and validation, exact or distance matching, the default and
the largest allowed threshold, the index that serves it, and how the type is named in each
exchange format (HMA, ThreatExchange, VICS).

Why a hash is a ``str``: every format and API carries hashes as lowercase hex, and the
database stores them so; the indexes convert to bits (:mod:`sentinelle.signals.hashcodec`)
where they need to.
"""

from __future__ import annotations

import re
from typing import ClassVar

from ...errors import InvalidHashError

_HEX_RE = re.compile(r"^[0-9a-f]+$")


class SignalType:
    """One kind of hash. Subclasses set the class attributes; methods rarely change."""

    #: Sentinelle's name: bank entries' ``signal_type``, CSV columns, API fields.
    name: ClassVar[str]
    #: One line for ``sentinelle hash --help``, ``/c/signal_type`` and the docs.
    description: ClassVar[str]
    #: Length of the lowercase hex form.
    hex_length: ClassVar[int]
    #: True: compared by equality (threshold 0). False: Hamming distance <= threshold.
    exact: ClassVar[bool]
    #: Default per-bank threshold (largest matching distance; 0 for exact types).
    default_threshold: ClassVar[int]
    #: Which in-memory index serves the type in :class:`~sentinelle.index.matcher.Matcher`:
    #: ``"exact"`` (:class:`~sentinelle.index.exact.ExactIndex`), ``"pdq"`` (image
    #: :class:`~sentinelle.index.pdq_index.PDQIndex`), ``"vpdq"`` (video frame index).
    index: ClassVar[str]
    #: What the type is computed from: ``"file"`` (the bytes), ``"image"``, ``"video"``.
    computed_from: ClassVar[tuple[str, ...]]
    #: Names in HMA's API; the first is the one Sentinelle writes. Empty: not offered.
    hma_names: ClassVar[tuple[str, ...]] = ()
    #: Names in ThreatExchange hash lists; the first is written. Empty: not exchanged.
    threatexchange_names: ClassVar[tuple[str, ...]] = ()
    #: VICS 2.0 ``Media`` field holding the hash (``MD5``...), or None.
    vics_field: ClassVar[str | None] = None
    #: VICS ``AlternativeHashes`` ``HashName`` values read as this type (lowercase);
    #: when empty, the type is neither read from nor written to VICS.
    vics_names: ClassVar[tuple[str, ...]] = ()
    #: Whether ``sentinelle hash`` / ``/v1/hash`` compute it when no signal is named.
    default_for_hashing: ClassVar[bool] = True

    @property
    def max_threshold(self) -> int:
        """Largest threshold a bank may set: 0 for exact types, the bit count otherwise."""
        return 0 if self.exact else self.hex_length * 4

    def validate(self, value: str) -> str:
        """The normalized (stripped, lowercase) hex form of ``value``, else
        :class:`~sentinelle.errors.InvalidHashError`."""
        v = value.strip().lower()
        if len(v) != self.hex_length:
            raise InvalidHashError(
                f"{self.name} hash must be {self.hex_length} hex characters, got {len(v)}"
            )
        if not _HEX_RE.match(v):
            raise InvalidHashError(f"{self.name} hash is not hexadecimal")
        return v

    def distance(self, a: str, b: str) -> int:
        """Distance between two valid hashes: 0/1 for exact types, Hamming bits otherwise."""
        if self.exact:
            return 0 if a == b else 1
        return (int(a, 16) ^ int(b, 16)).bit_count()

    def matches(self, distance: int, threshold: int) -> bool:
        """Whether a hash at ``distance`` matches under a bank's ``threshold``."""
        return distance == 0 if self.exact else distance <= threshold

    def __repr__(self) -> str:
        return f"<SignalType {self.name}>"


class CryptoSignalType(SignalType):
    """A cryptographic digest of the file's bytes (``hashlib`` algorithm ``name``)."""

    exact = True
    default_threshold = 0
    index = "exact"
    computed_from = ("file",)
