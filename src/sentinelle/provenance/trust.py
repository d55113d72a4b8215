"""C2PA trust anchors: the PEM list of root certificates the operator trusts.

Sentinelle ships no trust list and fetches none. An operator who wants "trusted signer"
to mean something supplies a PEM bundle (for example the C2PA conformance trust list,
or their own generation service's root) with ``--trust-anchors FILE`` or the
``SENTINELLE_C2PA_TRUST_ANCHORS`` environment variable (a path). Without one every signer
is reported as untrusted and signed claims count as *moderate*, not *strong*, evidence.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .errors import ProvenanceError

ENV_VAR = "SENTINELLE_C2PA_TRUST_ANCHORS"
MAX_BUNDLE_BYTES = 16 * 1024 * 1024


def parse_trust_anchors(pem: str | bytes) -> str:
    """Validate a PEM bundle (at least one X.509 certificate) and return it as text.

    Raises :class:`ProvenanceError` (``bad_trust_anchors``) on anything else.
    """
    from cryptography import x509

    raw = pem.encode() if isinstance(pem, str) else pem
    if len(raw) > MAX_BUNDLE_BYTES:
        raise ProvenanceError("trust anchor bundle is too large", "bad_trust_anchors")
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError as e:
        raise ProvenanceError(
            f"trust anchors are not a PEM certificate list: {e}", "bad_trust_anchors"
        ) from None
    if not certs:
        raise ProvenanceError("trust anchor bundle holds no certificate", "bad_trust_anchors")
    return raw.decode("ascii", errors="replace")


def load_trust_anchors(path: str | Path) -> str:
    """Read and validate a PEM bundle file."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ProvenanceError(
            f"cannot read trust anchors {path}: {e.strerror}", "bad_trust_anchors"
        ) from None
    return parse_trust_anchors(data)


def trust_anchors_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The bundle named by ``SENTINELLE_C2PA_TRUST_ANCHORS``, or None when unset."""
    env = os.environ if env is None else env
    path = (env.get(ENV_VAR) or "").strip()
    return load_trust_anchors(path) if path else None
