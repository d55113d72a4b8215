"""Shared helper for benchmarks: describe the machine and append to ``bench/RESULTS.md``.

Every benchmark prints its numbers and then calls :func:`append_results` with a
Markdown body. The section heading names the benchmark, the date and the machine,
so results from different machines are never confused::

    from _machine import append_results
    append_results("PDQ hashing throughput", table_markdown)

Only appends: earlier sections (yours or other benchmarks') are never rewritten.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
OUT_DIR = BENCH_DIR / "out"

_LIBS = ("numpy", "pillow", "pdqhash", "av", "numba", "faiss-cpu", "threatexchange")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024**2:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown RAM"


def _lib_versions(libs: tuple[str, ...] = _LIBS) -> str:
    parts = []
    for name in libs:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(parts)


def machine_info() -> str:
    """One line: CPU model, cores, RAM, OS, Python and key library versions."""
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        usable = cores
    return (
        f"CPU: {_cpu_model()}, {usable} cores usable ({cores} online), RAM {_ram_gib()}; "
        f"{platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {_lib_versions()}"
    )


def load_average() -> str:
    """``1/5/15``-minute load averages: the machine is shared, so say how busy it was."""
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not available
        return "unknown"


HEADER = (
    "# Benchmark results\n\n"
    "Sections are appended by the scripts in `bench/` (newest last); the summary table "
    "at the top is maintained by hand.\n"
)


def append_results(title: str, markdown_body: str) -> None:
    """Append ``## title (date)`` + machine line + body to ``bench/RESULTS.md``."""
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    section = (
        f"\n## {title} ({now})\n\n"
        f"Machine: {machine_info()}; load average at the end {load_average()}\n\n"
        f"Command: `{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`\n\n"
        f"{markdown_body.strip()}\n"
    )
    if not RESULTS_PATH.exists():
        RESULTS_PATH.write_text(HEADER)
    with RESULTS_PATH.open("a", encoding="utf-8") as fh:
        fh.write(section)
    print(f"appended '{title}' to {RESULTS_PATH}")
