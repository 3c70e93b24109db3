// The sweep list: status, method, metric, trials per status and the best value of each sweep.
// Polls GET /sweeps every second while any sweep is queued or running, every few seconds else.

import { api } from "./api.js";
import { $, Poller, TERMINAL, badge, el, fmt, shortId, when } from "./util.js";

const REFRESH_MS = 1000;
const IDLE_MS = 5000;
const STATUSES = ["succeeded", "running", "queued", "failed", "pruned", "cancelled"];

// "3 succeeded · 1 running" with a bar split the same way.
export function countsCell(counts, total) {
  const bar = el("div", { class: "progress split" });
  const words = [];
  for (const status of STATUSES) {
    const count = counts[status] || 0;
    if (!count) continue;
    const part = el("div", { class: `part ${status}`, title: `${count} ${status}` });
    part.style.width = `${(100 * count) / Math.max(1, total)}%`;
    bar.append(part);
    words.push(el("span", { class: `count ${status}`, text: `${count} ${status}` }));
  }
  return el("td", { class: "counts" }, bar, " ", words.flatMap((word, i) => (i ? [" · ", word] : [word])));
}

export class SweepList {
  constructor() {
    this.poller = new Poller((live) => this.refresh(live));
  }

  show() {
    this.poller.start();
  }

  hide() {
    this.poller.stop();
  }

  async refresh(live) {
    try {
      const page = await api.get("/sweeps", { limit: 100 });
      if (!live()) return null;
      this.render(page.items);
      $("#connection").textContent = "";
      return page.items.some((sweep) => !TERMINAL.has(sweep.status)) ? REFRESH_MS : IDLE_MS;
    } catch (error) {
      $("#connection").textContent = `API unreachable: ${error.message}`;
      return IDLE_MS;
    }
  }

  render(sweeps) {
    const body = $("#sweeps-body");
    body.replaceChildren(...sweeps.map((sweep) => this.row(sweep)));
    if (!sweeps.length) {
      body.append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No sweeps yet: start one above." })));
      $("#sweep-new").open = true;
    }
    $("#sweeps-count").textContent = `${sweeps.length} sweep${sweeps.length === 1 ? "" : "s"}`;
  }

  row(sweep) {
    const best = sweep.best
      ? el("a", { href: `#/jobs/${sweep.best.job_id}`, title: JSON.stringify(sweep.best.params), text: fmt(sweep.best.value) })
      : "–";
    return el(
      "tr",
      { "data-sweep": sweep.id, "data-status": sweep.status },
      el("td", {}, el("a", { href: `#/sweeps/${sweep.id}`, text: sweep.name || shortId(sweep.id) })),
      el("td", {}, badge(sweep.status)),
      el("td", { text: sweep.method }),
      el("td", { text: sweep.metric }),
      countsCell(sweep.counts, sweep.n_trials),
      el("td", { class: "best" }, best),
      el("td", { class: "muted", text: when(sweep.created_at) }),
      el("td", { class: "muted", text: when(sweep.finished_at) }),
    );
  }
}
