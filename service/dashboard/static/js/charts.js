// Line charts on Plotly: named series, optional log axis and exponential smoothing, zoom events.
/* global Plotly */

const CONFIG = { responsive: true, displaylogo: false };
const COLORS = ["#2f6fde", "#d9622b", "#1f8a4c", "#8e44ad", "#c23b3b", "#16a0a0", "#b7791f", "#555"];

// TensorBoard-style exponential moving average, debiased so the start is not dragged to zero.
export function smooth(values, weight) {
  if (!weight) return values;
  const out = new Array(values.length);
  let last = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null || !Number.isFinite(value)) {
      out[i] = value;
      continue;
    }
    last = last * weight + (1 - weight) * value;
    count += 1;
    out[i] = last / (1 - weight ** count);
  }
  return out;
}

export class LineChart {
  // series: [{name, color?, dash?}], in draw order
  constructor(div, { xTitle = "step", yTitle = "", yRange = null, log = false, onZoom = null } = {}) {
    this.div = div;
    this.series = new Map();
    this.log = log;
    this.smoothing = 0;
    this.xTitle = xTitle;
    this.yTitle = yTitle;
    this.yRange = yRange;
    this.pending = false;
    this.zoomed = false;
    this.onZoom = onZoom;
    this.drawn = false;
    this.revision = 0;
  }

  data(name) {
    if (!this.series.has(name)) {
      const color = COLORS[this.series.size % COLORS.length];
      this.series.set(name, { name, x: [], y: [], color });
    }
    return this.series.get(name);
  }

  set(name, xs, ys, style = {}) {
    const entry = this.data(name);
    entry.x = xs;
    entry.y = ys;
    Object.assign(entry, style);
    this.render();
  }

  pointCount() {
    let count = 0;
    for (const entry of this.series.values()) count += entry.x.length;
    return count;
  }

  setLog(log) {
    this.log = log;
    this.render();
  }

  setSmoothing(weight) {
    this.smoothing = weight;
    this.render();
  }

  traces() {
    const traces = [];
    for (const entry of this.series.values()) {
      if (!entry.x.length) continue;
      const line = { color: entry.color, width: 1.6, dash: entry.dash || "solid" };
      if (this.smoothing > 0) {
        traces.push({ x: entry.x, y: entry.y, name: `${entry.name} (raw)`, mode: "lines",
          line: { ...line, width: 1 }, opacity: 0.25, showlegend: false, hoverinfo: "skip" });
        traces.push({ x: entry.x, y: smooth(entry.y, this.smoothing), name: entry.name, mode: "lines", line });
      } else {
        traces.push({ x: entry.x, y: entry.y, name: entry.name, mode: entry.mode || "lines", line });
      }
    }
    return traces;
  }

  layout() {
    // automargin widens the left margin for long tick labels (a log axis of small learning
    // rates) and the title beside them, which a fixed margin would push off the chart's edge.
    const yaxis = { title: { text: this.yTitle, standoff: 8 }, type: this.log ? "log" : "linear",
      automargin: true, uirevision: this.log ? "log" : "linear" };
    if (this.yRange && !this.log) yaxis.range = this.yRange;
    const layout = {
      margin: { l: 60, r: 16, t: 28, b: 40 },
      xaxis: { title: { text: this.xTitle }, automargin: true },
      yaxis,
      legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom" },
      uirevision: "keep", // keep the user's zoom across updates
      datarevision: this.revision, // arrays grow in place: tell Plotly they changed
      hovermode: "x unified",
    };
    return layout;
  }

  // Coalesce many updates (a stream of events) into one redraw per animation frame.
  render() {
    // A chart drawn while hidden gets a default size: wait until it can be measured.
    if (this.pending || !this.div.offsetParent) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.revision += 1;
      Plotly.react(this.div, this.traces(), this.layout(), CONFIG);
      if (!this.drawn) {
        this.drawn = true;
        this.div.on("plotly_relayout", (event) => this.relayout(event));
      }
    });
  }

  relayout(event) {
    if (!this.onZoom) return;
    if (event["xaxis.autorange"]) {
      this.zoomed = false;
      this.onZoom(null);
    } else if (event["xaxis.range[0]"] !== undefined) {
      this.zoomed = true;
      this.onZoom([event["xaxis.range[0]"], event["xaxis.range[1]"]]);
    }
  }

  resetZoom() {
    this.zoomed = false;
    Plotly.relayout(this.div, { "xaxis.autorange": true, "yaxis.autorange": true });
  }
}

export function plot(div, traces, layout) {
  const base = { margin: { l: 60, r: 16, t: 10, b: 44 } };
  // Room for each axis' tick labels and title, however long they turn out.
  const axes = {};
  for (const name of ["xaxis", "yaxis"]) axes[name] = { automargin: true, ...layout[name] };
  Plotly.react(div, traces, { ...base, ...layout, ...axes }, CONFIG);
}
