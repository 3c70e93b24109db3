// A sweep's page: the leaderboard (ranked trials, then the rest), metric vs each parameter,
// trial counts, cancel, and the top trials' loss curves in the compare view. Polls
// GET /sweeps/{id} while any trial is queued or running.

import { api } from "./api.js";
import { drawSweep, maximized, metricValue } from "./sweep-chart.js";
import { $, Poller, TERMINAL, badge, el, fmt, kvRows, setBadge, shortId, when } from "./util.js";

const REFRESH_MS = 1000;
// Unranked trials after the ranked ones: the live ones first, then those that ended badly.
const ORDER = ["running", "queued", "succeeded", "failed", "pruned", "cancelled"];

export function trialStatus(job) {
  return job.status === "cancelled" && job.error?.type === "pruned" ? "pruned" : job.status;
}

export function finishedCount(counts) {
  return counts.succeeded + counts.failed + counts.cancelled + counts.pruned;
}

export class SweepPage {
  constructor() {
    this.id = null;
    this.sweep = null;
    this.poller = new Poller((live) => this.refresh(live));
    $("#sweep-cancel").addEventListener("click", () => this.cancel());
    $("#sweep-top").addEventListener("change", () => this.sweep && this.renderCompare(this.sweep));
    $("#sweep-compare").addEventListener("click", () => {
      const ids = this.topIds();
      if (ids.length) window.location.hash = `#/compare?ids=${ids.join(",")}`;
    });
  }

  hide() {
    this.poller.stop();
  }

  show(id) {
    this.id = id;
    this.sweep = null;
    $("#sweep-message").textContent = "";
    $("#sweep-table thead").replaceChildren();
    $("#sweep-table tbody").replaceChildren();
    this.poller.start();
  }

  // Until the sweep ends (or turns out not to exist).
  async refresh(live) {
    try {
      const sweep = await api.get(`/sweeps/${this.id}`);
      if (!live()) return null;
      this.render(sweep);
      $("#connection").textContent = "";
      return TERMINAL.has(sweep.status) ? null : REFRESH_MS;
    } catch (error) {
      if (!live()) return null;
      $("#sweep-message").textContent = error.message;
      return error.status === 404 ? null : REFRESH_MS;
    }
  }

  async cancel() {
    if (!this.sweep) return;
    $("#sweep-cancel").disabled = true;
    try {
      this.render(await api.post(`/sweeps/${this.sweep.id}/cancel`));
    } catch (error) {
      $("#sweep-message").textContent = error.message;
    } finally {
      $("#sweep-cancel").disabled = false;
    }
  }

  topIds() {
    return (this.sweep?.leaderboard || []).slice(0, Number($("#sweep-top").value)).map((entry) => entry.job_id);
  }

  render(sweep) {
    this.sweep = sweep;
    document.body.dataset.sweepStatus = sweep.status;
    this.renderHead(sweep);
    this.renderCompare(sweep);
    this.renderTable(sweep);
    kvRows($("#sweep-counts"), [
      ...Object.entries(sweep.counts).map(([status, count]) => [status, count]),
      ["method", sweep.method], ["created", when(sweep.created_at)], ["finished", when(sweep.finished_at)],
    ]);
    $("#sweep-request").textContent = JSON.stringify(sweep.request, null, 2);
    $("#sweep-chart-title").textContent = `${sweep.metric} vs parameters`;
    drawSweep($("#sweep-metric-chart"), sweep);
  }

  renderHead(sweep) {
    $("#sweep-title").textContent = sweep.name || `sweep ${shortId(sweep.id)}`;
    setBadge($("#sweep-status"), sweep.status);
    const done = finishedCount(sweep.counts);
    $("#sweep-progress-bar").style.width = `${Math.round((100 * done) / Math.max(1, sweep.n_trials))}%`;
    const direction = maximized(sweep.metric) ? "higher is better" : "lower is better";
    $("#sweep-progress-text").textContent =
      `${done} of ${sweep.n_trials} trials finished · ${sweep.method} · ranked by ${sweep.metric} (${direction})`;
    $("#sweep-cancel").hidden = TERMINAL.has(sweep.status);
  }

  renderCompare(sweep) {
    const ids = this.topIds();
    $("#sweep-compare").disabled = !ids.length;
    $("#sweep-compare").textContent = ids.length ? `Compare top ${ids.length} loss curves` : "Compare loss curves";
    $("#sweep-leaderboard-note").textContent = sweep.leaderboard.length
      ? `(${sweep.leaderboard.length} ranked of ${sweep.n_trials})` : "(no trial has finished with a value yet)";
  }

  renderTable(sweep) {
    const columns = {
      paths: Object.keys(sweep.request.space),
      metric: sweep.metric,
      withVal: sweep.metric !== "val_accuracy", // else the metric column says it already
    };
    const head = ["Rank", ...columns.paths, sweep.metric, ...(columns.withVal ? ["Val acc"] : []), "Test acc", "Status", "Job"];
    $("#sweep-table thead").replaceChildren(el("tr", {}, head.map((text) => el("th", { text }))));
    const byId = new Map(sweep.jobs.map((job) => [job.id, job]));
    const rows = sweep.leaderboard.map((entry) => row(columns, byId.get(entry.job_id) || {
      id: entry.job_id, status: "succeeded", params: entry.params, metrics: {},
    }, entry));
    const ranked = new Set(sweep.leaderboard.map((entry) => entry.job_id));
    const rest = sweep.jobs.filter((job) => !ranked.has(job.id))
      .sort((a, b) => ORDER.indexOf(trialStatus(a)) - ORDER.indexOf(trialStatus(b)));
    $("#sweep-table tbody").replaceChildren(...rows, ...rest.map((job) => row(columns, job, null)));
  }
}

// A ranked trial's numbers come from its leaderboard entry; an unranked one shows what it has so
// far (null metrics: "–").
function row({ paths, metric, withVal }, job, entry) {
  const status = trialStatus(job);
  const rank = entry?.rank;
  const value = entry ? entry.value : metricValue(job, metric);
  const val = entry ? entry.val_accuracy : job.metrics?.val_accuracy;
  const test = entry ? entry.test_accuracy : job.metrics?.test_accuracy;
  const title = job.error ? `${job.error.type}: ${job.error.message}` : undefined;
  const note = job.error && job.error.type !== status ? el("span", { class: "muted", text: ` ${job.error.type}` }) : null;
  return el(
    "tr",
    { "data-job": job.id, "data-rank": rank, "data-status": status, class: rank ? null : "unranked" },
    el("td", { text: rank ?? "–" }),
    paths.map((path) => el("td", { class: "num", text: fmt(job.params[path]) })),
    el("td", { class: "num metric", text: fmt(value) }),
    withVal ? el("td", { class: "num", text: fmt(val) }) : null,
    el("td", { class: "num", text: fmt(test) }),
    el("td", { title }, badge(status), note),
    el("td", {}, el("a", { href: `#/jobs/${job.id}`, text: shortId(job.id) })),
  );
}
