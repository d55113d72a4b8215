"""`sentinelle triage SOURCE... --case NAME`: investigator triage of seized media.

Hashes every file once (folders, ZIP/TAR archives read in memory, single files),
groups exact and near duplicates, matches them against the banks, links new material
into series and orders everything by an explained priority. Results live in the
case's database; a rerun resumes (files already hashed are skipped).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

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

from ._common import fail


def _weights(pairs: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in pairs or []:
        name, sep, value = p.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(f"--weight wants name=number, got {p!r}") from None
    return out


def register(app: typer.Typer) -> None:
    @app.command("triage")
    def triage_cmd(
        sources: Annotated[
            list[Path], typer.Argument(help="Folders, ZIP/TAR archives or files (recursive).")
        ],
        case: Annotated[str, typer.Option("--case", help="Case name (created or resumed).")],
        csv_out: Annotated[
            Path | None, typer.Option("--csv", help="Write one CSV row per copy here.")
        ] = None,
        html: Annotated[
            Path | None, typer.Option("--html", help="Write the self-contained HTML report.")
        ] = None,
        vics: Annotated[
            Path | None, typer.Option("--vics", help="Write the VICS 2.0 JSON case export.")
        ] = None,
        bank: Annotated[
            list[str] | None,
            typer.Option("--bank", help="Bank to match (repeatable; default: all enabled)."),
        ] = None,
        workers: Annotated[
            int | None, typer.Option("--workers", min=1, help="Worker processes (default: cores).")
        ] = None,
        weight: Annotated[
            list[str] | None,
            typer.Option("--weight", help="Priority weight override name=value (repeatable)."),
        ] = None,
        near_threshold: Annotated[
            int, typer.Option(min=0, max=47, help="PDQ bits for near-duplicate groups.")
        ] = 31,
        scene: Annotated[
            str,
            typer.Option(
                help="Same-scene cue: orb (ORB key votes propose, RANSAC decides), orb-all "
                "(every pair), clip+orb (CLIP proposes), clip, or none."
            ),
        ] = "orb",
        faces: Annotated[
            bool, typer.Option("--faces", help="Run the face cue (slow; needs the faces extra).")
        ] = False,
        provenance: Annotated[
            bool, typer.Option("--provenance/--no-provenance", help="Provenance verdicts.")
        ] = True,
        rescan: Annotated[
            bool, typer.Option("--rescan", help="Hash everything again (no resume).")
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    ) -> None:
        """Triage seized media into a case: known vs new, series, explained priority."""
        from ..banks import BankStore
        from ..errors import BankError, SentinelleError
        from ..index.matcher import Matcher
        from ..store.db import open_engine
        from ..triage.hashing import HashOptions
        from ..triage.pipeline import count_disk_files
        from ..triage.priority import weights_from
        from ..triage.run import run_triage
        from ..triage.series import SeriesOptions

        console = Console(stderr=True)
        if scene not in ("orb", "orb-all", "clip+orb", "clip", "none"):
            raise typer.BadParameter("--scene is orb, orb-all, clip+orb, clip or none")
        try:
            w = weights_from(_weights(weight))
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
        n_workers = workers or max(1, os.cpu_count() or 1)
        try:
            engine = open_engine()
            store = BankStore(engine)
            known = {b.name for b in store.list_banks()}
            missing = [b for b in bank or [] if b not in known]
            if missing:
                raise BankError(f"unknown bank(s): {', '.join(missing)}", "unknown_bank")
            matcher = Matcher(store, banks=bank or None)
            total = count_disk_files(sources)
            progress = Progress(
                TextColumn("[bold]triage"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[files]} files · [yellow]{task.fields[errors]} errors"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                disable=quiet,
            )
            with progress:
                task = progress.add_task("triage", total=total, files=0, errors=0)
                summary = run_triage(
                    engine,
                    case,
                    sources,
                    workers=n_workers,
                    matcher=matcher,
                    hash_options=HashOptions(provenance=provenance),
                    series_options=SeriesOptions(scene=scene, threads=n_workers),
                    weights=w,
                    near_threshold=near_threshold,
                    rescan=rescan,
                    faces=faces,
                    on_file=lambda s: progress.update(task, files=s.files, errors=s.errors),
                    on_disk_file=lambda _p: progress.update(task, advance=1),
                )
            cid = summary.case.id
            written: list[tuple[str, Path]] = []
            if csv_out is not None:
                from ..triage.csv_out import write_csv

                write_csv(engine, cid, csv_out)
                written.append(("CSV", csv_out))
            if html is not None:
                from ..triage import report_html  # type: ignore[attr-defined]

                report_html.write_report(engine, case, html)
                written.append(("HTML report", html))
            if vics is not None:
                from ..triage import vics_case  # type: ignore[attr-defined]

                vics_case.export_case(engine, case, vics)
                written.append(("VICS export", vics))
        except SentinelleError as e:
            raise fail(e) from e
        except ImportError as e:
            console.print(f"[red]error[/] output_unavailable: {escape(str(e))}")
            raise typer.Exit(1) from e
        if quiet:
            return
        t = Table(title=f"Triage of case {escape(case)}", show_header=False)
        h = summary.hashing
        t.add_row("files (copies)", str(h.files))
        t.add_row("hashed now / skipped (done before)", f"{h.hashed} / {h.skipped}")
        t.add_row("[yellow]per-file errors", str(h.errors))
        for code, n in sorted(h.error_codes.items(), key=lambda kv: -kv[1]):
            t.add_row(f"  {escape(code)}", str(n))
        g = summary.grouping
        t.add_row("distinct contents", str(g.media))
        t.add_row("groups: known / new", f"{g.known} / {g.new}")
        for tier in ("camera_new", "unknown_new", "ai_new", "known"):
            t.add_row(f"  tier {tier}", str(summary.tiers.get(tier, 0)))
        t.add_row("series", f"{summary.series.series} ({summary.series.grouped} groups)")
        for cue, n in sorted(summary.series.per_cue.items()):
            t.add_row(f"  links by {escape(cue)}", str(n))
        sr = summary.series
        if sr.scene_groups:
            cut = " [yellow](stopped at the pair limit: not every pair seen)[/]"
            t.add_row(
                f"scene cue ({escape(scene)})",
                f"{sr.scene_groups} groups, {sr.scene_candidates} pairs verified"
                + (cut if sr.scene_truncated else ""),
            )
        t.add_row("faces", escape(summary.faces))
        t.add_row("weights", escape(", ".join(f"{k}={v:g}" for k, v in summary.weights.items())))
        for what, p in written:
            t.add_row(what, escape(str(p)))
        console.print(t)
