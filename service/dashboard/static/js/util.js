// Small DOM and formatting helpers shared by the views.

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

export function $(selector, root = document) {
  return root.querySelector(selector);
}

// el("td", {class: "x", text: "hi"}, child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e5 || magnitude < 1e-3) return value.toExponential(2);
  return Number(value.toPrecision(digits)).toString();
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 1 ? `${(value * 1000).toFixed(0)} ms` : `${value.toFixed(2)} s`;
}

export function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { hour12: false });
}

export function setBadge(node, status) {
  node.className = `badge ${status}`;
  node.textContent = status;
}

export function badge(status) {
  const node = el("span");
  setBadge(node, status);
  return node;
}

export function progressBar(fraction) {
  const inner = el("div");
  inner.style.width = `${Math.round(100 * (fraction || 0))}%`;
  return el("div", { class: "progress" }, inner);
}

export function kvRows(table, rows) {
  table.replaceChildren(...rows.map(([key, value]) => el("tr", {}, el("td", { text: key }), el("td", { text: value }))));
}

// The one short form of a job's or a sweep's id, so that every view names an object alike. Ids
// begin with their creation time (objects made together share a long head), so the tail is what
// tells them apart.
export function shortId(id) {
  return id.slice(-10);
}

export function jobLabel(job) {
  const optimizer = job.spec?.optimizer?.type;
  const what = job.task === "train" ? optimizer : job.task;
  return `${job.name || shortId(job.id)} · ${what || "?"}`;
}

// Append points (sorted by step) to arrays xs/ys, skipping steps already there.
export function appendPoints(xs, ys, points, key = "value") {
  let last = xs.length ? xs[xs.length - 1] : -Infinity;
  for (const point of points) {
    if (point.step > last) {
      xs.push(point.step);
      ys.push(point[key]);
      last = point.step;
    }
  }
}

// Runs `tick(live)` now and again after the delay (ms) it resolves to, until stop() or a null
// delay; live() turns false once stopped or restarted, so a late answer is not drawn.
export class Poller {
  constructor(tick) {
    this.tick = tick;
    this.timer = null;
    this.generation = 0;
  }

  start() {
    this.stop();
    const generation = this.generation;
    const live = () => generation === this.generation;
    const run = async () => {
      const delay = await this.tick(live);
      if (live() && delay !== null && delay !== undefined) this.timer = setTimeout(run, delay);
    };
    run();
  }

  stop() {
    this.generation += 1;
    clearTimeout(this.timer);
  }
}
