"""`sentinelle scan`: hash media, match against banks, write JSONL and an HTML report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..media.limits import DEFAULT_LIMITS, Limits
from .provenance_cmd import DetectorMetaOption, DetectorOption, load_detector

if TYPE_CHECKING:  # pragma: no cover
    from ..provenance.evidence import DetectorConfig


def run_scan(
    paths: list[Path],
    jsonl: Path,
    *,
    html: Path | None = None,
    banks: list[str] | None = None,
    dihedral: bool = False,
    exact: bool = False,
    trim: bool = True,
    workers: int | None = None,
    rescan: bool = False,
    thumbnails: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    database_url: str | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    provenance: bool = True,
    trust_anchors_pem: str | None = None,
    provenance_full: bool = False,
    detector: DetectorConfig | None = None,
):
    """Scan ``paths`` against ``banks``; used by the CLI and the demo."""
    from ..banks import BankStore
    from ..errors import BankError
    from ..index.matcher import Matcher
    from ..scan.records import read_records
    from ..scan.report import write_report
    from ..scan.runner import ScanOptions, scan
    from ..store.db import open_engine

    console = console or Console(stderr=True)
    store = BankStore(open_engine(database_url))
    known = {b.name for b in store.list_banks()}
    missing = [b for b in banks or [] if b not in known]
    if missing:
        raise BankError(f"unknown bank(s): {', '.join(missing)}", "unknown_bank")
    matcher = Matcher(store, banks=banks or None)
    options = ScanOptions(
        workers=workers or max(1, os.cpu_count() or 1),
        exact=exact,
        dihedral=dihedral,
        trimmed=trim,
        rescan=rescan,
        limits=limits,
        provenance=provenance,
        trust_anchors_pem=trust_anchors_pem,
        detector=detector,
        **({"provenance_sources": None} if provenance_full else {}),
    )
    progress = Progress(
        TextColumn("[bold]scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[matched]} matched[/] · [yellow]{task.fields[errors]} errors"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress,
        transient=False,
    )
    with progress:
        task = progress.add_task("scan", total=None, matched=0, errors=0)
        summary = scan(
            paths,
            jsonl,
            matcher,
            options,
            on_total=lambda n: progress.update(task, total=n),
            on_progress=lambda rec, s: progress.update(
                task, advance=1, matched=s.matched, errors=s.errors
            ),
        )
    if html is not None:
        write_report(read_records(jsonl), html, thumbnails=thumbnails, banks=banks)
    return summary


def _print_summary(console: Console, summary, jsonl: Path, html: Path | None) -> None:
    t = Table(title="Scan summary", show_header=False)
    t.add_row("files", str(summary.files))
    t.add_row("hashed now", str(summary.hashed))
    t.add_row("unchanged (skipped)", f"{summary.unchanged} ({summary.rematched} re-matched)")
    t.add_row("[red]matched", str(summary.matched))
    t.add_row("[yellow]errors", str(summary.errors))
    for bank, n in summary.per_bank.most_common():
        t.add_row(f"  bank {escape(bank)}", str(n))  # names and paths are data, not markup
    for code, n in summary.error_codes.most_common():
        t.add_row(f"  error {escape(code)}", str(n))
    t.add_row("records", escape(str(jsonl)))
    if html:
        t.add_row("report", escape(str(html)))
    console.print(t)


def register(app: typer.Typer) -> None:
    @app.command("scan")
    def scan_cmd(
        paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
        jsonl: Annotated[
            Path, typer.Option("--jsonl", help="JSON-lines output (one record per file).")
        ],
        html: Annotated[
            Path | None, typer.Option("--html", help="Write the HTML triage report here.")
        ] = None,
        bank: Annotated[
            list[str] | None,
            typer.Option("--bank", help="Bank to match (repeatable; default: all enabled)."),
        ] = None,
        dihedral: Annotated[
            bool, typer.Option("--dihedral", help="Also match rotated and mirrored copies.")
        ] = False,
        exact: Annotated[
            bool, typer.Option("--exact", help="Use the reference-exact PDQ path (slower).")
        ] = False,
        trim: Annotated[
            bool, typer.Option("--trim/--no-trim", help="Also match with borders/padding trimmed.")
        ] = True,
        workers: Annotated[
            int | None, typer.Option("--workers", min=1, help="Worker processes (default: cores).")
        ] = None,
        rescan: Annotated[
            bool,
            typer.Option(
                "--rescan", help="Ignore earlier results in --jsonl; hash everything again."
            ),
        ] = False,
        thumbnails: Annotated[
            bool,
            typer.Option(
                "--thumbnails",
                help="Embed blurred grayscale thumbnails in the report (revealed on click).",
            ),
        ] = False,
        max_file_mb: Annotated[
            float, typer.Option(help="Largest file to read, MiB.")
        ] = DEFAULT_LIMITS.max_file_bytes / 2**20,
        max_pixels: Annotated[
            int, typer.Option(help="Most pixels per image/frame (decompression bombs).")
        ] = DEFAULT_LIMITS.max_pixels,
        decode_timeout: Annotated[
            float, typer.Option(help="Seconds allowed to decode one file.")
        ] = DEFAULT_LIMITS.decode_timeout_s,
        max_frames: Annotated[
            int, typer.Option(help="Most video frames decoded per file.")
        ] = DEFAULT_LIMITS.max_frames,
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")
        ] = False,
        provenance: Annotated[
            bool,
            typer.Option(
                "--provenance/--no-provenance",
                help="Add a provenance verdict per file (AI-generated / camera-signed...).",
            ),
        ] = True,
        provenance_full: Annotated[
            bool,
            typer.Option(
                "--provenance-full",
                help="Also run the invisible-watermark decoder (about 2x the hashing time).",
            ),
        ] = False,
        trust_anchors: Annotated[
            Path | None,
            typer.Option(
                "--trust-anchors",
                help="PEM bundle of trusted C2PA roots for the provenance verdict "
                "(default: $SENTINELLE_C2PA_TRUST_ANCHORS).",
            ),
        ] = None,
        detector: DetectorOption = None,
        detector_meta: DetectorMetaOption = None,
    ) -> None:
        """Scan media against hash banks; write JSONL records and an HTML report.

        Resumable: running again with the same --jsonl skips files that are unchanged
        since they were scanned (and re-matches them if the banks changed).
        """
        from ..errors import SentinelleError

        console = Console(stderr=True)
        limits = Limits(
            max_file_bytes=int(max_file_mb * 2**20),
            max_pixels=max_pixels,
            decode_timeout_s=decode_timeout,
            max_frames=max_frames,
        )
        try:
            pem = config = None
            if provenance:
                config = load_detector(detector, detector_meta)
                from ..provenance.trust import load_trust_anchors, trust_anchors_from_env

                pem = load_trust_anchors(trust_anchors) if trust_anchors else None
                pem = pem or trust_anchors_from_env()
            summary = run_scan(
                paths,
                jsonl,
                html=html,
                banks=bank,
                dihedral=dihedral,
                exact=exact,
                trim=trim,
                workers=workers,
                rescan=rescan,
                thumbnails=thumbnails,
                limits=limits,
                console=console,
                show_progress=not quiet,
                provenance=provenance,
                trust_anchors_pem=pem,
                provenance_full=provenance_full,
                detector=config,
            )
        except SentinelleError as e:
            console.print(f"[red]error[/] {e.code}: {escape(e.message)}")
            raise typer.Exit(2) from e
        if not quiet:
            _print_summary(console, summary, jsonl, html)
