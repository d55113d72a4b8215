"""`sentinelle demo`: the end-to-end job `make run` runs, on benign rendered images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        out: Annotated[
            Path, typer.Option("--out", help="Folder for the demo files and outputs.")
        ] = Path("demo-output"),
        workers: Annotated[int | None, typer.Option("--workers", min=1)] = None,
    ) -> None:
        """Render benign scenes, bank half of them, scan altered copies, write the report."""
        from ..banks import BankStore
        from ..errors import BankError
        from ..formats.enroll import entries_from_paths
        from ..store.db import database_url, open_engine
        from .demo_media import DEMO_BANK, build_demo
        from .scan_cmd import _print_summary, run_scan

        console = Console(stderr=True)
        url = database_url()
        console.print(f"[bold]Sentinelle demo[/] · database: {escape(str(url))}")
        originals, inbox = build_demo(out)
        store = BankStore(open_engine(url))
        try:
            store.get_bank(DEMO_BANK)
        except BankError:
            store.create_bank(DEMO_BANK, description="Demo bank of rendered benign scenes")
        entries, failed = entries_from_paths(
            sorted(originals.iterdir()), augment=True, category="demo", source_org="sentinelle-demo"
        )
        for path, err in failed:
            console.print(
                f"[yellow]could not enroll {escape(str(path))}: {err.code}: {escape(err.message)}"
            )
        report = store.add_entries(DEMO_BANK, entries)
        console.print(
            f"bank [bold]{DEMO_BANK}[/]: {report.added} entries added, "
            f"{report.duplicates} already present (from {len(list(originals.iterdir()))} images)"
        )
        jsonl, html = out / "scan.jsonl", out / "report.html"
        summary = run_scan(
            [inbox],
            jsonl,
            html=html,
            banks=[DEMO_BANK],
            dihedral=True,
            workers=workers,
            rescan=True,
            console=console,
        )
        _print_summary(console, summary, jsonl, html)
        console.print(f"Open the triage report: [bold]{escape(str(html.resolve()))}[/]")
