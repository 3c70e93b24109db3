"""`descent submit/jobs/show/loss/weights/cancel` driven as a user would, against a real server."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from service.cli import app
from service.client import DescentClient
from tests.cli.conftest import DESCENT, cli_env, descent
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

ITERATIONS = 3000
SPEC: dict[str, Any] = {
    "name": "cli-blobs",
    "dataset": {"name": "blobs"},
    "model": {"loss": "svm", "reg": 0.001},
    "optimizer": {"type": "sgd", "learning_rate": 0.1, "batch_size": 32, "iterations": ITERATIONS},
    "eval_every": 500,
}


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout


def test_submit_follow_to_completion_then_inspect_the_job(live: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))

    followed = descent("submit", str(spec), "--follow", url=live)

    assert followed.returncode == 0, followed.stderr
    job_id = followed.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", job_id)
    assert f"{ITERATIONS}/{ITERATIONS}" in followed.stderr  # the bar's last state
    assert "succeeded in" in followed.stderr
    assert "val_accuracy" in followed.stderr

    shown = descent("show", job_id, url=live)
    job = json.loads(shown.stdout)
    assert (job["id"], job["status"], job["name"]) == (job_id, "succeeded", "cli-blobs")

    table = descent("jobs", "--limit", "5", url=live)
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["ID", "STATUS", "TASK"]
    assert any(row.split()[:3] == [job_id, "succeeded", "train"] for row in rows)
    nothing = descent("jobs", "--status", "failed", url=live)
    assert (nothing.returncode, nothing.stdout, nothing.stderr.strip()) == (0, "", "no jobs")

    with DescentClient(live) as client:
        points = client.loss(job_id)
        W = client.weights(job_id)
    csv = descent("loss", job_id, "--csv", url=live).stdout.splitlines()
    assert csv[0] == "step,loss"
    assert len(csv) == ITERATIONS + 1
    assert [(int(s), float(v)) for s, v in (line.split(",") for line in csv[1:])] == [
        (p.step, p.loss) for p in points
    ]
    summary = descent("loss", job_id, url=live).stdout
    assert summary.startswith(f"{ITERATIONS} points, steps 0..{ITERATIONS - 1}")

    saved = descent("weights", job_id, "-o", str(tmp_path / "W.npy"), url=live)
    assert saved.returncode == 0
    assert saved.stdout.strip() == f"wrote {tmp_path / 'W.npy'} (3 x 3 float32)"
    np.testing.assert_array_equal(np.load(tmp_path / "W.npy", allow_pickle=False), W)

    finished = descent("cancel", job_id, url=live)
    assert finished.returncode == 1
    assert finished.stderr.startswith("error: 409 Conflict: ")
    no_traceback(finished)


def test_follow_ends_with_exit_code_1_when_the_job_is_cancelled(live: str) -> None:
    long_spec = {**SPEC, "optimizer": {**SPEC["optimizer"], "iterations": 1_000_000}}
    with subprocess.Popen(
        [DESCENT, "submit", "-", "--follow"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(live),
    ) as follower:
        assert follower.stdin is not None
        assert follower.stdout is not None
        assert follower.stderr is not None
        try:
            follower.stdin.write(json.dumps(long_spec))
            follower.stdin.close()
            job_id = follower.stdout.readline().strip()

            cancelled = descent("cancel", job_id, url=live)

            assert cancelled.returncode == 0, cancelled.stderr
            assert job_id in cancelled.stdout
            follower.wait(timeout=60)
            stderr = follower.stderr.read()
        finally:
            if follower.poll() is None:
                follower.kill()
    assert follower.returncode == 1
    assert "cancelled" in stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["show", "nope"], None, "error: 404 Not Found: No job with id 'nope'"),
        (["loss", "nope", "--csv"], None, "error: 404 Not Found: No job with id 'nope'"),
        (["weights", "nope"], None, "error: 404 Not Found: No job with id 'nope'"),
        (["cancel", "nope"], None, "error: 404 Not Found: No job with id 'nope'"),
        (
            ["submit", "-"],
            json.dumps({**SPEC, "optimizer": {"type": "sgd", "learning_rate": -1}}),
            "  body.optimizer.sgd.learning_rate: Input should be greater than 0",
        ),
        (["submit", "-"], json.dumps({"optimizer": {"type": "sgd"}}), "  body.dataset: "),
        (["submit", "-"], "{not json", "error: stdin is not valid JSON: "),
        (["submit", "-"], "[1, 2]", "error: stdin must hold a JSON object (a JobSpec)"),
        (["submit", "missing.json"], None, "error: cannot read missing.json: "),
    ],
)
def test_errors_are_one_clear_message_and_exit_code_1(
    live: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str | None,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args, input=stdin, env=cli_env(live))  # in-process: faster

    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""
    assert isinstance(result.exception, SystemExit)  # typer.Exit, not an uncaught error


def test_an_api_error_in_a_subprocess_has_no_traceback(live: str) -> None:
    result = descent("show", "nope", url=live)

    assert result.returncode == 1
    assert result.stderr == "error: 404 Not Found: No job with id 'nope'\n"
    no_traceback(result)


def test_url_option_env_and_an_unreachable_server(live: str) -> None:
    runner = CliRunner()
    unset = {"DESCENT_URL": None, "DESCENT_API_TOKEN": None}
    by_option = runner.invoke(app, ["jobs", "--url", live, "--limit", "1"], env=unset)
    assert by_option.exit_code == 0, by_option.stderr

    dead = f"http://127.0.0.1:{free_port()}"
    unreachable = runner.invoke(app, ["show", "x"], env={"DESCENT_URL": dead})
    assert unreachable.exit_code == 1
    assert unreachable.stderr.startswith(f"error: cannot reach {dead}: ")

    usage = runner.invoke(app, ["jobs", "--status", "sleeping"], env={"DESCENT_URL": live})
    assert usage.exit_code == 2  # a usage error, before any request
    assert "sleeping" in usage.stderr


def test_weights_to_an_unwritable_path_is_an_error(live: str, tmp_path: Path) -> None:
    with DescentClient(live) as client:
        job = client.submit({**SPEC, "optimizer": {**SPEC["optimizer"], "iterations": 50}})
        client.wait(job.id, timeout=60)
    result = descent("weights", job.id, "-o", str(tmp_path / "no" / "W.npy"), url=live)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot write {tmp_path / 'no' / 'W.npy'}: ")
