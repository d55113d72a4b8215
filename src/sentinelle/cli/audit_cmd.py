"""`sentinelle audit ...` (the hash-chained audit trail) and `sentinelle transparency export`.

``audit verify`` recomputes the whole chain and exits with status 1, listing every
problem, if any entry was changed, inserted or deleted. ``audit tail`` shows the
newest entries. ``transparency export`` writes the transparency-report metrics
(:mod:`sentinelle.reports.transparency`) as JSON or CSV. Opens ``$SENTINELLE_DATABASE_URL``
like every command; with ``$SENTINELLE_AUDIT_KEY`` set, verification also checks the
head's HMAC.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._common import db_engine, err_console, handle_errors, parse_when


def register(app: typer.Typer) -> None:
    audit = typer.Typer(
        name="audit",
        help="The append-only, hash-chained audit trail: verify it, read it.",
        no_args_is_help=True,
    )
    app.add_typer(audit, name="audit")

    @audit.command("verify")
    def verify(
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Recompute the chain; exit 1 and list problems on any change, insertion or deletion."""
        from ..audit import verify_chain

        with handle_errors():
            res = verify_chain(db_engine())
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "ok": res.ok,
                        "checked": res.checked,
                        "head_seq": res.head_seq,
                        "anchored": res.anchored,
                        "problems": res.problems,
                    },
                    indent=2,
                )
            )
        elif res.ok:
            anchor = " (head MAC checked)" if res.anchored else ""
            typer.echo(f"audit trail OK: {res.checked} entries verified{anchor}")
        else:
            typer.echo(f"audit trail DAMAGED: {len(res.problems)} problem(s)")
            for p in res.problems:
                typer.echo(f"  - {p}")
        if not res.ok:
            raise typer.Exit(1)

    @audit.command("tail")
    def tail(
        n: Annotated[int, typer.Option("-n", "--lines", min=1, max=10_000)] = 20,
        action: Annotated[
            str | None, typer.Option("--action", help="Action or prefix, e.g. auth or case.view.")
        ] = None,
        actor: Annotated[str | None, typer.Option("--actor", help="e.g. user:alice")] = None,
        target: Annotated[str | None, typer.Option("--target")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
    ) -> None:
        """Show the newest entries (newest last)."""
        from ..audit import list_events
        from ..audit.chain import iso_time

        with handle_errors():
            events = list(
                reversed(
                    list_events(db_engine(), limit=n, action=action, actor=actor, target=target)
                )
            )
        if as_json:
            for ev in events:
                typer.echo(json.dumps(ev.to_dict(), sort_keys=True))
            return
        t = Table("id", "time (UTC)", "actor", "action", "target", "details")
        for ev in events:
            t.add_row(
                str(ev.id),
                iso_time(ev.at)[:19],
                escape(ev.actor),
                escape(ev.action),
                escape(ev.target or ""),
                escape(json.dumps(ev.details, sort_keys=True)[:120]),
            )
        Console(highlight=False, width=180).print(t)

    _register_transparency(app)


def _register_transparency(app: typer.Typer) -> None:
    transparency = typer.Typer(
        name="transparency",
        help="Transparency-report metrics: counts, overturn rates, time to report.",
        no_args_is_help=True,
    )
    app.add_typer(transparency, name="transparency")

    @transparency.command("export")
    def export(
        fmt: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
        since: Annotated[
            str | None, typer.Option("--since", help="Start (ISO time, UTC if no offset).")
        ] = None,
        until: Annotated[str | None, typer.Option("--until", help="End, exclusive.")] = None,
        out: Annotated[
            Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
        ] = None,
    ) -> None:
        """Export the metrics (audited as export.metrics, actor cli)."""
        from ..reports.transparency import collect_metrics, to_csv

        if fmt not in ("json", "csv"):
            raise typer.BadParameter("--format must be json or csv")
        with handle_errors():
            m = collect_metrics(
                db_engine(), since=parse_when(since), until=parse_when(until), actor="cli"
            )
        text = to_csv(m) if fmt == "csv" else json.dumps(m, indent=2, sort_keys=True) + "\n"
        if out is None:
            typer.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            err_console().print(f"metrics written to {escape(str(out))}")
