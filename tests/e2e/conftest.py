"""A real `descent serve` process on a free port, with its own SQLite database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(
    port: int,
    env: dict[str, str],
    *,
    workers: int,
    cwd: Path | None = None,
    stderr: IO[bytes] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `descent serve` and wait until /readyz answers; kill it if it never does."""
    descent = Path(sys.executable).parent / "descent"
    command = [str(descent), "serve", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, cwd=cwd, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError("descent serve did not become ready")
        time.sleep(0.1)


def stop_serve(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM (serve stops its workers on it), then a kill if it has not exited in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "DESCENT_DATABASE_URL": f"sqlite:///{tmp_path / 'descent.db'}",
        "DESCENT_DATA_DIR": str(tmp_path / "data"),
        "DESCENT_POLL_SECONDS": "0.05",
        "DESCENT_LOG_LEVEL": "WARNING",
    }
    process, base = start_serve(port, env, workers=1, cwd=tmp_path)
    yield base, process
    stop_serve(process)
