// A sweep's metric against each swept parameter: one panel (and one trace) per parameter, each
// trial a point styled by its status, so failed and pruned trials stand out from the ranked ones.
/* global Plotly */

import { fmt } from "./util.js";

const COLUMNS = 3; // panels per row
const ROW_HEIGHT = 300;
const MAXIMIZED = new Set(["val_accuracy", "train_accuracy"]);
// The metric axis reaches this fraction of the values' span beyond each end, so that the largest
// marker stays clear of the axis line and the tick labels under it.
const PAD = 0.1;
// [symbol, color, size] per kind of point; the page's key (index.html) says the same in words.
const STYLES = {
  succeeded: ["circle", "#2f6fde", 9],
  best: ["star", "#e0a800", 15],
  running: ["circle-open", "#2f6fde", 9],
  pruned: ["diamond-open", "#8a93a3", 9],
  failed: ["x", "#c23b3b", 11],
};

export function maximized(metric) {
  return MAXIMIZED.has(metric);
}

// How a parameter's axis reads its values: "log" for positive numbers spanning two decades or
// more (or a log_uniform dimension), "category" for strings, booleans and zero beside such
// spreads (a log axis cannot show 0), else "linear".
export function axisType(values, dimension = {}) {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (!present.every((v) => typeof v === "number")) return "category";
  const positive = present.filter((v) => v > 0);
  const wide = positive.length > 1 && Math.max(...positive) / Math.min(...positive) >= 100;
  if (present.length && positive.length === present.length && (wide || dimension.log_uniform)) return "log";
  if (wide && present.every((v) => v >= 0)) return "category";
  return "linear";
}

// The kind of point a trial is, or null when it has nothing to show yet.
export function pointKind(job, value, bestId) {
  if (job.status === "failed") return "failed";
  if (job.status === "cancelled") return value === null ? null : "pruned";
  if (value === null) return null;
  if (job.status === "succeeded") return job.id === bestId ? "best" : "succeeded";
  return "running";
}

// A trial's metric value, or null (queued, just started, failed before its first evaluation).
export function metricValue(job, metric) {
  const value = job.metrics?.[metric];
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

// Where a failed trial without a value goes: the worst edge of what the others reached.
function floorOf(values, metric) {
  if (!values.length) return 0;
  return maximized(metric) ? Math.min(...values) : Math.max(...values);
}

function hover(job, kind, value, metric) {
  const params = Object.entries(job.params).map(([path, v]) => `${path} = ${fmt(v)}`);
  const lines = [`<b>${kind === "best" ? "best · " : ""}${job.status}</b>`, ...params, `${metric} = ${fmt(value)}`];
  if (job.error) lines.push(`${job.error.type}: ${job.error.message}`);
  return lines.join("<br>");
}

// The metric axis' range: the values padded on both sides (a single value gets room around
// itself), so that points at the worst or best value sit inside the plot, not on the x axis.
export function metricRange(values) {
  if (!values.length) return null;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const pad = hi > lo ? (hi - lo) * PAD : Math.abs(lo) * PAD || PAD;
  return [lo - pad, hi + pad];
}

function categoryArray(values) {
  const distinct = [...new Set(values)];
  const numeric = distinct.every((v) => typeof v === "number");
  return numeric ? distinct.sort((a, b) => a - b).map(String) : distinct.map(String);
}

// Plotly traces and layout for a sweep (GET /sweeps/{id}).
export function sweepFigure(sweep) {
  const metric = sweep.metric;
  const paths = Object.keys(sweep.request.space);
  const bestId = sweep.best?.job_id;
  const known = sweep.jobs.map((job) => metricValue(job, metric)).filter((v) => v !== null);
  const floor = floorOf(known, metric);
  const points = [];
  for (const job of sweep.jobs) {
    const value = metricValue(job, metric);
    const kind = pointKind(job, value, bestId);
    if (kind) points.push({ job, kind, value, y: value ?? floor });
  }
  const range = metricRange(points.map((p) => p.y));
  const rows = Math.ceil(paths.length / COLUMNS);
  const columns = Math.min(paths.length, COLUMNS);
  const layout = {
    grid: { rows, columns, pattern: "independent", xgap: 0.12, ygap: 0.35 },
    height: rows * ROW_HEIGHT,
    margin: { l: 60, r: 16, t: 16, b: 48 },
    showlegend: false,
    hovermode: "closest",
    uirevision: sweep.id,
  };
  const traces = paths.map((path, i) => {
    const axis = i === 0 ? "" : String(i + 1);
    const xs = points.map((p) => p.job.params[path]);
    const type = axisType(xs, sweep.request.space[path]);
    layout[`xaxis${axis}`] = {
      title: { text: path }, type, automargin: true, exponentformat: "power",
      ...(type === "category" ? { categoryorder: "array", categoryarray: categoryArray(xs) } : {}),
    };
    layout[`yaxis${axis}`] = { title: { text: i % COLUMNS === 0 ? metric : "" }, automargin: true,
      ...(i ? { matches: "y" } : range ? { range } : {}) };
    return {
      type: "scatter", mode: "markers", name: path, meta: { param: path },
      xaxis: `x${axis}`, yaxis: `y${axis}`,
      x: type === "category" ? xs.map(String) : xs,
      y: points.map((p) => p.y),
      customdata: points.map((p) => p.job.id),
      text: points.map((p) => hover(p.job, p.kind, p.value, metric)),
      hovertemplate: "%{text}<extra></extra>",
      marker: {
        symbol: points.map((p) => STYLES[p.kind][0]),
        color: points.map((p) => STYLES[p.kind][1]),
        size: points.map((p) => STYLES[p.kind][2]),
        line: { width: 1.5, color: points.map((p) => STYLES[p.kind][1]) },
      },
    };
  });
  return { traces, layout };
}

// Draw (or redraw in place) the figure; a click on a point opens that trial's job page.
export function drawSweep(div, sweep) {
  const { traces, layout } = sweepFigure(sweep);
  Plotly.react(div, traces, layout, { responsive: true, displaylogo: false });
  if (!div.dataset.clicks) {
    div.dataset.clicks = "on";
    div.on("plotly_click", (event) => {
      const id = event.points?.[0]?.customdata;
      if (id) window.location.hash = `#/jobs/${id}`;
    });
  }
}
