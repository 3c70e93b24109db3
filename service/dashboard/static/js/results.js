// Results of the non-train tasks (GET /jobs/{id}/result): the gradient-check table, the step-size
// sweep on a log x axis, and loss landscapes as a line (1-D) or a heatmap (2-D).

import { api } from "./api.js";
import { plot } from "./charts.js";
import { $, el, fmt } from "./util.js";

// The notes' reading of relative errors: > 1e-2 wrong, < 1e-7 right, in between it depends.
function verdict(error) {
  if (error === null || error === undefined) return ["–", ""];
  if (error < 1e-7) return ["good", "pass"];
  if (error < 1e-4) return ["ok (kink?)", ""];
  return ["suspicious", "fail"];
}

function gradientCheck(body, result) {
  const summary = el("p", {},
    el("span", { class: result.passed ? "pass" : "fail", text: result.passed ? "passed" : "failed" }),
    ` · max relative error ${fmt(result.max_relative_error)} over ${result.checks.length} entries`);
  const head = el("tr", {}, ["entry W[c, d]", "analytic", "numerical", "relative error", ""].map((t) => el("th", { text: t })));
  const rows = result.checks.map((check) => {
    const [word, cls] = verdict(check.relative_error);
    return el("tr", {},
      el("td", { text: `[${check.index.join(", ")}]` }),
      el("td", { text: check.analytic.toExponential(6) }),
      el("td", { text: check.numerical.toExponential(6) }),
      el("td", { text: fmt(check.relative_error) }),
      el("td", { class: cls, text: word }));
  });
  body.replaceChildren(summary, el("table", { class: "numbers", id: "gradcheck-table" }, el("thead", {}, head), el("tbody", {}, rows)));
}

function stepSizeSweep(body, result) {
  const chart = el("div", { class: "chart", id: "sweep-chart" });
  body.replaceChildren(chart);
  const xs = result.steps.map((s) => s.step_size);
  plot(chart, [
    { x: xs, y: result.steps.map((s) => s.loss), name: "loss after one step", mode: "lines+markers" },
    { x: [xs[0], xs[xs.length - 1]], y: [result.loss_original, result.loss_original], name: "loss before",
      mode: "lines", line: { dash: "dash", color: "#888" } },
  ], { xaxis: { type: "log", title: { text: "step size" }, exponentformat: "power" },
    yaxis: { title: { text: "loss" } }, legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom" }, margin: { l: 60, r: 16, t: 28, b: 44 } });
}

function landscape(body, result) {
  const chart = el("div", { class: "chart tall", id: "landscape-chart" });
  body.replaceChildren(chart);
  if (result.betas === null || result.betas === undefined) {
    plot(chart, [{ x: result.alphas, y: result.loss, mode: "lines", name: "L(W + a·W1)" }],
      { xaxis: { title: { text: "a" } }, yaxis: { title: { text: "loss" } } });
    return;
  }
  // loss[i][j] is at (alphas[i], betas[j]): rows of z go along y, so transpose.
  const z = result.betas.map((_, j) => result.alphas.map((__, i) => result.loss[i][j]));
  plot(chart, [{ type: "heatmap", x: result.alphas, y: result.betas, z, colorscale: "Viridis",
    colorbar: { title: { text: "loss" } } }],
  { xaxis: { title: { text: "a" } }, yaxis: { title: { text: "b" } } });
}

const RENDERERS = { gradient_check: gradientCheck, step_size_sweep: stepSizeSweep, landscape };
const TITLES = { gradient_check: "Gradient check", step_size_sweep: "Step-size sweep", landscape: "Loss landscape" };

export async function renderResult(job) {
  const render = RENDERERS[job.task];
  if (!render || job.status !== "succeeded") return;
  const result = await api.get(`/jobs/${job.id}/result`);
  $("#result-title").textContent = TITLES[job.task];
  $("#card-result").hidden = false;
  render($("#result-body"), result);
}
