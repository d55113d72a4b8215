"""`sentinelle backfill`: hash and match stored media (or a table of hashes) on Apache Spark.

Needs the ``spark`` extra (``pip install 'sentinelle[spark]'``) and a Java runtime.
Banks are read from ``$SENTINELLE_DATABASE_URL`` on the driver and broadcast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..media.limits import DEFAULT_LIMITS, Limits
from ._common import err_console, handle_errors, print_json


def _conf_pairs(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        k, sep, val = v.partition("=")
        if not sep or not k.strip():
            raise typer.BadParameter(f"--conf wants KEY=VALUE, got {v!r}")
        out[k.strip()] = val
    return out


def register(app: typer.Typer) -> None:
    @app.command("backfill")
    def backfill_cmd(
        input: Annotated[
            str,
            typer.Argument(
                help="Folder of media (local path or URI such as s3a://bucket/media/), "
                "or with --table / --hashes a Parquet table."
            ),
        ],
        output: Annotated[
            str, typer.Option("--output", "-o", help="Output folder (Parquet parts).")
        ],
        master: Annotated[
            str | None,
            typer.Option(
                "--master",
                help="Spark master: local[*], local[4], spark://host:7077... "
                "(default: local[*], or what spark-submit set).",
            ),
        ] = None,
        bank: Annotated[
            list[str] | None,
            typer.Option("--bank", help="Bank to match (repeatable; default: all enabled)."),
        ] = None,
        table: Annotated[
            bool,
            typer.Option("--table", help="INPUT is a Parquet table of paths/URIs (--path-column)."),
        ] = False,
        hashes: Annotated[
            bool,
            typer.Option(
                "--hashes",
                help="INPUT is a Parquet table of precomputed hashes (columns pdq, md5, ...).",
            ),
        ] = False,
        path_column: Annotated[
            str, typer.Option("--path-column", help="Column of paths/URIs (--table).")
        ] = "path",
        rows_per_partition: Annotated[
            int,
            typer.Option(
                "--rows-per-partition",
                min=1,
                help="Rows per output part (also the unit a rerun skips or redoes).",
            ),
        ] = 1000,
        exact: Annotated[
            bool, typer.Option("--exact", help="Reference-exact PDQ path only (slower).")
        ] = False,
        dihedral: Annotated[
            bool, typer.Option("--dihedral", help="Also match rotated and mirrored copies.")
        ] = False,
        trim: Annotated[
            bool, typer.Option("--trim/--no-trim", help="Also match with borders trimmed.")
        ] = True,
        max_file_mb: Annotated[
            float, typer.Option(help="Largest file to read, MiB.")
        ] = DEFAULT_LIMITS.max_file_bytes / 2**20,
        decode_timeout: Annotated[
            float, typer.Option(help="Seconds allowed to decode one file.")
        ] = DEFAULT_LIMITS.decode_timeout_s,
        intake: Annotated[
            bool,
            typer.Option(
                "--intake",
                help="Send every match into the review intake as a hash_match signal.",
            ),
        ] = False,
        intake_database_url: Annotated[
            str | None,
            typer.Option(
                "--intake-database-url",
                help="Service database for --intake (default: $SENTINELLE_DATABASE_URL).",
            ),
        ] = None,
        account: Annotated[
            str, typer.Option("--account", help="Account id of the intake cases.")
        ] = "backfill",
        account_column: Annotated[
            str | None,
            typer.Option("--account-column", help="Table column holding each row's account id."),
        ] = None,
        conf: Annotated[
            list[str] | None,
            typer.Option("--conf", help="Extra Spark setting KEY=VALUE (repeatable)."),
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    ) -> None:
        """Hash and match stored media on Spark; Parquet output, resumable after a failure.

        A rerun with the same arguments skips the finished parts and ends with the
        same output an uninterrupted run writes. See docs/SPARK.md.
        """
        try:
            import pyspark  # noqa: F401
        except ImportError:
            err_console().print(
                "[red]error \\[missing_extra][/]: sentinelle backfill needs PySpark: "
                "pip install 'sentinelle[spark]'"
            )
            raise typer.Exit(1) from None
        from ..banks import BankStore
        from ..errors import BankError
        from ..spark.backfill import run_backfill
        from ..spark.media import MediaOptions
        from ..spark.session import make_session
        from ..spark.snapshot import BankSnapshot
        from ..store.db import open_engine

        console = err_console()
        options = MediaOptions(
            exact=exact,
            dihedral=dihedral,
            trimmed=trim,
            limits=Limits(max_file_bytes=int(max_file_mb * 2**20), decode_timeout_s=decode_timeout),
        )
        extra = _conf_pairs(conf)
        with handle_errors():
            store = BankStore(open_engine())
            known = {b.name for b in store.list_banks()}
            missing = [b for b in bank or [] if b not in known]
            if missing:
                raise BankError(f"unknown bank(s): {', '.join(missing)}", "unknown_bank")
            snapshot = BankSnapshot.from_store(store, banks=bank or None)
            if not quiet:
                console.print(f"banks: {len(snapshot)} entries (version {snapshot.version})")
            if master is None and "spark.master" not in extra:
                master = None if _submitted() else "local[*]"
            spark = make_session(master, "sentinelle-backfill", extra)
            try:
                summary = run_backfill(
                    spark,
                    input if "://" in input or not Path(input).exists() else str(Path(input)),
                    output,
                    snapshot,
                    options=options,
                    table=table,
                    hashes=hashes,
                    path_col=path_column,
                    rows_per_partition=rows_per_partition,
                    intake_url=(intake_database_url or _default_db()) if intake else None,
                    account=account,
                    account_col=account_column,
                    on_listed=None
                    if quiet
                    else lambda n, p, d: console.print(
                        f"{n} rows in {p} parts; {d} already done, {p - d} to do"
                    ),
                )
            finally:
                spark.stop()
        print_json(summary.to_dict())


def _submitted() -> bool:
    """True under spark-submit (it sets the master in the environment)."""
    import os

    return "PYSPARK_GATEWAY_PORT" in os.environ or "SPARK_MASTER" in os.environ


def _default_db() -> str | None:
    import os

    return os.environ.get("SENTINELLE_DATABASE_URL") or None
