"""`sentinelle exchange ...`: configure live hash exchanges, fetch, share with peers.

Credentials are given as ``--credentials-env VAR`` or ``--credentials-file PATH``;
only the variable name or path is stored, never the secret.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._common import db_engine, err_console, handle_errors, print_json


def _settings(type_name: str, pairs: list[str], base_url: str | None) -> dict[str, Any]:
    from ..exchanges.registry import get_type

    cls = get_type(type_name).config_cls
    types = {f.name: type(f.default) for f in fields(cls)}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types:
            raise typer.BadParameter(
                f"--setting {pair!r}: expected KEY=VALUE with KEY one of {', '.join(types)}"
            )
        try:
            out[key] = types[key](value) if types[key] in (int, float) else value
        except ValueError:
            raise typer.BadParameter(f"--setting {key}: not a {types[key].__name__}") from None
    if base_url:
        out["base_url"] = base_url
    return out


def _status_table(infos: list[Any]) -> Table:
    t = Table(
        "name",
        "type",
        "bank",
        "state",
        "last ok",
        "lag",
        "records",
        "added",
        "deleted",
        "unknown",
        "malformed",
        "error",
    )
    for i in infos:
        lag = i.lag_s()
        t.add_row(
            escape(i.name),
            i.type,
            escape(i.bank),
            i.state,
            "-" if i.last_fetch_ok_at is None else i.last_fetch_ok_at.strftime("%Y-%m-%d %H:%M"),
            "-" if lag is None else f"{lag / 3600:.1f} h",
            str(i.counts["records_seen"]),
            str(i.counts["entries_added"]),
            str(i.counts["entries_deleted"]),
            str(i.counts["unknown_types"]),
            str(i.counts["malformed"]),
            escape((i.last_error or "")[:60]),
        )
    return t


def register(app: typer.Typer) -> None:
    ex = typer.Typer(
        name="exchange",
        no_args_is_help=True,
        help="Live hash exchanges (NCMEC, StopNCII, ThreatExchange, HTTP feeds, "
        "other Sentinelle instances).",
    )
    app.add_typer(ex, name="exchange")

    @ex.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="Exchange name (also its bank's, by default).")],
        type_: Annotated[
            str,
            typer.Option(
                "--type", help="ncmec, stopncii, threatexchange, http_feed or sentinelle."
            ),
        ],
        base_url: Annotated[
            str | None, typer.Option(help="Endpoint (overrides environment).")
        ] = None,
        setting: Annotated[list[str] | None, typer.Option(help="KEY=VALUE (repeatable).")] = None,
        credentials_env: Annotated[
            str | None, typer.Option(help="Variable holding the secret.")
        ] = None,
        credentials_file: Annotated[
            str | None, typer.Option(help="File holding the secret.")
        ] = None,
        bank: Annotated[str | None, typer.Option(help="Feed this existing bank.")] = None,
        interval: Annotated[int, typer.Option(help="Seconds between fetches.")] = 600,
    ) -> None:
        """Configure an exchange; it feeds a bank of its own."""
        from ..exchanges.credentials import make_ref
        from ..exchanges.store import ExchangeStore

        with handle_errors():
            cfg = _settings(type_, setting or [], base_url)
            ref = make_ref(env=credentials_env, file=credentials_file)
            info = ExchangeStore(db_engine()).add(
                name,
                type_,
                config=cfg,
                credential_ref=ref,
                bank=bank,
                interval_s=interval,
                actor="cli",
            )
        err_console().print(
            f"exchange {escape(info.name)} ({info.type}) feeds bank {escape(info.bank)}"
        )

    @ex.command("list")
    def list_(json_: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Every exchange with its state, last fetch, counts, errors and lag."""
        from ..exchanges.store import ExchangeStore

        with handle_errors():
            infos = ExchangeStore(db_engine()).list()
        if json_:
            print_json([i.to_dict() for i in infos])
        else:
            Console().print(_status_table(infos))

    @ex.command("status")
    def status(name: str, json_: Annotated[bool, typer.Option("--json")] = False) -> None:
        """One exchange's status, with its latest quarantined pages."""
        from ..exchanges.store import ExchangeStore

        with handle_errors():
            store = ExchangeStore(db_engine())
            data = store.get(name).to_dict()
            data["quarantine"] = store.quarantined(name, limit=10)
        print_json(data) if json_ else Console().print(data)

    @ex.command("fetch")
    def fetch(
        name: str,
        max_pages: Annotated[int | None, typer.Option(help="Stop after N pages.")] = None,
        max_seconds: Annotated[float | None, typer.Option(help="Stop after S seconds.")] = None,
    ) -> None:
        """Fetch now, from the checkpoint, until up to date (or a limit)."""
        from rich.progress import Progress, SpinnerColumn, TextColumn

        from ..exchanges.runner import run_fetch

        with (
            handle_errors(),
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                console=err_console(),
                transient=True,
            ) as bar,
        ):
            task = bar.add_task("fetching", total=None)
            seen = {"records": 0}

            def on_page(r: Any) -> None:
                seen["records"] += r.records_seen
                bar.update(task, description=f"{seen['records']} records")

            out = run_fetch(
                db_engine(), name, max_pages=max_pages, max_seconds=max_seconds, on_page=on_page
            )
        print_json(out.to_dict())
        if out.error:
            raise typer.Exit(1)

    @ex.command("disable")
    def disable(name: str) -> None:
        """Stop fetching this exchange (its bank stays)."""
        from ..exchanges.store import ExchangeStore

        with handle_errors():
            ExchangeStore(db_engine()).set_enabled(name, False, actor="cli")

    @ex.command("enable")
    def enable(name: str) -> None:
        from ..exchanges.store import ExchangeStore

        with handle_errors():
            ExchangeStore(db_engine()).set_enabled(name, True, actor="cli")

    @ex.command("reset")
    def reset(name: str, yes: Annotated[bool, typer.Option("--yes")] = False) -> None:
        """Forget the checkpoint: the next fetch starts over (audited)."""
        from ..exchanges.store import ExchangeStore

        if not yes:
            raise typer.BadParameter("add --yes: the next fetch re-reads everything")
        with handle_errors():
            ExchangeStore(db_engine()).reset_checkpoint(name, actor="cli")

    @ex.command("submit")
    def submit(
        name: str,
        bank: Annotated[str, typer.Option(help="Bank whose active hashes to share.")],
    ) -> None:
        """Submit your own hashes (a bank's active entries) to an exchange that takes them
        (StopNCII SubmitHashes, ThreatExchange descriptors; NCMEC: use `sentinelle report`).
        Audited as exchange.submit."""
        from ..exchanges.runner import build_api
        from ..exchanges.store import ExchangeStore
        from ..exchanges.transport import HttpTransport

        with handle_errors(), HttpTransport() as http:
            store = ExchangeStore(db_engine())
            api = build_api(store.get(name), http)
            pairs = [
                (e.signal_type, e.hash) for e in store.banks.iter_entries(bank, active_only=True)
            ]
            n = api.submit(pairs)
            store.record_submission(name, bank, sent=n, offered=len(pairs), actor="cli")
        err_console().print(f"submitted {n} of {len(pairs)} hashes")

    @ex.command("keygen")
    def keygen(path: str) -> None:
        """Write a new Ed25519 signing key for this instance's peer feeds; print the public key."""
        from ..exchanges.publish import KEY_ENV, generate_key

        with handle_errors():
            try:
                public = generate_key(path)
            except FileExistsError:
                raise typer.BadParameter(f"{path} exists; not overwritten") from None
        typer.echo(public)
        err_console().print(f"set {KEY_ENV}={escape(path)}; give subscribers the line above")

    @ex.command("share")
    def share(
        bank: str,
        category: Annotated[str | None, typer.Option(help="Category sent with each hash.")] = None,
        expiry_days: Annotated[int, typer.Option(help="Shared hashes expire after.")] = 90,
    ) -> None:
        """Publish the hashes reviewers confirm in BANK to subscribed peers (opt-in)."""
        from ..exchanges.publish import Publisher

        with handle_errors():
            Publisher(db_engine()).share_bank(
                bank, category=category, expiry_days=expiry_days, actor="cli"
            )

    @ex.command("unshare")
    def unshare(bank: str) -> None:
        from ..exchanges.publish import Publisher

        with handle_errors():
            Publisher(db_engine()).unshare_bank(bank, actor="cli")

    @ex.command("subscriber-add")
    def subscriber_add(name: str) -> None:
        """Create a subscriber API key for the peer feeds (printed once)."""
        from ..exchanges.publish import Publisher

        with handle_errors():
            key = Publisher(db_engine()).add_subscriber(name, actor="cli")
        typer.echo(key)

    @ex.command("subscriber-revoke")
    def subscriber_revoke(name: str) -> None:
        from ..exchanges.publish import Publisher

        with handle_errors():
            Publisher(db_engine()).revoke_subscriber(name, actor="cli")

    @ex.command("disagreements")
    def disagreements(bank: str) -> None:
        """Per shared hash of BANK: subscribers' false-positive and confirmed counts."""
        from ..exchanges.publish import Publisher

        with handle_errors():
            print_json(Publisher(db_engine()).disagreements(bank))
