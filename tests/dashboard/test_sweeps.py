"""Sweeps in the dashboard, in headless Chromium against a real `descent serve`: a sweep's page
followed to the end (leaderboard, metric-vs-parameter chart), the list, the JSON form with the
API's errors, cancel, and the top trials' curves in the compare view. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import screenshot

pytestmark = pytest.mark.e2e

TERMINAL = ("succeeded", "failed", "cancelled")
# Ten short trials on digits (a couple of seconds): learning rates over eight decades, and at
# lr 1e4 with reg 0.01 each step multiplies W by about 1 - lr·reg = -99, so that trial diverges
# and the page has a failed trial to show beside the ranked ones.
GRID: dict[str, Any] = {
    "name": "digits-lr-reg",
    "base": {
        "dataset": {"name": "digits"},
        "model": {"loss": "softmax"},
        "optimizer": {"type": "sgd", "iterations": 300, "batch_size": 64},
        "eval_every": 100,
    },
    "method": "grid",
    "space": {
        "optimizer.learning_rate": {"log_uniform": [1e-4, 1e4], "num": 5},
        "model.reg": {"values": [0, 0.01]},
    },
    "metric": "val_accuracy",
}
ROWS = (
    "() => [...document.querySelectorAll('#sweep-table tbody tr')].map(r => ({"
    "job: r.dataset.job, rank: r.dataset.rank ? Number(r.dataset.rank) : null, "
    "status: r.dataset.status, cells: [...r.children].map(c => c.textContent)}))"
)
TRACES = (
    "() => document.querySelector('#sweep-metric-chart').data.map(t => ({name: t.name, "
    "ids: t.customdata, symbols: t.marker.symbol}))"
)


def start(base: str, body: dict[str, Any]) -> str:
    response = httpx.post(f"{base}/sweeps", json=body, timeout=30)
    assert response.status_code == 202, response.text
    sweep_id: str = response.json()["id"]
    return sweep_id


def wait_sweep(base: str, sweep_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        sweep: dict[str, Any] = httpx.get(f"{base}/sweeps/{sweep_id}", timeout=10).json()
        if sweep["status"] in TERMINAL:
            return sweep
        assert time.monotonic() < deadline, f"sweep {sweep_id} did not finish"
        time.sleep(0.2)


def wait_page_finished(page: Any) -> str:
    page.wait_for_function(
        "() => ['succeeded', 'failed', 'cancelled'].includes(document.body.dataset.sweepStatus)",
        timeout=120_000,
    )
    status: str = page.inner_text("#sweep-status")
    return status


def test_a_sweep_page_follows_the_trials_to_the_final_leaderboard(served: str, page: Any) -> None:
    sweep_id = start(served, GRID)
    page.goto(f"{served}/#/sweeps/{sweep_id}")  # at once: the page has to follow it live
    assert wait_page_finished(page) == "succeeded"
    sweep = httpx.get(f"{served}/sweeps/{sweep_id}").json()
    page.wait_for_function("n => document.querySelectorAll('#sweep-table tbody tr').length === n",
                           arg=sweep["n_trials"])  # fmt: skip
    rows = page.evaluate(ROWS)
    traces = page.evaluate(TRACES)
    page.wait_for_function(  # the progress bar's transition, for the screenshot
        "() => { const bar = document.querySelector('#sweep-progress-bar'); "
        "return bar.offsetWidth === bar.parentNode.clientWidth; }"
    )
    axes = page.evaluate(
        "() => { const l = document.querySelector('#sweep-metric-chart').layout; "
        "return [l.xaxis.type, l.xaxis2.type]; }"
    )
    screenshot(page, "dashboard-sweep")

    leaderboard = sweep["leaderboard"]
    ranked = [row for row in rows if row["rank"] is not None]
    assert len(leaderboard) >= 2
    assert [row["job"] for row in ranked] == [entry["job_id"] for entry in leaderboard]
    assert [row["rank"] for row in ranked] == list(range(1, len(leaderboard) + 1))
    assert rows[: len(ranked)] == ranked  # the ranked trials come first
    head = page.eval_on_selector_all("#sweep-table th", "hs => hs.map(h => h.textContent)")
    value_at = head.index("val_accuracy")
    shown = [float(row["cells"][value_at]) for row in ranked]
    assert shown == sorted(shown, reverse=True)  # best first: accuracy is maximized
    assert shown == pytest.approx([entry["value"] for entry in leaderboard], abs=5e-4)
    for row, entry in zip(ranked, leaderboard, strict=True):
        lr, reg = (float(row["cells"][head.index(path)]) for path in GRID["space"])
        assert lr == pytest.approx(entry["params"]["optimizer.learning_rate"], rel=1e-3)
        assert reg == pytest.approx(entry["params"]["model.reg"], abs=1e-9)
    link = f"#sweep-table tr[data-rank='1'] a[href='#/jobs/{leaderboard[0]['job_id']}']"
    assert page.locator(link).count() == 1

    # One trace per swept parameter, each with a point for every trial that has a value, the
    # best a star and the failed (diverged) ones crosses; eight decades of learning rate: log x.
    assert [trace["name"] for trace in traces] == list(GRID["space"])
    assert axes == ["log", "linear"]
    symbol = dict(zip(traces[0]["ids"], traces[0]["symbols"], strict=True))
    assert symbol[leaderboard[0]["job_id"]] == "star"
    failed = [job["id"] for job in sweep["jobs"] if job["status"] == "failed"]
    assert failed
    assert all(symbol[job_id] == "x" for job_id in failed)
    assert all(row["status"] == "failed" and row["rank"] is None
               for row in rows if row["job"] in failed)  # fmt: skip


def test_the_list_the_form_and_the_compare_button(
    served: str, page: Any, expected_errors: list[str]
) -> None:
    expected_errors.append("status of 422")  # the invalid sweep submitted below
    page.goto(f"{served}/#/sweeps")
    page.wait_for_function("() => document.querySelector('#sweep-body').value.length > 0")
    example = json.loads(page.input_value("#sweep-body"))
    openapi = httpx.get(f"{served}/openapi.json").json()
    assert example == openapi["components"]["schemas"]["SweepRequest"]["examples"][0]
    page.evaluate("() => { document.querySelector('#sweep-new').open = true; }")

    # The API's problem+json errors, one line per bad path.
    bad = {**example, "space": {"optimizer.learning_rate": {"log_uniform": [1.0, 0.1]}}}
    page.fill("#sweep-body", json.dumps(bad))
    page.click("#submit-sweep")
    page.wait_for_function("() => document.querySelector('#sweep-form-errors').textContent")
    assert "space.optimizer.learning_rate" in page.inner_text("#sweep-form-errors")
    page.fill("#sweep-body", "{not json")
    page.click("#submit-sweep")
    page.wait_for_function(
        "() => document.querySelector('#sweep-form-errors').textContent.startsWith('Not valid')"
    )

    small = {**example, "name": "from-the-form", "trials": 4}
    page.fill("#sweep-body", json.dumps(small, indent=2))
    page.click("#submit-sweep")
    page.wait_for_url("**/#/sweeps/*")
    sweep_id = page.url.rsplit("/", 1)[-1]
    assert wait_page_finished(page) == "succeeded"
    sweep = wait_sweep(served, sweep_id)
    assert sweep["name"] == "from-the-form" and sweep["n_trials"] == 4

    page.select_option("#sweep-top", "3")
    page.click("#sweep-compare")
    page.wait_for_url("**/#/compare?ids=*")
    top = [entry["job_id"] for entry in sweep["leaderboard"][:3]]
    assert page.url.split("ids=", 1)[1].split(",") == top
    page.wait_for_function(
        "n => (document.querySelector('#compare-chart').data || []).length === n", arg=len(top)
    )

    page.goto(f"{served}/#/sweeps")
    row = f"#sweeps-body tr[data-sweep='{sweep_id}']"
    page.wait_for_selector(f"{row}[data-status='succeeded']")
    assert "4 succeeded" in page.inner_text(f"{row} td.counts")
    screenshot(page, "dashboard-sweeps")


def test_a_running_sweep_is_cancelled_from_its_page(served: str, page: Any) -> None:
    base = {**GRID["base"], "optimizer": {"type": "sgd", "iterations": 200_000}}
    long = {**GRID, "name": "to-cancel", "method": "random", "trials": 3, "base": base,
            "space": {"optimizer.learning_rate": {"log_uniform": [1e-3, 1e-2]}}}  # fmt: skip
    sweep_id = start(served, long)
    page.goto(f"{served}/#/sweeps/{sweep_id}")
    page.wait_for_selector("#sweep-cancel:not([hidden])")
    page.click("#sweep-cancel")

    assert wait_page_finished(page) == "cancelled"
    assert page.is_hidden("#sweep-cancel")
    rows = page.evaluate(ROWS)
    assert [row["status"] for row in rows] == ["cancelled"] * 3
    assert all(row["rank"] is None for row in rows)
