"""`sentinelle retention ...` and `sentinelle evidence keygen`.

Preservation of reported evidence: legal holds, extensions, releases, the
scheduled deletion run, destruction on request (with a recorded proof) and the
deletion log. Opens ``$SENTINELLE_DATABASE_URL`` like every command; every change
is written to the audit trail with actor ``cli`` (whoever holds the database URL
is an administrator). Errors print ``error [code]: message`` and exit 1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._common import db_engine, err_console, handle_errors, parse_when, print_json

ACTOR = "cli"


def register(app: typer.Typer) -> None:
    _register_evidence(app)
    _register_retention(app)


def _register_evidence(app: typer.Typer) -> None:
    evidence = typer.Typer(
        name="evidence", help="Encrypted evidence store: master key.", no_args_is_help=True
    )
    app.add_typer(evidence, name="evidence")

    @evidence.command("keygen")
    def keygen(
        out: Annotated[
            Path | None,
            typer.Option("--out", help="Write the key to this new file (mode 0600)."),
        ] = None,
    ) -> None:
        """Make a random 256-bit master key (base64) for SENTINELLE_MASTER_KEY(_FILE)."""
        from ..evidence import generate_master_key

        key = generate_master_key()
        if out is None:
            err_console().print(
                "master key (set SENTINELLE_MASTER_KEY; keep it outside the database "
                "and back it up: without it the evidence cannot be read):"
            )
            typer.echo(key)
            return
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            err_console().print(f"[red]error \\[file_exists][/]: {escape(str(out))} exists")
            raise typer.Exit(1) from None
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        err_console().print(
            f"master key written to {escape(str(out))}; set SENTINELLE_MASTER_KEY_FILE"
        )


def _register_retention(app: typer.Typer) -> None:
    retention = typer.Typer(
        name="retention",
        help="Preservation holds, scheduled deletion and destruction with proof.",
        no_args_is_help=True,
    )
    app.add_typer(retention, name="retention")

    @retention.command("run")
    def run(
        now: Annotated[
            str | None, typer.Option("--now", help="Pretend it is this ISO time (UTC).")
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list due cases.")] = False,
    ) -> None:
        """Destroy the evidence of cases whose holds are all over (prints JSON)."""
        from ..evidence import run_retention

        with handle_errors():
            res = run_retention(db_engine(), parse_when(now), actor=ACTOR, dry_run=dry_run)
        print_json(res.to_dict())
        if res.failed:
            raise typer.Exit(1)

    @retention.command("hold")
    def hold(
        case_id: Annotated[int, typer.Argument(help="Case id.")],
        reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
    ) -> None:
        """Place a legal hold (no end date) on a case."""
        from ..evidence import place_legal_hold

        with handle_errors():
            hid = place_legal_hold(db_engine(), case_id=case_id, actor=ACTOR, reason=reason)
        typer.echo(f"legal hold {hid} placed on case {case_id}")

    @retention.command("release")
    def release(
        hold_id: Annotated[int, typer.Argument(help="Hold id (see `retention list`).")],
        reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
    ) -> None:
        """Release a hold."""
        from ..evidence import release_hold

        with handle_errors():
            h = release_hold(db_engine(), hold_id, actor=ACTOR, reason=reason)
        typer.echo(f"hold {hold_id} on case {h.case_id} released")

    @retention.command("extend")
    def extend(
        hold_id: Annotated[int, typer.Argument(help="Hold id.")],
        reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
        days: Annotated[int | None, typer.Option("--days", min=1, help="Add N days.")] = None,
        until: Annotated[str | None, typer.Option("--until", help="New end (ISO time).")] = None,
    ) -> None:
        """Extend a retention hold (never shortens it)."""
        from ..evidence import extend_hold

        with handle_errors():
            h = extend_hold(
                db_engine(), hold_id, actor=ACTOR, reason=reason, days=days, until=parse_when(until)
            )
        typer.echo(f"hold {hold_id} now ends {h.expires_at.isoformat() if h.expires_at else '-'}")

    @retention.command("destroy")
    def destroy(
        case_id: Annotated[int, typer.Argument(help="Case id.")],
        reason: Annotated[str, typer.Option("--reason", help="Why (required, recorded).")],
        force: Annotated[
            bool, typer.Option("--force", help="Override active holds (administrators).")
        ] = False,
    ) -> None:
        """Crypto-shred a case's evidence now and print the proof record."""
        from ..evidence import destroy_case

        with handle_errors():
            proof = destroy_case(db_engine(), case_id, actor=ACTOR, reason=reason, force=force)
        print_json(proof)

    @retention.command("list")
    def list_(
        case_id: Annotated[int | None, typer.Option("--case", help="Only this case.")] = None,
        active: Annotated[bool, typer.Option("--active", help="Only active holds.")] = False,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """List preservation holds."""
        from ..evidence import list_holds

        with handle_errors():
            rows = list_holds(db_engine(), case_id=case_id, active_only=active)
        if as_json:
            print_json([h.to_dict() for h in rows])
            return
        t = Table("id", "case", "kind", "jurisdiction", "report", "started", "ends", "active")
        for h in rows:
            t.add_row(
                str(h.id),
                str(h.case_id),
                h.kind,
                h.jurisdiction or "-",
                str(h.report_id or "-"),
                h.started_at.strftime("%Y-%m-%d %H:%M"),
                h.expires_at.strftime("%Y-%m-%d %H:%M") if h.expires_at else "until released",
                "yes" if h.active() else "no",
            )
        Console(highlight=False, width=160).print(t)

    @retention.command("proofs")
    def proofs(
        case_id: Annotated[int | None, typer.Option("--case", help="Only this case.")] = None,
    ) -> None:
        """Print the deletion log: the destruction proofs (JSON)."""
        from ..evidence import deletion_records

        with handle_errors():
            print_json(deletion_records(db_engine(), case_id))
