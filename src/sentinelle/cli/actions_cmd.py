"""`sentinelle actions ...`: per-bank actions, dead letters, alerts.

Configure what a match in a bank triggers (signed webhooks, the quarantine flag,
flood-guard limits), inspect and replay failed deliveries, and review flood-guard
alerts. Opens the database from ``$SENTINELLE_DATABASE_URL`` like every command;
errors print ``error [code]: message`` and exit with status 1.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._common import db_engine, err_console, handle_errors, print_json


def _audit_change(engine: Any, target: str, fields: list[str]) -> None:
    """Audit a configuration change: which settings changed (never their values,
    which may include a webhook secret)."""
    from ..audit import record_event

    record_event(
        engine, actor="cli", action="config.change", target=target, details={"fields": fields}
    )


def register(app: typer.Typer) -> None:
    actions = typer.Typer(
        name="actions",
        help="Actions on match: webhooks, quarantine, flood guard, dead letters, alerts.",
        no_args_is_help=True,
    )
    app.add_typer(actions, name="actions")

    @actions.command("set")
    def set_(
        bank: Annotated[str, typer.Argument(help="Bank to configure.")],
        webhook: Annotated[
            list[str] | None,
            typer.Option("--webhook", help="Webhook URL (repeat for several; replaces the list)."),
        ] = None,
        no_webhooks: Annotated[
            bool, typer.Option("--no-webhooks", help="Remove all webhooks.")
        ] = False,
        secret: Annotated[
            str | None, typer.Option("--secret", help="HMAC signing secret (16+ characters).")
        ] = None,
        generate_secret: Annotated[
            bool,
            typer.Option("--generate-secret", help="Generate a new secret and print it once."),
        ] = False,
        quarantine: Annotated[
            bool | None,
            typer.Option("--quarantine/--no-quarantine", help="Flag scan results for review."),
        ] = None,
        enabled: Annotated[
            bool | None,
            typer.Option("--enable/--disable", help="Switch webhooks and quarantine on/off."),
        ] = None,
        flood_max: Annotated[
            int | None,
            typer.Option(
                "--flood-max", help="Matches per entry per window before a pause (0=off)."
            ),
        ] = None,
        flood_window: Annotated[
            int | None, typer.Option("--flood-window", help="Flood window in seconds.")
        ] = None,
        flood_pause: Annotated[
            int | None, typer.Option("--flood-pause", help="Pause length in seconds.")
        ] = None,
        flood_default: Annotated[
            bool,
            typer.Option("--flood-default", help="Drop the bank's flood overrides (use global)."),
        ] = False,
    ) -> None:
        """Create or change a bank's actions; options left out keep their value."""
        from ..actions import config

        if webhook and no_webhooks:
            raise typer.BadParameter("--webhook and --no-webhooks exclude each other")
        if secret and generate_secret:
            raise typer.BadParameter("--secret and --generate-secret exclude each other")
        kw: dict[str, Any] = {"quarantine": quarantine, "enabled": enabled}
        if webhook:
            kw["webhook_urls"] = list(webhook)
        elif no_webhooks:
            kw["webhook_urls"] = []
        new_secret = config.new_secret() if generate_secret else secret
        if new_secret is not None:
            kw["webhook_secret"] = new_secret
        if flood_default:
            kw.update(flood_max=None, flood_window_s=None, flood_pause_s=None)
        for name, v in (
            ("flood_max", flood_max),
            ("flood_window_s", flood_window),
            ("flood_pause_s", flood_pause),
        ):
            if v is not None:
                kw[name] = v
        with handle_errors():
            engine = db_engine()
            a = config.set_actions(engine, bank, **kw)
            _audit_change(engine, f"bank:{bank}", sorted(k for k, v in kw.items() if v is not None))
            print_json(a.to_dict())
            if generate_secret:
                err_console().print("webhook secret (shown once, store it with the receiver):")
                typer.echo(new_secret)

    @actions.command("show")
    def show(bank: Annotated[str, typer.Argument()]) -> None:
        """Show a bank's effective actions (the secret is never shown)."""
        from ..actions import config

        with handle_errors():
            print_json(config.get_actions(db_engine(), bank).to_dict())

    @actions.command("set-global")
    def set_global(
        flood_max: Annotated[int, typer.Option("--flood-max")],
        flood_window: Annotated[int, typer.Option("--flood-window")],
        flood_pause: Annotated[int, typer.Option("--flood-pause")],
    ) -> None:
        """Set the global flood-guard defaults (banks without their own override)."""
        from ..actions import config

        with handle_errors():
            engine = db_engine()
            fs = config.set_global_flood(engine, flood_max, flood_window, flood_pause)
            _audit_change(
                engine, "actions:global", ["flood_max", "flood_pause_s", "flood_window_s"]
            )
            print_json(fs.to_dict())

    @actions.command("dead-letters")
    def dead_letters(
        kind: Annotated[str | None, typer.Option("--kind", help="e.g. webhook")] = None,
        limit: Annotated[int, typer.Option("--limit")] = 100,
    ) -> None:
        """List jobs that failed for good (newest first)."""
        from ..jobs import queue

        with handle_errors():
            jobs = queue.list_jobs(db_engine(), status="dead", kind=kind, limit=limit)
            table = Table(title=f"Dead letters ({len(jobs)})")
            for col in ("id", "kind", "attempts", "updated", "last error"):
                table.add_column(col)
            for j in jobs:
                table.add_row(
                    str(j.id),
                    j.kind,
                    f"{j.attempts}/{j.max_attempts}",
                    j.updated_at.isoformat(timespec="seconds"),
                    escape((j.last_error or "")[:200]),
                )
            Console(highlight=False, width=160).print(table)

    @actions.command("replay")
    def replay(job_id: Annotated[int, typer.Argument(help="Job id (see dead-letters).")]) -> None:
        """Queue a dead (or done) job again with a fresh attempt budget."""
        from ..jobs import queue

        with handle_errors():
            queue.replay(db_engine(), job_id)
            typer.echo(f"job {job_id} queued again")

    @actions.command("alerts")
    def alerts(
        all_: Annotated[bool, typer.Option("--all", help="Include acknowledged alerts.")] = False,
        limit: Annotated[int, typer.Option("--limit")] = 100,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """List alerts (flood guard...), newest first; unacknowledged only by default."""
        from ..actions import flood

        with handle_errors():
            rows = flood.list_alerts(db_engine(), acknowledged=None if all_ else False, limit=limit)
            if as_json:
                print_json([a.to_dict() for a in rows])
                return
            table = Table(title=f"Alerts ({len(rows)})")
            for col in ("id", "kind", "bank", "entry", "count", "window s", "created", "ack"):
                table.add_column(col)
            for a in rows:
                table.add_row(
                    str(a.id),
                    a.kind,
                    escape(a.bank or "-"),
                    str(a.entry_id or "-"),
                    str(a.count or "-"),
                    str(a.window_s or "-"),
                    a.created_at.isoformat(timespec="seconds"),
                    "yes" if a.acknowledged else "no",
                )
            Console(highlight=False, width=160).print(table)

    @actions.command("ack")
    def ack(alert_id: Annotated[int, typer.Argument()]) -> None:
        """Acknowledge an alert."""
        from ..actions import flood

        with handle_errors():
            flood.acknowledge_alert(db_engine(), alert_id)
            typer.echo(f"alert {alert_id} acknowledged")
