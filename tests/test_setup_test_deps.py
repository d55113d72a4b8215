"""scripts/setup-test-deps, the first step of `make test`: what it says and exports when a
system package cannot be installed, and that the browser tests then skip with that reason.

Installation itself is exercised by CI (`.ci/run` -> `make test` on a fresh machine); here
``SENTINELLE_TEST_NO_INSTALL=1`` stands for a machine without root, so nothing is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "setup-test-deps"
DUMP_ENV = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]


def _run(env: dict[str, str], *cmd: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLE_TEST_")}
    base.pop("SENTINELLE_CHROMIUM", None)
    return subprocess.run(
        [str(SCRIPT), *cmd], env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def test_missing_browser_without_root_is_one_line_and_skips(tmp_path: Path) -> None:
    env = {
        "SENTINELLE_TEST_NO_INSTALL": "1",
        "SENTINELLE_CHROMIUM": str(tmp_path / "no-chromium"),
        "SENTINELLE_TEST_POSTGRES_URL": "postgresql+psycopg://u@db.invalid/x",  # not touched
    }
    res = _run(env, *DUMP_ENV)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("setup-test-deps: cannot install Chromium at ")
    assert "SENTINELLE_TEST_NO_INSTALL=1" in lines[0] and "skipped" in lines[0]
    got = json.loads(res.stdout)
    assert got["SENTINELLE_TEST_BROWSER"] == "off"
    assert got["SENTINELLE_TEST_SKIP_REASON"] in lines[0]
    assert got["SENTINELLE_TEST_POSTGRES_URL"] == env["SENTINELLE_TEST_POSTGRES_URL"]


def test_nothing_missing_says_nothing_and_passes_exit_code(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    env = {
        "SENTINELLE_TEST_NO_INSTALL": "1",
        "SENTINELLE_CHROMIUM": str(fake),
        "SENTINELLE_TEST_POSTGRES_URL": "off",
        "SENTINELLE_TEST_JAVA": "off",
    }
    res = _run(env, *DUMP_ENV)
    assert res.returncode == 0 and res.stderr == ""
    got = json.loads(res.stdout)
    assert "SENTINELLE_TEST_SKIP_REASON" not in got and "SENTINELLE_TEST_BROWSER" not in got
    assert _run(env, "sh", "-c", "exit 3").returncode == 3  # the suite's verdict is kept


def test_browser_tests_skip_with_the_reason(tmp_path: Path) -> None:
    env = {
        "SENTINELLE_TEST_NO_INSTALL": "1",
        "SENTINELLE_CHROMIUM": str(tmp_path / "no-chromium"),
        "SENTINELLE_TEST_POSTGRES_URL": "off",
        "SENTINELLE_TEST_JAVA": "off",
    }
    res = _run(
        env, sys.executable, "-m", "pytest", "-q", "-n", "0", "-rs", "-p", "no:cacheprovider",
        str(REPO / "tests" / "console" / "test_console_browser.py"),
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-2000:]
    assert "passed" not in res.stdout and "skipped" in res.stdout
    assert "cannot install Chromium at" in res.stdout  # the reason shown per skipped test
