// Several jobs' loss curves on one chart: the notes' story of random search vs random local
// search vs gradient descent, or any optimizers side by side.

import { api } from "./api.js";
import { LineChart } from "./charts.js";
import { $, TERMINAL, jobLabel } from "./util.js";

const POINTS = 1500;
const REFRESH_MS = 2000;
const SEARCHES = new Set(["random_search", "random_local_search"]);

export class ComparePage {
  constructor() {
    this.chart = new LineChart($("#compare-chart"), { yTitle: "loss" });
    this.chart.setLog(true);
    this.ids = [];
    this.timer = null;
    $("#compare-load").addEventListener("click", () => {
      const ids = $("#compare-ids").value.split(/[\s,]+/).filter(Boolean);
      window.location.hash = `#/compare?ids=${ids.join(",")}`;
    });
    $("#compare-log").addEventListener("change", (e) => this.chart.setLog(e.target.checked));
    $("#compare-best").addEventListener("change", () => this.refresh());
    $("#compare-smooth").addEventListener("input", (e) => this.chart.setSmoothing(Number(e.target.value)));
    $("#story").addEventListener("click", () => this.story());
  }

  show(ids) {
    this.ids = ids;
    $("#compare-ids").value = ids.join(", ");
    this.chart.series.clear();
    this.refresh();
  }

  hide() {
    clearTimeout(this.timer);
    this.ids = [];
  }

  async refresh() {
    clearTimeout(this.timer);
    const ids = this.ids;
    if (!ids.length) return;
    const jobs = await Promise.all(ids.map((id) => api.get(`/jobs/${id}`).catch(() => null)));
    const best = $("#compare-best").checked;
    const curves = await Promise.all(jobs.map((job) => {
      if (!job) return null;
      const series = best && SEARCHES.has(job.spec?.optimizer?.type) ? "best_loss" : "loss";
      return api.get(`/jobs/${job.id}/metrics/${series}`, { max_points: POINTS }).catch(() => null);
    }));
    if (ids !== this.ids) return;
    this.chart.series.clear();
    jobs.forEach((job, i) => {
      if (!job || !curves[i]) return;
      const points = curves[i].points;
      this.chart.set(jobLabel(job), points.map((p) => p.step), points.map((p) => p.value));
    });
    if (jobs.some((job) => job && !TERMINAL.has(job.status))) {
      this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
    }
  }

  // Submit the three strategies of the notes on the same data and loss, then compare them.
  async story() {
    const datasets = (await api.get("/datasets")).items.filter((d) => d.available).map((d) => d.id);
    const dataset = { name: datasets.includes("digits") ? "digits" : datasets[0] };
    const base = { dataset, model: { loss: "svm", reg: 0.0001 }, eval_every: 0 };
    const specs = [
      { name: "random search", optimizer: { type: "random_search", trials: 1000, scale: 0.001 } },
      { name: "random local search", optimizer: { type: "random_local_search", iterations: 1000, step_size: 0.001 } },
      { name: "gradient descent", optimizer: { type: "sgd", iterations: 1000, learning_rate: 0.001, batch_size: 64 } },
    ];
    const jobs = await Promise.all(specs.map((spec) => api.post("/jobs", { ...base, ...spec })));
    window.location.hash = `#/compare?ids=${jobs.map((job) => job.id).join(",")}`;
  }
}
