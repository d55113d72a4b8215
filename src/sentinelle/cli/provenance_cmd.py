"""`sentinelle provenance`: is this file AI-generated, AI-edited or a signed camera capture?

::

    $ sentinelle provenance photo.jpg render.png --json
    {"path": "photo.jpg", "verdict": "no_evidence", "confidence": 0.9, "evidence": [...], ...}
    $ sentinelle provenance sign out.png signed.png --cert chain.pem --key key.pem \\
          --software-agent "MyDiffusion 2.1" --watermark

``sentinelle provenance FILE...`` is shorthand for ``sentinelle provenance check FILE...``
(a file literally named ``sign`` or ``check`` needs the explicit ``check``). Directories are
walked recursively. Each file gets one line (``--json``: one JSON object per line with
``path``, ``verdict``, ``confidence``, ``evidence``, ``error``, plus ``tampered`` and
``explanation``); a file that cannot be analysed (unreadable or missing: ``io_error``;
``empty_file``; ``file_too_large``) still gets its line, with its ``error``.

Exit status: 0 when every file was analysed; 1 when any file could not be (every record
is printed first), or when the trust anchors or detector are unusable (nothing printed);
2 for a wrong command line.

``--detector MODEL.onnx`` (with ``--detector-meta SIDECAR`` when the sidecar is not
``MODEL.json``/``MODEL.toml``) adds the operator's learned detector; without it the
``SENTINELLE_PROVENANCE_DETECTOR`` / ``_META`` variables are used. The model is loaded once
before any file is read, so a missing model or a sidecar that does not fit it stops the
command (exit 1) instead of yielding an error item per file. ``sentinelle scan`` takes the
same two options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.markup import escape
from typer.core import TyperGroup

from ..errors import SentinelleError
from ._common import err_console, fail

if TYPE_CHECKING:  # pragma: no cover
    from ..provenance.evidence import DetectorConfig

#: Exit status of ``check`` when any file could not be analysed (after printing every record).
EXIT_NOT_ANALYSED = 1


class _CheckByDefault(TyperGroup):
    """A group whose first argument is a file unless it names a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["check", *args]
        return super().parse_args(ctx, args)


DetectorOption = Annotated[
    Path | None,
    typer.Option(
        "--detector",
        metavar="MODEL.onnx",
        help="Operator's ONNX detector (default: $SENTINELLE_PROVENANCE_DETECTOR; "
        "see docs/PROVENANCE_DETECTORS.md).",
    ),
]
DetectorMetaOption = Annotated[
    Path | None,
    typer.Option(
        "--detector-meta",
        metavar="SIDECAR",
        help="The detector's JSON/TOML metadata (default: MODEL.json or MODEL.toml next to "
        "the model, or $SENTINELLE_PROVENANCE_DETECTOR_META).",
    ),
]


def load_detector(model: Path | None, meta: Path | None) -> DetectorConfig | None:
    """The detector the options (or environment) name, loaded once to fail early.

    Raises :class:`~sentinelle.provenance.detector.DetectorError` (a SentinelleError) when
    the model or sidecar is missing or they do not fit together; None when none is set.
    """
    from ..provenance.detector import get_detector, resolve_config

    config = resolve_config(model, meta)
    if config is not None:
        get_detector(config)  # loads the model and checks its input/output against the sidecar
    return config


def format_text(record: dict) -> str:
    """Human-readable lines for one result (``--json`` prints the record itself)."""
    head = f"{record['path']}: {record['verdict']} (confidence {record['confidence']:.2f})"
    if record.get("tampered"):
        head += " TAMPERED"
    lines = [head]
    if record.get("error"):
        lines.append(f"  error [{record['error']['code']}]: {record['error']['message']}")
    for ev in record.get("evidence") or []:
        flags = []
        if ev["forgeable"]:
            flags.append("forgeable")
        if ev["strippable"]:
            flags.append("strippable")
        tail = f" ({', '.join(flags)})" if flags else ""
        lines.append(f"  - {ev['source']} [{ev['strength']} -> {ev['indicates']}]{tail}: ")
        lines[-1] += ev["finding"]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add the ``provenance`` group (``check`` by default, ``sign``) to ``app``."""
    prov = typer.Typer(
        cls=_CheckByDefault,
        help=(
            "Provenance triage: AI-generated, AI-edited or camera-signed? "
            "`sentinelle provenance FILE...` checks files; `... sign` adds a C2PA manifest."
        ),
        no_args_is_help=True,
    )

    @prov.command("check")
    def check_command(
        paths: Annotated[list[Path], typer.Argument(help="Files or directories (recursed).")],
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
        trust_anchors: Annotated[
            Path | None,
            typer.Option(
                "--trust-anchors",
                help="PEM bundle of trusted C2PA root certificates "
                "(default: $SENTINELLE_C2PA_TRUST_ANCHORS; none: every signer untrusted).",
            ),
        ] = None,
        source: Annotated[
            list[str] | None,
            typer.Option(
                "--source",
                help="Run only this evidence source (repeat): c2pa, metadata, watermark, "
                "camera, detector.",
            ),
        ] = None,
        detector: DetectorOption = None,
        detector_meta: DetectorMetaOption = None,
    ) -> None:
        """Weigh every piece of provenance evidence in each file and print a verdict.

        Verdicts: ai_generated, ai_edited, camera_signed, no_evidence, conflicting
        (a tampered C2PA manifest is reported as conflicting + tampered).

        Exit status: 0 when every file was analysed, 1 when any could not be read
        (its record, with the error, is still printed), 2 for a wrong command line.
        """
        from ..provenance import analyze_file
        from ..provenance.sources import source_names
        from ..provenance.trust import load_trust_anchors, trust_anchors_from_env
        from .hash_cmd import iter_paths

        if source:
            bad = [s for s in source if s not in source_names()]
            if bad:
                raise typer.BadParameter(
                    f"unknown source {', '.join(bad)}; choose from {', '.join(source_names())}",
                    param_hint="--source",
                )
        try:
            pem = load_trust_anchors(trust_anchors) if trust_anchors else trust_anchors_from_env()
            config = None
            if source is None or "detector" in source:
                config = load_detector(detector, detector_meta)
        except SentinelleError as e:
            raise fail(e) from None
        failed = 0
        for path in iter_paths(paths):
            record = analyze_file(
                path, trust_anchors_pem=pem, detector=config, sources=source
            ).to_dict()
            typer.echo(json.dumps(record) if as_json else format_text(record))
            failed += record.get("error") is not None
        if failed:
            err_console().print(f"{failed} file(s) could not be analysed")
            raise typer.Exit(EXIT_NOT_ANALYSED)

    @prov.command("sign")
    def sign_command(
        src: Annotated[Path, typer.Argument(help="Image to sign.", metavar="IN")],
        dest: Annotated[
            Path, typer.Argument(help="Where to write the signed copy.", metavar="OUT")
        ],
        cert: Annotated[
            Path,
            typer.Option(
                "--cert", help="PEM chain: signing certificate first, then intermediates."
            ),
        ],
        key: Annotated[Path, typer.Option("--key", help="PEM private key of the certificate.")],
        alg: Annotated[
            str, typer.Option("--alg", help="es256, es384, es512, ps256, ps384, ps512, ed25519.")
        ] = "es256",
        software_agent: Annotated[
            str,
            typer.Option("--software-agent", help="Generator name recorded in the manifest."),
        ] = "Sentinelle",
        watermark: Annotated[
            bool,
            typer.Option("--watermark", help="Also embed the SDXL-compatible invisible watermark."),
        ] = False,
        tsa_url: Annotated[
            str | None,
            typer.Option("--tsa-url", help="RFC 3161 time-stamp authority (default: none)."),
        ] = None,
    ) -> None:
        """Add a C2PA manifest (c2pa.created, trainedAlgorithmicMedia) to a generated image."""
        from ..provenance.sign import sign_file

        try:
            size = sign_file(
                src,
                dest,
                cert=cert,
                key=key,
                alg=alg,
                software_agent=software_agent,
                watermark=watermark,
                tsa_url=tsa_url,
            )
        except SentinelleError as e:
            raise fail(e) from None
        err_console().print(f"signed {escape(str(src))} -> {escape(str(dest))} ({size} bytes)")

    from .provenance_detector_cmd import register as register_detector

    register_detector(prov)
    app.add_typer(prov, name="provenance")
