"""The dashboard in headless Chromium against a real `descent serve`: submit through the form,
watch the curve grow to the end, read task results, overlay optimizers. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import screenshot

pytestmark = pytest.mark.e2e

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "random_search",
              "random_local_search"]  # fmt: skip
CURVE = (
    "() => { const d = document.querySelector('#loss-chart').data; "
    "return d && d.length ? [d[0].x.length, d[0].x[d[0].x.length - 1]] : [0, -1]; }"
)


def wait_finished(base: str, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = httpx.get(f"{base}/jobs/{job_id}", timeout=10).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not finish"
        time.sleep(0.2)


def submit(base: str, spec: dict[str, Any]) -> str:
    response = httpx.post(f"{base}/jobs", json=spec, timeout=10)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_a_job_submitted_through_the_form_is_watched_to_completion(served: str, page: Any) -> None:
    page.goto(f"{served}/#/new")
    page.wait_for_selector('[name="optimizer.type"]')
    types = page.eval_on_selector_all(
        '[name="optimizer.type"] option', "os => os.map(o => o.value)"
    )
    tasks = page.eval_on_selector_all('[name="task"] option', "os => os.map(o => o.value)")
    assert types == OPTIMIZERS
    assert tasks == ["train", "gradient_check", "step_size_sweep", "landscape"]
    assert page.input_value('[name="optimizer.learning_rate"]') == "0.001"  # the API's default
    page.select_option('[name="optimizer.type"]', "adam")
    assert page.input_value('[name="optimizer.beta2"]') == "0.999"

    page.fill('[name="name"]', "browser-adam")
    page.select_option('[name="dataset.name"]', "digits")
    page.select_option('[name="model.loss"]', "softmax")
    page.fill('[name="model.reg"]', "0.0001")
    page.fill('[name="optimizer.iterations"]', "60000")  # a few seconds: the page sees it grow
    page.fill('[name="optimizer.batch_size"]', "64")
    page.fill('[name="eval_every"]', "500")
    page.click("#submit-job")
    page.wait_for_url("**/#/jobs/*")
    job_id = page.url.rsplit("/", 1)[-1]

    growing: list[int] = []  # the curve's last step, as the page saw it while the job ran
    deadline = time.monotonic() + 120
    while page.inner_text("#job-status") != "succeeded":
        count, last_step = page.evaluate(CURVE)
        if page.inner_text("#job-status") == "running" and count and last_step not in growing:
            growing.append(last_step)
        assert time.monotonic() < deadline, "the job did not finish in the page"
        time.sleep(0.15)
    page.wait_for_function("() => document.querySelectorAll('#templates canvas').length === 10")
    # The status can turn before the last points are drawn: the curve must end at the last step.
    page.wait_for_function(f"() => ({CURVE})()[1] === 59999", timeout=30_000)
    screenshot(page, "dashboard-job")

    assert len(growing) >= 3 and growing == sorted(growing), growing
    assert page.inner_text("#job-progress-text") == "step 60000 of 60000"
    job = httpx.get(f"{served}/jobs/{job_id}").json()
    assert job["name"] == "browser-adam" and job["spec"]["optimizer"]["beta2"] == 0.999
    assert float(page.inner_text("#job-metrics tr:nth-child(4) td:last-child")) > 0.8


def test_the_job_list_shows_and_filters_jobs(served: str, page: Any) -> None:
    spec = {"dataset": {"name": "blobs"}, "optimizer": {"type": "sgd", "iterations": 50}}
    wait_finished(served, submit(served, spec))
    task_id = submit(served, {"task": "step_size_sweep", "dataset": {"name": "blobs"}})
    wait_finished(served, task_id)

    page.goto(f"{served}/#/")
    page.wait_for_selector(f'tr[data-job="{task_id}"]')
    page.select_option("#filter-task", "step_size_sweep")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#jobs-body tr[data-job]')]"
        ".every(r => r.children[2].textContent === 'step_size_sweep')"
    )
    page.select_option("#filter-status", "running")
    page.wait_for_selector("#jobs-body td[colspan]")  # none running: the empty-list note
    screenshot(page, "dashboard-list")


def test_task_results_are_drawn(served: str, page: Any) -> None:
    data = {"dataset": {"name": "digits"}, "model": {"loss": "softmax", "reg": 0.001}}
    check = submit(served, {**data, "task": "gradient_check", "dtype": "float64"})
    sweep = submit(served, {**data, "task": "step_size_sweep"})
    land = submit(served, {**data, "task": "landscape", "landscape": {"dims": 2, "points": 21}})
    line = submit(served, {**data, "task": "landscape", "landscape": {"points": 31}})
    for job_id in (check, sweep, land, line):
        assert wait_finished(served, job_id)["status"] == "succeeded"

    page.goto(f"{served}/#/jobs/{check}")
    page.wait_for_selector("#gradcheck-table tbody tr")
    assert page.locator("#gradcheck-table tbody tr").count() == 10
    assert page.inner_text("#result-body .pass") == "passed"

    page.goto(f"{served}/#/jobs/{sweep}")
    page.wait_for_function(
        "() => document.querySelector('#sweep-chart')?.layout?.xaxis.type === 'log'"
    )

    page.goto(f"{served}/#/jobs/{line}")
    page.wait_for_function(
        "() => document.querySelector('#landscape-chart')?.data?.[0].x.length === 31"
    )

    page.goto(f"{served}/#/jobs/{land}")
    page.wait_for_function(
        "() => document.querySelector('#landscape-chart')?.data?.[0].type === 'heatmap'"
    )
    z = page.evaluate("() => document.querySelector('#landscape-chart').data[0].z")
    assert len(z) == 21 and len(z[0]) == 21
    screenshot(page, "dashboard-landscape")


def test_the_notes_story_overlays_three_strategies(served: str, page: Any) -> None:
    page.goto(f"{served}/#/compare")
    page.click("#story")
    page.wait_for_url("**ids=*")
    ids = page.url.split("ids=", 1)[1].split(",")
    for job_id in ids:
        wait_finished(served, job_id)
    page.wait_for_function(
        "() => (document.querySelector('#compare-chart').data || [])"
        ".filter(t => t.x.length === 1000).length === 3",
        timeout=30_000,
    )
    names = page.evaluate("() => document.querySelector('#compare-chart').data.map(t => t.name)")
    assert [name.split(" · ")[1] for name in names] == [
        "random_search",
        "random_local_search",
        "sgd",
    ]
    screenshot(page, "dashboard-compare")


def test_the_loss_chart_switches_to_log_scale_smooths_and_zooms(served: str, page: Any) -> None:
    spec = {"dataset": {"name": "digits"}, "model": {"loss": "softmax", "reg": 0.001},
            "optimizer": {"type": "sgd", "learning_rate": 0.05, "batch_size": 32,
                          "iterations": 3000}, "log_every": 1}  # fmt: skip
    job_id = submit(served, spec)
    assert wait_finished(served, job_id)["status"] == "succeeded"
    page.goto(f"{served}/#/jobs/{job_id}")
    page.wait_for_function(f"() => ({CURVE})()[1] === 2999")
    raw = page.evaluate("() => document.querySelector('#loss-chart').data[0].y")

    page.check("#loss-log")
    page.wait_for_function(
        "() => document.querySelector('#loss-chart').layout.yaxis.type === 'log'"
    )

    page.evaluate(
        "() => { const s = document.querySelector('#loss-smooth'); s.value = '0.9';"
        " s.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function(
        "() => document.querySelector('#loss-chart').data.some(t => t.name === 'loss (raw)')"
    )
    traces = page.evaluate(
        "() => Object.fromEntries(document.querySelector('#loss-chart').data"
        ".map(t => [t.name, t.y]))"
    )
    assert traces["loss (raw)"] == raw
    smoothed = traces["loss"]
    assert smoothed[0] == pytest.approx(raw[0])  # debiased: the first point is not dragged to 0
    assert smoothed[1] == pytest.approx((0.9 * 0.1 * raw[0] + 0.1 * raw[1]) / (1 - 0.9**2))
    assert page.inner_text("#loss-smooth-value") == "0.9"

    # A drag-zoom on steps 1000..2000 reads that window again from the server.
    page.evaluate(
        "() => Plotly.relayout(document.querySelector('#loss-chart'),"
        " {'xaxis.range[0]': 1000, 'xaxis.range[1]': 2000})"
    )
    window = (
        "() => { const t = document.querySelector('#loss-chart').data"
        ".find(t => t.name === 'loss'); return [t.x[0], t.x[t.x.length - 1], t.x.length]; }"
    )
    page.wait_for_function(f"() => ({window})()[0] >= 1000 && ({window})()[1] <= 2000")
    first, last, count = page.evaluate(window)
    assert (first, last, count) == (1000, 2000, 1001)  # under max_points: every step
    screenshot(page, "dashboard-loss-controls")

    page.click("#loss-reset")
    page.wait_for_function(f"() => ({window})()[0] === 0 && ({window})()[1] === 2999")
