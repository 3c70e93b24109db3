"""What the dashboard's pages look like in headless Chromium against a real `descent serve`: the
job list fits a 1,400 px window and names uploads, axis titles and sweep markers stay inside their
charts, and a sweep goes by the same short id on every page."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import numpy as np
import pytest

from tests.dashboard.conftest import screenshot
from tests.dashboard.test_browser import submit, wait_finished
from tests.dashboard.test_sweeps import start, wait_page_finished, wait_sweep

pytestmark = pytest.mark.e2e

# The module's server starts its worker afresh, and the first job waits for it to warm up.
WARM_UP = 600

UPLOAD_NAME = "measurements-of-a-long-summer-season-by-the-lake"
# Every box in viewport coordinates as [left, top, right, bottom].
BOX = (
    "const box = (n) => { const r = n.getBoundingClientRect();"
    " return [r.left, r.top, r.right, r.bottom]; };"
)
# The y axis title and tick labels of the learning-rate chart, and the chart's SVG.
LR_BOXES = (
    "() => { " + BOX + " const div = document.querySelector('#lr-chart'); return {"
    "svg: box(div.querySelector('svg.main-svg')), title: box(div.querySelector('.g-ytitle text')),"
    "ticks: [...div.querySelectorAll('.ytick text')].map(box)}; }"
)
# Every pruned marker of the sweep chart with its subplot's area, and every tick label and title.
SWEEP_BOXES = (
    "() => { " + BOX + " const div = document.querySelector('#sweep-metric-chart');"
    "const full = div._fullLayout; const svg = div.querySelector('svg.main-svg');"
    "const top = svg.getBoundingClientRect(); const markers = [];"
    "div.querySelectorAll('.scatterlayer .trace').forEach((g, t) => {"
    "  const trace = div.data[t];"
    "  const xa = full[trace.xaxis.replace('x', 'xaxis')];"
    "  const ya = full[trace.yaxis.replace('y', 'yaxis')];"
    "  const area = [top.left + xa._offset, top.top + ya._offset,"
    "                top.left + xa._offset + xa._length, top.top + ya._offset + ya._length];"
    "  g.querySelectorAll('path.point').forEach((p, i) => markers.push("
    "    {symbol: trace.marker.symbol[i], box: box(p), area})); });"
    "return {svg: box(svg), markers,"
    "  ticks: [...div.querySelectorAll('g[class$=\"tick\"] text')].map(box),"
    "  titles: [...div.querySelectorAll('g[class$=\"title\"] text')]"
    "    .filter(t => t.textContent).map(t => [t.textContent, box(t)])}; }"
)


def overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(inner: list[float], outer: list[float]) -> bool:
    return (
        inner[0] >= outer[0]
        and inner[1] >= outer[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )


def upload(base: str, name: str) -> str:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, X_train=X, y_train=y, X_val=X[:30], y_val=y[:30])
    files = {"file": ("lake.npz", buffer.getvalue())}
    response = httpx.post(f"{base}/datasets", files=files, data={"name": name}, timeout=30)
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


def test_the_job_list_names_uploads_and_fits_a_1400_px_window(served: str, page: Any) -> None:
    dataset_id = upload(served, UPLOAD_NAME)
    spec = {"name": "a-job-on-the-uploaded-lake-measurements-with-a-long-name",
            "dataset": {"id": dataset_id}, "optimizer": {"type": "random_local_search",
                                                         "iterations": 50}}  # fmt: skip
    job_id = submit(served, spec)
    wait_finished(served, job_id, timeout=WARM_UP)
    task_id = submit(served, {"task": "step_size_sweep", "dataset": {"name": "blobs"}})
    wait_finished(served, task_id, timeout=WARM_UP)

    assert page.viewport_size["width"] == 1400
    page.goto(f"{served}/#/")
    data = f'tr[data-job="{job_id}"] td:nth-child(5)'
    page.wait_for_function(
        "([sel, name]) => document.querySelector(sel)?.textContent === name",
        arg=[data, UPLOAD_NAME],
    )
    page.wait_for_selector(f'tr[data-job="{task_id}"]')
    screenshot(page, "dashboard-list-upload")

    cell = page.eval_on_selector(
        data,
        "c => ({text: c.textContent, title: c.title, cut: c.scrollWidth > c.clientWidth,"
        " overflow: getComputedStyle(c).textOverflow})",
    )
    assert dataset_id not in cell["text"] and UPLOAD_NAME in cell["title"]
    assert cell["cut"] and cell["overflow"] == "ellipsis"  # a long name ends in an ellipsis

    sizes = page.evaluate(
        "() => { const t = document.querySelector('#jobs-table');"
        " const th = [...t.querySelectorAll('th')].find(h => h.textContent === 'Created');"
        " const td = t.querySelector('#jobs-body tr td:last-child');"
        " return {table: t.scrollWidth, container: t.parentElement.clientWidth,"
        " right: t.getBoundingClientRect().right, window: window.innerWidth,"
        " page: document.documentElement.scrollWidth,"
        " header: [th.getBoundingClientRect().right, th.scrollWidth, th.clientWidth],"
        " created: [td.getBoundingClientRect().right, td.scrollWidth, td.clientWidth]}; }"
    )
    assert sizes["table"] <= sizes["container"] <= sizes["window"], sizes
    assert sizes["right"] <= sizes["window"] and sizes["page"] <= sizes["window"], sizes
    for right, needed, width in (sizes["header"], sizes["created"]):
        assert right <= sizes["window"] and needed <= width, sizes  # whole, not cut


@pytest.mark.parametrize("width", [1400, 560])
def test_the_learning_rate_title_stays_inside_its_chart(served: str, page: Any, width: int) -> None:
    # A slowly decaying rate: tick labels with many digits, which push the title to the left.
    spec = {"dataset": {"name": "blobs"},
            "optimizer": {"type": "sgd", "learning_rate": 0.0012345, "iterations": 2000,
                          "lr_schedule": {"type": "exponential", "k": 1e-6}}}  # fmt: skip
    job_id = submit(served, spec)
    assert wait_finished(served, job_id, timeout=WARM_UP)["status"] == "succeeded"
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{served}/#/jobs/{job_id}")
    page.wait_for_selector("#lr-chart .g-ytitle text")
    page.wait_for_function("() => document.querySelectorAll('#lr-chart .ytick text').length > 2")
    boxes = page.evaluate(LR_BOXES)
    assert inside(boxes["title"], boxes["svg"]), boxes
    assert not any(overlap(boxes["title"], tick) for tick in boxes["ticks"]), boxes


def test_pruned_trials_and_axis_titles_stay_inside_the_sweep_chart(served: str, page: Any) -> None:
    # Successive halving ranked by loss: pruned trials stop at an early rung, and the low
    # losses put points at the bottom of the metric axis, just above the x axis' tick labels.
    body = {"name": "halving-by-loss",
            "base": {"dataset": {"name": "digits"}, "model": {"loss": "softmax"},
                     "optimizer": {"type": "sgd", "iterations": 900, "batch_size": 64},
                     "eval_every": 100},
            "method": "random", "trials": 9, "metric": "loss",
            "space": {"optimizer.learning_rate": {"log_uniform": [1e-5, 1.0]},
                      "model.reg": {"values": [0, 0.001, 0.01]},
                      "optimizer.batch_size": {"values": [32, 64]}},
            "successive_halving": {"eta": 3, "min_steps": 100}}  # fmt: skip
    sweep_id = start(served, body)
    sweep = wait_sweep(served, sweep_id, timeout=WARM_UP)
    assert sweep["counts"]["pruned"] > 0
    page.goto(f"{served}/#/sweeps/{sweep_id}")
    wait_page_finished(page)
    page.wait_for_function(
        "() => document.querySelectorAll('#sweep-metric-chart path.point').length > 0"
    )
    boxes = page.evaluate(SWEEP_BOXES)
    screenshot(page, "dashboard-sweep-pruned")

    pruned = [m for m in boxes["markers"] if m["symbol"] == "diamond-open"]
    assert pruned
    for marker in pruned:
        assert inside(marker["box"], marker["area"]), marker
        assert not any(overlap(marker["box"], tick) for tick in boxes["ticks"]), marker
    titles = dict(boxes["titles"])
    assert {"loss", "optimizer.learning_rate"} <= set(titles)
    for text, box in titles.items():
        assert inside(box, boxes["svg"]), (text, box, boxes["svg"])


def test_a_sweep_goes_by_the_same_short_id_in_the_list_and_on_its_page(
    served: str, page: Any
) -> None:
    body = {"base": {"dataset": {"name": "blobs"}, "optimizer": {"type": "sgd", "iterations": 50}},
            "method": "grid", "space": {"model.reg": {"values": [0, 0.01]}}}  # fmt: skip
    sweep_id = start(served, body)  # unnamed: both pages show its short id
    wait_sweep(served, sweep_id, timeout=WARM_UP)
    page.goto(f"{served}/#/sweeps")
    link = f"#sweeps-body tr[data-sweep='{sweep_id}'] td:first-child a"
    page.wait_for_selector(link)
    listed = page.inner_text(link)
    assert listed and listed in sweep_id

    page.click(link)
    page.wait_for_function(
        "id => document.querySelector('#sweep-title').textContent.includes(id.slice(-4))",
        arg=sweep_id,
    )
    assert page.inner_text("#sweep-title") == f"sweep {listed}"
    deadline = time.monotonic() + 30
    while page.locator("#sweep-table tbody tr").count() < 2:
        assert time.monotonic() < deadline, "the leaderboard did not fill"
        time.sleep(0.1)
    job_id = page.get_attribute("#sweep-table tbody tr:first-child", "data-job")
    trial = page.inner_text("#sweep-table tbody tr:first-child td:last-child a")
    page.goto(f"{served}/#/jobs/{job_id}")
    page.wait_for_function("() => document.querySelector('#job-title').textContent")
    job = httpx.get(f"{served}/jobs/{job_id}").json()
    if not job["name"]:  # a named trial's page shows its name instead
        assert page.inner_text("#job-title") == f"train {trial}"
