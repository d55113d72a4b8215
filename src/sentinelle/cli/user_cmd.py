"""`sentinelle user ...`: review-console accounts.

::

    sentinelle user create alice --role reviewer        # asks for the password twice
    sentinelle user list [--json]
    sentinelle user role alice specialist [--grant media.reveal]
    sentinelle user passwd alice                         # new password, sessions revoked
    sentinelle user passwd alice --temporary             # ... to be changed at next login
    sentinelle user totp-enable alice                    # prints the otpauth URI, asks a code
    sentinelle user disable alice [--enable]

Passwords are read from the terminal without echo, or from standard input with
``--password-stdin`` (for scripts); never from the command line, where they would
land in shell history and process lists. Changes are audited with actor ``cli``.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import SentinelleError
from ._common import db_engine, err_console, fail

ACTOR = "cli"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first stdin line.")
]
Temporary = Annotated[
    bool,
    typer.Option(
        "--temporary",
        help="A password chosen for the user: the console makes them change it at next login.",
    ),
]


def register(app: typer.Typer) -> None:
    user = typer.Typer(
        name="user",
        help="Review-console accounts (argon2 passwords, optional TOTP, roles).",
        no_args_is_help=True,
    )
    app.add_typer(user)

    @user.command("create")
    def create(
        username: Annotated[str, typer.Argument(help="2-64 characters: a-z 0-9 . _ -")],
        role: Annotated[
            str, typer.Option("--role", "-r", help="reviewer, specialist, legal or admin.")
        ] = "reviewer",
        display_name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
        password_stdin: PasswordStdin = False,
        temporary: Temporary = False,
    ) -> None:
        """Create an account."""
        from ..review.accounts import create_user

        try:
            u = create_user(
                db_engine(),
                username,
                _read_password(password_stdin),
                role,
                display_name=display_name,
                actor=ACTOR,
                temporary=temporary,
            )
        except SentinelleError as e:
            raise fail(e) from None
        err_console().print(f"user [bold]{escape(u.username)}[/] created, role {u.role}")

    @user.command("list")
    def list_(as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False) -> None:
        """List accounts (never their secrets)."""
        from ..review.accounts import list_users

        try:
            users = list_users(db_engine())
        except SentinelleError as e:
            raise fail(e) from None
        if as_json:
            for u in users:
                typer.echo(json.dumps(u.to_dict()))
            return
        t = Table("id", "user", "role", "grants", "totp", "state", "last login")
        for u in users:
            state = "disabled" if u.disabled else ("locked" if u.locked_until else "active")
            t.add_row(
                str(u.id),
                escape(u.username),
                u.role,
                ", ".join(sorted(u.grants)) or "-",
                "yes" if u.totp_enabled else "no",
                state,
                u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "-",
            )
        Console(highlight=False).print(t)

    @user.command("role")
    def role(
        username: str,
        new_role: Annotated[str, typer.Argument(help="reviewer, specialist, legal or admin.")],
        grant: Annotated[
            list[str] | None,
            typer.Option("--grant", help="Extra permission, e.g. media.reveal; repeatable."),
        ] = None,
    ) -> None:
        """Change a user's role (and, with --grant, replace their extra grants)."""
        from ..review.accounts import set_grants, set_role

        try:
            engine = db_engine()
            u = set_role(engine, username, new_role, actor=ACTOR)
            if grant is not None:
                u = set_grants(engine, username, grant, actor=ACTOR)
        except SentinelleError as e:
            raise fail(e) from None
        extra = f", grants {', '.join(sorted(u.grants))}" if u.grants else ""
        err_console().print(f"user [bold]{escape(u.username)}[/]: role {u.role}{extra}")

    @user.command("passwd")
    def passwd(
        username: str, password_stdin: PasswordStdin = False, temporary: Temporary = False
    ) -> None:
        """Set a new password (clears a lockout, ends every session)."""
        from ..review.accounts import set_password

        try:
            u = set_password(
                db_engine(),
                username,
                _read_password(password_stdin),
                actor=ACTOR,
                temporary=temporary,
            )
        except SentinelleError as e:
            raise fail(e) from None
        err_console().print(f"password of [bold]{escape(u.username)}[/] changed")

    @user.command("disable")
    def disable(
        username: str,
        enable: Annotated[bool, typer.Option("--enable", help="Re-enable instead.")] = False,
    ) -> None:
        """Disable an account (its sessions end at once) or re-enable it."""
        from ..review.accounts import set_disabled

        try:
            u = set_disabled(db_engine(), username, not enable, actor=ACTOR)
        except SentinelleError as e:
            raise fail(e) from None
        err_console().print(
            f"user [bold]{escape(u.username)}[/] {'disabled' if u.disabled else 'enabled'}"
        )

    @user.command("totp-enable")
    def totp_enable(username: str) -> None:
        """Enrol TOTP: prints the secret and otpauth:// URI, then checks one code."""
        from ..review.accounts import confirm_totp, start_totp

        try:
            engine = db_engine()
            secret, uri = start_totp(engine, username, actor=ACTOR)
            err_console().print("Add this account to the authenticator app:")
            typer.echo(uri)
            err_console().print(f"(secret: {secret})")
            code = typer.prompt("Code shown by the app")
            confirm_totp(engine, username, code, actor=ACTOR)
        except SentinelleError as e:
            raise fail(e) from None
        err_console().print(f"TOTP enabled for [bold]{escape(username)}[/]")
