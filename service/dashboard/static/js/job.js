// The job page: live loss and accuracy curves (fed by the SSE stream), spec, timings, errors,
// task results and learned templates.

import { api } from "./api.js";
import { LineChart } from "./charts.js";
import { renderResult } from "./results.js";
import { renderTemplates } from "./templates.js";
import { $, TERMINAL, appendPoints, fmt, kvRows, seconds, setBadge, shortId, when } from "./util.js";

const OVERVIEW_POINTS = 2000; // points fetched for a whole curve (or a zoomed window)
const MAX_LIVE_POINTS = 20000; // past this, a live curve is re-fetched downsampled
const SERIES = ["train_accuracy", "val_accuracy", "learning_rate", "best_loss"];

export class JobPage {
  constructor() {
    this.stream = null;
    this.job = null;
    this.loss = new LineChart($("#loss-chart"), { yTitle: "loss", onZoom: (range) => this.zoom(range) });
    this.accuracy = new LineChart($("#accuracy-chart"), { yTitle: "accuracy", yRange: [0, 1.02] });
    this.lr = new LineChart($("#lr-chart"), { yTitle: "learning rate", log: true });
    this.lastRefetch = 0;
    $("#loss-log").addEventListener("change", (e) => this.loss.setLog(e.target.checked));
    $("#loss-smooth").addEventListener("input", (e) => {
      $("#loss-smooth-value").textContent = e.target.value;
      this.loss.setSmoothing(Number(e.target.value));
    });
    $("#loss-reset").addEventListener("click", () => this.loss.resetZoom());
    $("#job-cancel").addEventListener("click", () => this.job && api.post(`/jobs/${this.job.id}/cancel`).catch(() => {}));
  }

  hide() {
    if (this.stream) this.stream.close();
    this.stream = null;
  }

  async show(id) {
    this.hide();
    this.id = id;
    for (const chart of [this.loss, this.accuracy, this.lr]) chart.series.clear();
    $("#card-result").hidden = true;
    $("#card-templates").hidden = true;
    $("#job-compare").href = `#/compare?ids=${id}`;
    const job = await api.get(`/jobs/${id}`);
    $("#card-loss").hidden = job.task !== "train";
    $("#card-accuracy").hidden = job.task !== "train" || !["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"].includes(job.spec.optimizer?.type);
    this.update(job);
    // Loss first: every other series is complete up to its last step (written together).
    const after = await this.loadOverview();
    if (this.id !== id) return;
    if (!TERMINAL.has(job.status)) {
      this.stream = api.events(`/jobs/${id}/events`, {
        after,
        onEvent: (kind, data) => this.onEvent(kind, data),
      });
    } else {
      this.finished(job);
    }
  }

  async loadOverview(range = null) {
    const params = { max_points: OVERVIEW_POINTS };
    if (range) Object.assign(params, { start: Math.max(0, Math.floor(range[0])), end: Math.max(0, Math.ceil(range[1])) });
    const id = this.id;
    const loss = await api.get(`/jobs/${id}/loss`, params);
    const pages = await Promise.all(SERIES.map((name) => api.get(`/jobs/${id}/metrics/${name}`, range ? params : { max_points: OVERVIEW_POINTS })));
    if (this.id !== id) return -1;
    const xs = loss.points.map((p) => p.step);
    const ys = loss.points.map((p) => p.loss);
    const live = this.loss.data("loss");
    if (!range && live) {
      // Points the stream delivered while this read was in flight are newer than its answer:
      // keep them, so the curve never steps back.
      const newest = xs.length ? xs[xs.length - 1] : -1;
      live.x.forEach((step, i) => {
        if (step > newest) {
          xs.push(step);
          ys.push(live.y[i]);
        }
      });
    }
    this.loss.set("loss", xs, ys);
    SERIES.forEach((name, i) => this.setSeries(name, pages[i].points));
    this.lastRefetch = Date.now();
    const last = loss.points.length ? loss.points[loss.points.length - 1].step : -1;
    return last;
  }

  setSeries(name, points) {
    const xs = points.map((p) => p.step);
    const ys = points.map((p) => p.value);
    if (name === "best_loss") this.loss.set("best so far", xs, ys, { dash: "dot", color: "#1f8a4c" });
    else if (name === "learning_rate") {
      $("#card-lr").hidden = !xs.length; // first: a hidden chart is not drawn
      this.lr.set(name, xs, ys);
    } else this.accuracy.set(name.replace("_accuracy", ""), xs, ys);
  }

  appendSeries(name, points) {
    const chart = name === "best_loss" ? this.loss : name === "learning_rate" ? this.lr : this.accuracy;
    const label = name === "best_loss" ? "best so far" : name.replace("_accuracy", "");
    const entry = chart.data(label);
    if (name === "best_loss") Object.assign(entry, { dash: "dot", color: "#1f8a4c" });
    if (name === "learning_rate") $("#card-lr").hidden = false;
    appendPoints(entry.x, entry.y, points);
    chart.render();
  }

  onEvent(kind, data) {
    if (kind === "loss") {
      if (this.loss.zoomed) return; // the zoomed window is fixed; the overview comes back on reset
      const entry = this.loss.data("loss");
      appendPoints(entry.x, entry.y, data.points, "loss");
      this.loss.render();
      if (entry.x.length > MAX_LIVE_POINTS && Date.now() - this.lastRefetch > 3000) this.loadOverview();
    } else if (kind === "metrics") {
      if (!this.loss.zoomed || data.series !== "best_loss") this.appendSeries(data.series, data.points);
    } else if (kind === "progress") {
      this.update({ ...this.job, status: data.status, progress: data.progress, metrics: data.metrics });
    } else if (kind === "status") {
      this.update(data);
    } else if (kind === "end") {
      this.update(data);
      this.finished(data);
    }
  }

  async zoom(range) {
    await this.loadOverview(range);
  }

  finished(job) {
    renderResult(job);
    renderTemplates(job);
  }

  update(job) {
    this.job = job;
    $("#job-title").textContent = job.name || `${job.task} ${shortId(job.id)}`;
    setBadge($("#job-status"), job.status);
    const { step, total, fraction, phase } = job.progress;
    $("#job-progress-bar").style.width = `${Math.round(100 * (fraction || 0))}%`;
    $("#job-progress-text").textContent = `step ${step} of ${total}${phase ? ` (${phase})` : ""}`;
    $("#job-cancel").hidden = TERMINAL.has(job.status);
    const m = job.metrics;
    kvRows($("#job-metrics"), [
      ["loss", fmt(m.loss)], ["best loss", fmt(m.best_loss)], ["train accuracy", fmt(m.train_accuracy)],
      ["val accuracy", fmt(m.val_accuracy)], ["test accuracy", fmt(m.test_accuracy)], ["attempts", job.attempts],
    ]);
    const t = job.timings;
    kvRows($("#job-timings"), [
      ["queued", seconds(t.queued_s)], ["load", seconds(t.load_s)], ["run", seconds(t.run_s)],
      ["write waits", seconds(t.write_wait_s)],
      ["created", when(job.created_at)], ["started", when(job.started_at)], ["finished", when(job.finished_at)],
    ]);
    $("#card-error").hidden = !job.error;
    $("#job-error").textContent = job.error ? JSON.stringify(job.error, null, 2) : "";
    $("#job-spec").textContent = JSON.stringify(job.spec, null, 2);
  }
}
