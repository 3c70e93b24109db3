// Each class's learned weights drawn as an image: the course's "templates". W is classes x
// features with the bias last; cifar10 rows are 3x32x32 channel-major, digits rows 8x8.

import { api } from "./api.js";
import { $, el } from "./util.js";

const CLASS_NAMES = {
  cifar10: ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
  digits: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
};

// {side, channels} for a row of n pixel weights, or null when it is not an image.
export function imageShape(n) {
  for (const channels of [3, 1]) {
    const side = Math.round(Math.sqrt(n / channels));
    if (side >= 4 && side * side * channels === n) return { side, channels };
  }
  return null;
}

// One class row -> RGBA pixels, rescaled over the row to 0..255.
export function toPixels(row, { side, channels }) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const value of row) {
    if (value === null) continue;
    if (value < lo) lo = value;
    if (value > hi) hi = value;
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const area = side * side;
  const pixels = new Uint8ClampedArray(area * 4);
  for (let p = 0; p < area; p++) {
    for (let c = 0; c < 3; c++) {
      const value = row[(channels === 3 ? c * area : 0) + p];
      pixels[p * 4 + c] = value === null ? 0 : (value - lo) * scale;
    }
    pixels[p * 4 + 3] = 255;
  }
  return pixels;
}

export async function renderTemplates(job) {
  const card = $("#card-templates");
  const dataset = job.spec?.dataset?.name;
  if (job.task !== "train" || !(dataset in CLASS_NAMES)) return;
  let weights;
  try {
    weights = await api.get(`/jobs/${job.id}/weights`);
  } catch {
    return; // no weights stored (a job that failed before its first checkpoint)
  }
  const bias = job.spec.preprocess?.bias !== false;
  const width = weights.shape[1] - (bias ? 1 : 0);
  const shape = imageShape(width);
  if (!shape) return;
  const names = CLASS_NAMES[dataset];
  const figures = weights.data.map((row, k) => {
    const canvas = el("canvas", { width: shape.side, height: shape.side });
    const image = new ImageData(toPixels(row.slice(0, width), shape), shape.side, shape.side);
    canvas.getContext("2d").putImageData(image, 0, 0);
    return el("figure", {}, canvas, el("figcaption", { text: names[k] ?? String(k) }));
  });
  $("#templates-note").textContent = `(W at step ${weights.step}, each class rescaled to 0–255)`;
  $("#templates").replaceChildren(...figures);
  card.hidden = false;
}
