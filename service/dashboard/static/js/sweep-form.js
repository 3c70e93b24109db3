// Starting a sweep: the POST /sweeps body as JSON, prefilled with the API's own example (from
// /openapi.json, so it stays valid as the schema moves); the API's 422 errors listed by path.

import { api, ApiError } from "./api.js";
import { $ } from "./util.js";

// Only if the OpenAPI document has no example: learning rate x regularization over a small job.
const FALLBACK = {
  name: "lr-x-reg",
  base: { dataset: { name: "blobs" }, model: { loss: "svm" },
    optimizer: { type: "sgd", batch_size: 32, iterations: 300 }, eval_every: 50 },
  method: "grid",
  space: { "optimizer.learning_rate": { log_uniform: [1e-3, 1], num: 4 }, "model.reg": { values: [0, 1e-3, 1e-1] } },
  metric: "val_accuracy",
};

async function example() {
  const doc = await api.get("/openapi.json").catch(() => null);
  return doc?.components?.schemas?.SweepRequest?.examples?.[0] || FALLBACK;
}

// "body.space.model.reg: ..." reads better without the leading "body".
export function problemLines(problem) {
  if (!problem?.errors?.length) return [problem?.detail || "The request failed"];
  const lines = problem.errors.map((e) => `${e.loc.filter((part, i) => i || part !== "body").join(".")}: ${e.msg}`);
  return problem.detail ? [problem.detail, ...lines] : lines;
}

export async function buildSweepForm() {
  const form = $("#sweep-form");
  const text = $("#sweep-body");
  const errors = $("#sweep-form-errors");
  const submit = $("#submit-sweep");
  const reset = async () => {
    text.value = JSON.stringify(await example(), null, 2);
    errors.textContent = "";
  };
  $("#sweep-example").addEventListener("click", reset);
  await reset();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.textContent = "";
    let body;
    try {
      body = JSON.parse(text.value);
    } catch (error) {
      errors.textContent = `Not valid JSON: ${error.message}`;
      return;
    }
    submit.disabled = true;
    try {
      const sweep = await api.post("/sweeps", body);
      $("#sweep-new").open = false;
      window.location.hash = `#/sweeps/${sweep.id}`;
    } catch (error) {
      errors.textContent = error instanceof ApiError ? problemLines(error.problem).join("\n") : error.message;
    } finally {
      submit.disabled = false;
    }
  });
}
