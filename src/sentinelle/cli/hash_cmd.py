"""`sentinelle hash`: print the reference-exact hashes of files, one JSON object per line.

::

    $ sentinelle hash photo.jpg clips/ --signal pdq --signal md5
    {"path": "photo.jpg", "signals": [{"type": "pdq", "hash": "f8f8...", "quality": 100},
     {"type": "md5", "hash": "d35c..."}], "error": null, ...}

Directories are walked recursively (sorted, symlinked directories not followed).
A file that cannot be hashed still gets a line, with ``"error": {"code", "message"}``;
the exit code is 0 unless the command line itself is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ..signals.types import SIGNAL_TYPES


def iter_paths(paths: list[Path]) -> Iterator[Path]:
    """Files named in ``paths``, directories expanded recursively in sorted order.

    Paths that do not exist are yielded as given (hashing reports the error).
    """
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    yield Path(root) / name
        else:
            yield p


def hash_record(path: Path, signals: tuple[str, ...]) -> dict:
    """The JSON record for one file (always reference-exact)."""
    from ..signals.hasher import hash_file

    return hash_file(path, signals=signals, exact=True).to_dict()


def register(app: typer.Typer) -> None:
    """Add the ``hash`` command to ``app``."""

    @app.command("hash")
    def hash_command(
        paths: Annotated[
            list[Path], typer.Argument(help="Files or directories (recursed) to hash.")
        ],
        signal: Annotated[
            list[str] | None,
            typer.Option(
                "--signal",
                "-s",
                help=(
                    "Signal to compute; repeat for several: "
                    f"{', '.join(SIGNAL_TYPES)}. Default: md5, sha1, sha256, pdq, vpdq."
                ),
            ),
        ] = None,
    ) -> None:
        """Hash media files: MD5/SHA-1/SHA-256, PDQ for images, vPDQ for videos.

        Prints one JSON object per file: {"path", "signals", "error", ...}.
        PDQ/vPDQ are reference-exact (identical to python-threatexchange / vpdq).
        """
        from ..signals.hasher import DEFAULT_SIGNALS

        chosen = tuple(dict.fromkeys(signal)) if signal else DEFAULT_SIGNALS
        bad = [s for s in chosen if s not in SIGNAL_TYPES]
        if bad:
            raise typer.BadParameter(
                f"unknown signal {', '.join(bad)}; choose from {', '.join(SIGNAL_TYPES)}",
                param_hint="--signal",
            )
        for path in iter_paths(paths):
            record = hash_record(path, chosen)
            typer.echo(json.dumps(record))
