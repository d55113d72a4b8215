"""`sentinelle serve`: run the HTTP API (FastAPI on uvicorn).

Settings come from ``SENTINELLE_*`` environment variables
(:mod:`sentinelle.service.settings`). ``--demo`` (what ``make run`` uses) first
enrolls rendered benign scenes into the ``demo-known`` bank and prints a fresh
API key with every scope, for local use only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape


def _demo_setup(console: Console, out: Path, engine) -> str:  # type: ignore[no-untyped-def]
    """Bank the demo scenes (idempotent) and return a new all-scopes key."""
    from ..banks import BankStore
    from ..errors import BankError
    from ..formats.enroll import entries_from_paths
    from ..service.keys import create_key
    from .demo_media import DEMO_BANK, build_demo

    originals, inbox = build_demo(out)
    store = BankStore(engine)
    try:
        store.get_bank(DEMO_BANK)
    except BankError:
        store.create_bank(DEMO_BANK, description="Demo bank of rendered benign scenes")
    entries, _failed = entries_from_paths(
        sorted(originals.iterdir()), augment=True, category="demo", source_org="sentinelle-demo"
    )
    report = store.add_entries(DEMO_BANK, entries)
    console.print(
        f"bank [bold]{DEMO_BANK}[/]: {report.added} entries added, "
        f"{report.duplicates} already present; sample files to upload in {escape(str(inbox))}",
        soft_wrap=True,
    )
    _rec, token = create_key(engine, "demo (sentinelle serve --demo)", ["admin"])
    return token


def _demo_console(console: Console, demo_dir: Path, state, base: str) -> None:  # type: ignore[no-untyped-def]
    """Demo reviewer account and a demo case for the review console (printed once)."""
    from ..console.demo import setup_console_demo

    demo = setup_console_demo(state.engine, state.matcher, demo_dir)
    case = f"{base}/console/cases/{demo.case_id}" if demo.case_id else f"({demo.note})"
    console.print(
        f"[bold]Review console[/]: {base}/console/login\n"
        f"  user: {demo.username}   password (shown once): {demo.password}\n"
        f"  demo case (a benign bank match, stored encrypted): {case}\n",
        soft_wrap=True,
    )
    from .triage_demo import setup_triage_demo

    triage_id = setup_triage_demo(state.engine, state.matcher, demo_dir)
    if triage_id is not None:
        console.print(
            f"  demo triage case (benign rendered scenes): {base}/console/triage/{triage_id}\n"
            f"  its HTML report and VICS export: {escape(str(demo_dir / 'triage-report.html'))}, "
            f"{escape(str(demo_dir / 'triage-case.vics.json'))}\n",
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
        threads: Annotated[
            int,
            typer.Option(
                "--threads",
                min=0,
                max=512,
                help="Worker threads for blocking work (default $SENTINELLE_THREADS or 40).",
            ),
        ] = 0,
        workers: Annotated[
            int,
            typer.Option(
                "--workers",
                min=1,
                max=64,
                help="Worker processes (each holds its own index in memory).",
            ),
        ] = 1,
        demo: Annotated[
            bool, typer.Option("--demo", help="Enroll the demo bank and print a demo key.")
        ] = False,
        demo_dir: Annotated[
            Path, typer.Option("--demo-dir", help="Folder for the demo images.")
        ] = Path("demo-output"),
    ) -> None:
        """Serve the HTTP API (docs at /docs, OpenAPI at /openapi.json)."""
        import uvicorn

        from ..errors import SentinelleError
        from ..service.app import create_app
        from ..service.logging import configure_logging
        from ..service.settings import Settings

        console = Console(stderr=True, highlight=False)
        try:
            settings = Settings.from_env(threads=threads) if threads else Settings.from_env()
            configure_logging(settings.log_level)
            application = create_app(settings)
        except SentinelleError as e:
            console.print(f"[red]error \\[{e.code}][/]: {escape(e.message)}")
            raise typer.Exit(1) from None
        state = application.state.sentinelle
        if demo:
            token = _demo_setup(console, demo_dir, state.engine)
            state.matcher.refresh()
            base = f"http://{host}:{port}"
            sample = next(iter(sorted((demo_dir / "inbox").glob("copy-00-*"))), None)
            console.print("\n[bold]Demo API key[/] (all scopes; shown once):")
            typer.echo(token)
            console.print(
                f"\n  export KEY={token}\n"
                f'  curl -s -H "Authorization: Bearer $KEY" '
                f"-F file=@{sample} {base}/v1/match\n"
                f"  docs: {base}/docs\n",
                soft_wrap=True,
            )
            _demo_console(console, demo_dir, state, base)
        console.print(
            f"Sentinelle API on http://{host}:{port} · database: {settings.database_url}",
            soft_wrap=True,
        )
        if workers > 1:
            # Each worker process builds its own app (and index) from the environment.
            if threads:
                os.environ["SENTINELLE_THREADS"] = str(threads)
            state.close()
            uvicorn.run(
                "sentinelle.service.app:create_app",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                server_header=False,
            )
            return
        uvicorn.run(
            application,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            server_header=False,
        )
