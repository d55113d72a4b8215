"""Triage outputs for an existing case, without re-running the triage.

* ``sentinelle triage-export --case NAME [--html F] [--vics F] [--no-reveal]`` writes the
  self-contained HTML report and/or the VICS 2.0 JSON case export of a case that
  ``sentinelle triage`` built (``sentinelle triage SOURCE... --html/--vics`` does the
  same at the end of a run).
* ``sentinelle triage-import-vics --case NAME FILE`` reads a VICS case file (for
  instance one categorised in another Project VIC-compatible tool) back into the case:
  series names are kept verbatim, categories become imported review decisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ._common import db_engine, fail, print_json


def register(app: typer.Typer) -> None:
    @app.command("triage-export")
    def triage_export(
        case: Annotated[str, typer.Option("--case", help="Case name.")],
        html: Annotated[
            Path | None, typer.Option("--html", help="Write the self-contained HTML report.")
        ] = None,
        vics: Annotated[
            Path | None, typer.Option("--vics", help="Write the VICS 2.0 JSON case export.")
        ] = None,
        profile: Annotated[
            str, typer.Option(help="VICS profile in @odata.context (CUSTOM, US, UK, Default).")
        ] = "CUSTOM",
        reveal: Annotated[
            bool,
            typer.Option(
                "--reveal/--no-reveal",
                help="Embed sharp thumbnails a reader can reveal one at a time (--no-reveal: "
                "blurred only, for a report to share).",
            ),
        ] = True,
        max_thumbnails: Annotated[
            int, typer.Option(min=0, help="Thumbnails for at most this many groups.")
        ] = 2000,
    ) -> None:
        """Write the HTML report and/or VICS export of a triage case."""
        from ..errors import SentinelleError
        from ..triage import report_html, vics_case

        if html is None and vics is None:
            raise typer.BadParameter("give --html and/or --vics")
        out = Console(stderr=True)
        try:
            engine = db_engine()
            if html is not None:
                report_html.write_report(
                    engine, case, html, revealable=reveal, max_thumbnails=max_thumbnails
                )
                out.print(f"HTML report: {escape(str(html))}")
            if vics is not None:
                n = vics_case.export_case(engine, case, vics, profile=profile)
                out.print(f"VICS export: {escape(str(vics))} ({n} media)")
        except SentinelleError as e:
            raise fail(e) from e

    @app.command("triage-import-vics")
    def triage_import_vics(
        file: Annotated[Path, typer.Argument(help="VICS 1.3/2.0 JSON case or hash-set file.")],
        case: Annotated[str, typer.Option("--case", help="Case to import into (must exist).")],
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    ) -> None:
        """Import a VICS case back into a triage case (series names kept, categories)."""
        from ..errors import BankImportError, SentinelleError
        from ..triage import vics_case

        err = Console(stderr=True, highlight=False)
        try:
            rep = vics_case.import_case(db_engine(), case, file, actor="cli")
        except BankImportError as e:
            raise fail(e) from e
        except SentinelleError as e:
            raise fail(e) from e
        if as_json:
            print_json(rep.to_dict())
            return
        err.print(
            f"{rep.media} media in the file: {rep.matched} found in case {escape(case)}, "
            f"{rep.unmatched} not in it"
        )
        err.print(
            f"series named: {rep.series_named}, series created: {rep.series_created}, "
            f"groups categorised: {rep.categorized}"
        )
        for c in rep.conflicts[:20]:
            err.print(f"[yellow]conflict[/]: {escape(c)}")
