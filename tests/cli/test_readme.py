"""The README's "Python client" and "Command line" examples run as written against a server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli.conftest import cli_env
from tests.e2e.test_readme import blocks

pytestmark = pytest.mark.e2e


def test_the_python_client_example(live: str, tmp_path: Path) -> None:
    script = next(b for b in blocks("python") if "DescentClient" in b)

    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=cli_env(live),
        cwd=tmp_path,
        timeout=180,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("step ")
    assert "step 1999: loss " in result.stdout
    assert lines[-3].startswith("succeeded ")
    assert lines[-2] == "2000 loss points, W (3, 3)"
    assert lines[-1] == "404 No job with id 'no-such-job'"


def test_the_command_line_example(live: str, tmp_path: Path) -> None:
    script = next(b for b in blocks("bash") if "descent submit" in b)
    env = cli_env(live)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=180,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "5000/5000" in result.stderr
    assert "error: 409 Conflict: " in result.stderr
    assert result.stdout.rstrip().endswith("exit 1")
    assert len((tmp_path / "loss.csv").read_text().splitlines()) == 5001
    assert np.load(tmp_path / "W.npy", allow_pickle=False).shape == (3, 3)
