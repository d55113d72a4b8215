"""`sentinelle model scan`: check generative model files without running them.

::

    $ sentinelle model scan lora.safetensors models/ --json
    {"path": "lora.safetensors", "format": "safetensors", "decision": "allow", ...}
    $ sentinelle model scan big.safetensors --no-hash        # header and metadata only

Each model (a safetensors / GGUF / pickle file, or a diffusers folder) gets one line
(``--json``: one JSON object per line, see :class:`~sentinelle.modelguard.ModelScanResult`;
``--tensors`` adds the per-tensor hashes). Folders that are not diffusers models are
walked for model files. Nothing is executed; pickles are read opcode by opcode.

**Exit status**: ``4`` if any model is blocked; else ``1`` if any file could not be read
safely (its line carries the ``error``, its decision is ``review``); else ``3`` if any
model needs review; else ``0``. ``2``: a wrong command line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ._common import err_console, handle_errors

EXIT_CODES = {"allow": 0, "review": 3, "block": 4}
EXIT_UNREADABLE = 1
_STYLE = {"allow": "green", "review": "yellow", "block": "bold red"}
PROGRESS_MIN_BYTES = 256 * 1024 * 1024  # show a progress bar when hashing more than this


def _exit_code(decisions: list[str], errors: int) -> int:
    if "block" in decisions:
        return EXIT_CODES["block"]
    if errors:
        return EXIT_UNREADABLE
    return max((EXIT_CODES[d] for d in decisions), default=0)


def _print_line(out: Console, d: dict[str, Any]) -> None:
    style = _STYLE[d["decision"]]
    sig = {s["type"]: s["hash"] for s in d["signals"]}
    ident = sig.get("tensor_sha256") or sig.get("file_sha256") or ""
    fmt = d["format"] or "?"
    out.print(
        f"[{style}]{d['decision']:<6}[/] {fmt:<11} {escape(d['path'] or '')}"
        + (f"  tensor_sha256={ident[:16]}…" if ident else "")
    )
    if d["error"]:
        out.print(f"       [red]error \\[{d['error']['code']}][/]: {escape(d['error']['message'])}")
    for reason in d["reasons"][:5]:
        out.print(f"       {escape(reason)}")
    for m in d["matches"][:5]:
        what = (
            f"{m['parts_matched']}/{m['parts_scanned']} tensors"
            if m["kind"] == "overlap"
            else m["signal"]
        )
        ref = f" ({m['media_ref']})" if m["media_ref"] else ""
        out.print(f"       [bold]match[/] {escape(m['bank'])}{escape(ref)}: {what}")


def _matcher(banks: list[str]) -> tuple[Any, Any]:
    """(Matcher, BankStore) over ``banks`` (all enabled when empty) from the database."""
    from ..banks import BankStore
    from ..errors import BankError
    from ..index.matcher import Matcher
    from ._common import db_engine

    store = BankStore(db_engine())
    missing = sorted(set(banks) - {b.name for b in store.list_banks()})
    if missing:
        raise BankError(f"unknown bank(s): {', '.join(missing)}", "unknown_bank")
    return Matcher(store, banks=banks or None), store


def _scan_all(
    paths: list[Path], hash_tensors: bool, as_json: bool, tensors: bool, banks: list[str] | None
) -> int:
    from ..modelguard import iter_model_paths, scan_model
    from ..modelguard.matching import match_model

    matcher = store = None
    if banks is not None:
        with handle_errors():
            matcher, store = _matcher(banks)
    out = Console(highlight=False, soft_wrap=True)
    decisions: list[str] = []
    errors = 0
    for p in iter_model_paths(list(paths)):
        size = p.stat().st_size if p.is_file() else 0
        if hash_tensors and size >= PROGRESS_MIN_BYTES and not as_json:
            from rich.progress import Progress

            with Progress(console=err_console(), transient=True) as bar:
                task = bar.add_task(f"hashing {p.name}", total=size)

                def advance(n: int, bar: Progress = bar, task: Any = task) -> None:
                    bar.advance(task, n)

                r = scan_model(p, hash_tensors=True, progress=advance)
        else:
            r = scan_model(p, hash_tensors=hash_tensors, file_hash=hash_tensors)
        if matcher is not None and r.error is None:
            r.matches = match_model(r, matcher, store)
        d = r.to_dict(tensors=tensors)
        decisions.append(r.decision)
        errors += r.error is not None
        if as_json:
            typer.echo(json.dumps(d, ensure_ascii=False, default=str))
        else:
            _print_line(out, d)
    return _exit_code(decisions, errors)


def register(app: typer.Typer) -> None:
    model = typer.Typer(
        name="model",
        help="Check generative model files (LoRA, checkpoints, GGUF, diffusers folders).",
        no_args_is_help=True,
    )

    @model.command("scan")
    def scan_command(
        paths: Annotated[
            list[Path], typer.Argument(help="Model files or folders (folders are walked).")
        ],
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
        no_hash: Annotated[
            bool,
            typer.Option("--no-hash", help="Read headers and metadata only (no tensor bytes)."),
        ] = False,
        tensors: Annotated[
            bool, typer.Option("--tensors", help="Include the per-tensor hashes in --json.")
        ] = False,
        match: Annotated[
            bool,
            typer.Option("--match", help="Look the identifiers up in the banks (database)."),
        ] = False,
        bank: Annotated[
            list[str] | None,
            typer.Option("--bank", help="With --match: only this bank (repeat). Default: all."),
        ] = None,
    ) -> None:
        """Judge each model's training metadata and card; print its identifiers."""
        banks = list(bank or []) if match or bank else None
        raise typer.Exit(_scan_all(paths, not no_hash, as_json, tensors, banks))

    app.add_typer(model)
