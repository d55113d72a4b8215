"""`sentinelle key ...`: create, list, revoke and rotate the service's API keys.

A key is printed once, when it is created or rotated; only a hash of its secret
is stored, so a lost key cannot be shown again -- rotate it instead. Commands use
``$SENTINELLE_DATABASE_URL`` like every other command.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import SentinelleError
from ._common import db_engine, err_console, fail


def register(app: typer.Typer) -> None:
    key = typer.Typer(
        name="key",
        help="API keys of the HTTP service (shown once, stored as hashes).",
        no_args_is_help=True,
    )
    app.add_typer(key)

    @key.command("create")
    def create(
        name: Annotated[str, typer.Argument(help="A label: who or what uses the key.")],
        scope: Annotated[
            list[str] | None,
            typer.Option("--scope", "-s", help="scan, curate, metrics or admin; repeatable."),
        ] = None,
        rate: Annotated[
            float | None,
            typer.Option("--rate", min=0, help="Requests/s for this key (0: unlimited)."),
        ] = None,
    ) -> None:
        """Create a key and print it (once) on stdout."""
        from ..service.keys import create_key

        try:
            rec, token = create_key(db_engine(), name, scope or ["scan"], rate, actor="cli")
        except SentinelleError as e:
            raise fail(e) from None
        err_console().print(
            f"key [bold]{rec.id}[/] ({escape(rec.name)}), scopes {', '.join(sorted(rec.scopes))}"
            " -- store it now, it is not shown again:"
        )
        typer.echo(token)

    @key.command("list")
    def list_(
        all_: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
    ) -> None:
        """List keys (never their secrets)."""
        from ..service.keys import list_keys

        try:
            keys = list_keys(db_engine(), include_revoked=all_)
        except SentinelleError as e:
            raise fail(e) from None
        if as_json:
            for k in keys:
                typer.echo(json.dumps(k.to_dict()))
            return
        t = Table("id", "name", "scopes", "rate/s", "created", "revoked")
        for k in keys:
            t.add_row(
                str(k.id),
                escape(k.name),
                ",".join(sorted(k.scopes)),
                "default" if k.rate_limit is None else f"{k.rate_limit:g}",
                k.created_at.strftime("%Y-%m-%d %H:%M"),
                k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "",
            )
        Console(highlight=False).print(t)

    @key.command("revoke")
    def revoke(key_id: Annotated[int, typer.Argument(help="Key id (the N in snt_N_...).")]) -> None:
        """Revoke a key (every instance refuses it within a few seconds)."""
        from ..service.keys import revoke_key

        try:
            revoke_key(db_engine(), key_id, actor="cli")
        except SentinelleError as e:
            raise fail(e) from None
        err_console().print(f"key {key_id} revoked")

    @key.command("rotate")
    def rotate(key_id: Annotated[int, typer.Argument(help="Key id to replace.")]) -> None:
        """Replace a key: new secret, same name, scopes and rate; the old key is revoked."""
        from ..service.keys import rotate_key

        try:
            rec, token = rotate_key(db_engine(), key_id, actor="cli")
        except SentinelleError as e:
            raise fail(e) from None
        err_console().print(
            f"key {key_id} revoked; new key [bold]{rec.id}[/] -- store it now, "
            "it is not shown again:"
        )
        typer.echo(token)
