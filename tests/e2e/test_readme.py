"""The README's examples run as written against a real server."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e
DEFAULT_BASE = "http://127.0.0.1:8000"


def blocks(language: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_the_curl_example_submits_polls_and_downloads(
    server: tuple[str, subprocess.Popen[bytes]], tmp_path: object
) -> None:
    base, _ = server
    script = next(b for b in blocks("bash") if "ID=$(curl" in b).replace(DEFAULT_BASE, base)

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=180,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert '"status":"succeeded"' in result.stdout
    assert '"shape":[3,3]' in result.stdout


def test_the_httpx_example_follows_a_job_to_the_end(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, _ = server
    script = blocks("python")[0].replace(DEFAULT_BASE, base)

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("succeeded")
    assert "2000 loss points" in result.stdout
    assert "W (3, 3)" in result.stdout
