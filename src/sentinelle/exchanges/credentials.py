"""Where an exchange's secret comes from: an environment variable or a file, never the database.

``sentinelle exchange add NAME --type ncmec --credentials-env NCMEC_CREDS`` stores
``{"env": "NCMEC_CREDS"}``; ``--credentials-file /etc/sentinelle/ncmec`` stores
``{"file": "/etc/sentinelle/ncmec"}``. The secret is read when a fetch or a
feedback job starts, so rotating it needs no database change, and it never
reaches the database, a job payload, a log line or an error message (errors
name the variable or file, not its content).

A credentials file readable by every user of the machine is refused (the
``chmod 600`` rule ssh applies to private keys).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from .api import AuthError, ExchangeError

MAX_SECRET_BYTES = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def make_ref(env: str | None = None, file: str | Path | None = None) -> dict[str, str] | None:
    """The JSON stored for ``--credentials-env`` / ``--credentials-file`` (one at most)."""
    if env and file:
        raise ExchangeError("give --credentials-env or --credentials-file, not both", "bad_config")
    if env:
        if not _ENV_NAME.fullmatch(env):
            raise ExchangeError(f"not an environment variable name: {env!r}", "bad_config")
        return {"env": env}
    if file:
        return {"file": str(Path(file).expanduser().resolve())}
    return None


def dump_ref(ref: dict[str, str] | None) -> str | None:
    return None if ref is None else json.dumps(ref, sort_keys=True)


def load_ref(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    ref = json.loads(text)
    return ref if isinstance(ref, dict) else None


def describe(ref: dict[str, str] | None) -> str:
    """Human text naming where the secret lives (safe to show and log)."""
    if not ref:
        return "none"
    if "env" in ref:
        return f"env:{ref['env']}"
    return f"file:{ref.get('file', '?')}"


def read_secret(ref: dict[str, str] | None, env: dict[str, str] | None = None) -> str | None:
    """The secret text, or None when the exchange has no credentials configured.

    Raises :class:`AuthError` naming the variable or file when it is missing,
    empty, unreadable, too large or readable by everyone.
    """
    if not ref:
        return None
    environ: Any = os.environ if env is None else env
    if "env" in ref:
        value = environ.get(ref["env"], "")
        if not value.strip():
            raise AuthError(f"credentials variable {ref['env']} is not set", "missing_credentials")
        return value.strip()
    path = Path(ref.get("file", ""))
    try:
        st = path.stat()
        if st.st_mode & stat.S_IROTH:
            raise AuthError(
                f"credentials file {path} is readable by everyone (chmod 600 it)",
                "unsafe_credentials",
            )
        if st.st_size > MAX_SECRET_BYTES:
            raise AuthError(f"credentials file {path} is too large", "bad_credentials")
        value = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise AuthError(
            f"cannot read credentials file {path} ({type(e).__name__})", "missing_credentials"
        ) from None
    except UnicodeDecodeError:
        raise AuthError(f"credentials file {path} is not UTF-8 text", "bad_credentials") from None
    if not value:
        raise AuthError(f"credentials file {path} is empty", "missing_credentials")
    return value
