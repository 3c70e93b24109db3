// The job list: filters, live status and progress (polling GET /jobs), selection for comparing.

import { api } from "./api.js";
import { $, Poller, badge, el, fmt, progressBar, shortId, when } from "./util.js";

const REFRESH_MS = 1000;
// A job names an upload only by its id: the list reads the names from GET /datasets again when it
// meets an id it does not know, but no more often than this (a deleted upload stays unknown).
const DATASETS_MS = 10000;

// The data column's text: a built-in's name, an upload's stored name (its short id until known).
export function datasetLabel(ref, names) {
  if (ref?.name) return ref.name;
  if (ref?.id) return names.get(ref.id) ?? shortId(ref.id);
  return "–";
}

// A cell whose text is cut with an ellipsis when the column is too narrow, whole on hover.
function clipped(content, title) {
  return el("td", { class: "clip", title }, content);
}

export class JobList {
  constructor() {
    this.selected = new Set();
    this.datasets = new Map(); // upload id -> name
    this.datasetsRead = -Infinity;
    this.poller = new Poller((live) => this.refresh(live));
    $("#filter-status").addEventListener("change", () => this.poller.start());
    $("#filter-task").addEventListener("change", () => this.poller.start());
    $("#compare-selected").addEventListener("click", () => {
      window.location.hash = `#/compare?ids=${[...this.selected].join(",")}`;
    });
  }

  show() {
    this.poller.start();
  }

  hide() {
    this.poller.stop();
  }

  async refresh(live) {
    try {
      const page = await api.get("/jobs", {
        status: $("#filter-status").value,
        task: $("#filter-task").value,
        limit: 100,
      });
      await this.readDatasetNames(page.items);
      if (!live()) return null;
      this.render(page.items);
      $("#connection").textContent = "";
    } catch (error) {
      $("#connection").textContent = `API unreachable: ${error.message}`;
    }
    return REFRESH_MS;
  }

  async readDatasetNames(jobs) {
    const unknown = jobs.some((job) => job.spec?.dataset?.id && !this.datasets.has(job.spec.dataset.id));
    if (!unknown || Date.now() - this.datasetsRead < DATASETS_MS) return;
    this.datasetsRead = Date.now();
    try {
      const page = await api.get("/datasets");
      for (const item of page.items) this.datasets.set(item.id, item.name);
    } catch {
      // The short id stands in until the next read.
    }
  }

  render(jobs) {
    const rows = jobs.map((job) => this.row(job));
    $("#jobs-body").replaceChildren(...rows);
    if (!jobs.length) {
      $("#jobs-body").append(el("tr", {}, el("td", { colspan: 10, class: "muted", text: "No jobs yet: submit one under New job." })));
    }
    $("#jobs-count").textContent = `${jobs.length} job${jobs.length === 1 ? "" : "s"}`;
    $("#compare-selected").disabled = this.selected.size < 1;
  }

  row(job) {
    const check = el("input", { type: "checkbox", "aria-label": `select ${job.id}` });
    check.checked = this.selected.has(job.id);
    check.addEventListener("change", () => {
      if (check.checked) this.selected.add(job.id);
      else this.selected.delete(job.id);
      $("#compare-selected").disabled = this.selected.size < 1;
    });
    const { step, total, fraction } = job.progress;
    const name = job.name || shortId(job.id);
    const dataset = job.spec?.dataset;
    const data = datasetLabel(dataset, this.datasets);
    return el(
      "tr",
      { "data-job": job.id, "data-status": job.status },
      el("td", {}, check),
      clipped(el("a", { href: `#/jobs/${job.id}`, text: name }), name),
      el("td", { text: job.task }),
      el("td", { text: job.spec?.optimizer?.type || "–" }),
      clipped(data, dataset?.id ? `${data} (upload ${dataset.id})` : data),
      el("td", {}, badge(job.status)),
      el("td", {}, progressBar(fraction), el("span", { class: "muted", text: ` ${step}/${total}` })),
      el("td", { text: fmt(job.metrics.loss) }),
      el("td", { text: fmt(job.metrics.val_accuracy) }),
      el("td", { class: "muted", text: when(job.created_at) }),
    );
  }
}
