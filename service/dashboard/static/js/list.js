// The job list: filters, live status and progress (polling GET /jobs), selection for comparing.

import { api } from "./api.js";
import { $, Poller, badge, el, fmt, progressBar, when } from "./util.js";

const REFRESH_MS = 1000;

export class JobList {
  constructor() {
    this.selected = new Set();
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
      if (!live()) return null;
      this.render(page.items);
      $("#connection").textContent = "";
    } catch (error) {
      $("#connection").textContent = `API unreachable: ${error.message}`;
    }
    return REFRESH_MS;
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
    const link = el("a", { href: `#/jobs/${job.id}`, text: job.name || job.id.slice(-10) });
    return el(
      "tr",
      { "data-job": job.id, "data-status": job.status },
      el("td", {}, check),
      el("td", {}, link),
      el("td", { text: job.task }),
      el("td", { text: job.spec?.optimizer?.type || "–" }),
      el("td", { text: job.spec?.dataset?.name || job.spec?.dataset?.id || "–" }),
      el("td", {}, badge(job.status)),
      el("td", {}, progressBar(fraction), el("span", { class: "muted", text: ` ${step}/${total}` })),
      el("td", { text: fmt(job.metrics.loss) }),
      el("td", { text: fmt(job.metrics.val_accuracy) }),
      el("td", { class: "muted", text: when(job.created_at) }),
    );
  }
}
