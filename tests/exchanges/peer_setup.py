"""Start a real ``sentinelle serve`` publisher instance for the peer-sharing tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Instance:
    url: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start(db_url: str, tmp: Path, **env: str) -> Instance:
    port = free_port()
    log = tmp / f"serve-{port}.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLE_")}
    environ.update(
        SENTINELLE_DATABASE_URL=db_url, SENTINELLE_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1", **env
    )
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentinelle.cli.main", "serve", "--port", str(port)],
            env=environ,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    inst = Instance(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{inst.url}/v1/health", timeout=2).status_code == 200:
                return inst
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    inst.stop()
    raise RuntimeError(f"serve did not start: {log.read_text(errors='replace')[-3000:]}")
