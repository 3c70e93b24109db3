// The submission form, generated from the API's own OpenAPI document: every optimizer type, task
// and parameter the JobSpec schema has, each starting at its schema default.

import { api, ApiError } from "./api.js";
import { $, el } from "./util.js";

let schemas = {};

function resolve(schema) {
  return schema && schema.$ref ? schemas[schema.$ref.split("/").pop()] : schema;
}

// What kind of input a property needs, seen through anyOf [..., null].
function describe(prop) {
  let nullable = false;
  let inner = prop;
  if (prop.anyOf) {
    const options = prop.anyOf.filter((option) => option.type !== "null");
    nullable = options.length < prop.anyOf.length;
    inner = options.length === 1 ? options[0] : { anyOf: options };
  }
  if (inner.oneOf && inner.discriminator) return { kind: "union", nullable, inner };
  if (inner.$ref) return { kind: "object", nullable, schema: resolve(inner) };
  if (inner.enum) return { kind: "enum", nullable, values: inner.enum };
  if (inner.type === "boolean") return { kind: "bool", nullable };
  if (inner.type === "integer" || inner.type === "number") return { kind: inner.type, nullable };
  if (inner.type === "array") return { kind: "array", nullable };
  return { kind: "string", nullable };
}

class Invalid extends Error {}

function parseNumber(text, kind, path) {
  const value = Number(text);
  if (text === "" || !Number.isFinite(value) || (kind === "integer" && !Number.isInteger(value))) {
    throw new Invalid(`${path}: not ${kind === "integer" ? "an integer" : "a number"}`);
  }
  return value;
}

// One property -> {node, read()}; read() returns undefined to leave it to the server's default.
function field(path, prop) {
  const info = describe(prop);
  const label = prop.title || path.split(".").pop();
  const title = prop.description || "";
  const initial = prop.default;
  if (info.kind === "object") return group(path, info.schema, label);
  if (info.kind === "union") return union(path, info.inner, label);
  if (info.kind === "bool") {
    const input = el("input", { type: "checkbox", name: path });
    input.checked = Boolean(initial);
    return { node: el("label", { class: "field check", title }, input, el("span", { text: label })), read: () => input.checked };
  }
  let input;
  if (info.kind === "enum") {
    input = el("select", { name: path }, info.values.map((value) => el("option", { value, text: value })));
    input.value = initial ?? info.values[0];
  } else {
    const shown = Array.isArray(initial) ? initial.join(", ") : initial ?? "";
    input = el("input", { name: path, value: String(shown), placeholder: info.nullable ? (info.kind === "string" ? "optional" : "null") : "" });
  }
  const node = el("label", { class: "field", title }, el("span", { text: label }), input);
  const read = () => {
    node.classList.remove("invalid");
    const text = input.value.trim();
    if (text === "") return info.nullable ? null : undefined;
    try {
      if (info.kind === "integer" || info.kind === "number") return parseNumber(text, info.kind, path);
      if (info.kind === "array") return text.split(/[\s,]+/).filter(Boolean).map((part) => parseNumber(part, "integer", path));
    } catch (error) {
      node.classList.add("invalid");
      throw error;
    }
    return text;
  };
  return { node, read };
}

// The fields of an object schema (minus `skip`), read back as an object.
function fields(path, schema, skip = []) {
  const parts = Object.entries(schema.properties || {})
    .filter(([name]) => !skip.includes(name))
    .map(([name, prop]) => [name, field(path ? `${path}.${name}` : name, prop)]);
  const node = el("div", { class: "fields" }, parts.map(([, part]) => part.node));
  const read = () => {
    const out = {};
    for (const [name, part] of parts) {
      const value = part.read();
      if (value !== undefined) out[name] = value;
    }
    return out;
  };
  return { node, read };
}

function group(path, schema, label) {
  const inner = fields(path, schema);
  return { node: el("fieldset", {}, el("legend", { text: label }), inner.node), read: inner.read };
}

// A discriminated union (optimizer, lr_schedule): a type select and that type's own fields.
function union(path, inner, label) {
  const key = inner.discriminator.propertyName;
  const options = inner.oneOf.map((ref) => resolve(ref));
  const names = options.map((schema) => schema.properties[key].const ?? schema.properties[key].enum?.[0]);
  const select = el("select", { name: `${path}.${key}` }, names.map((name) => el("option", { value: name, text: name })));
  const body = el("div");
  let current = null;
  const pick = () => {
    current = fields(path, options[names.indexOf(select.value)], [key]);
    body.replaceChildren(current.node);
  };
  select.addEventListener("change", pick);
  pick();
  const head = el("label", { class: "field" }, el("span", { text: `${label} type` }), select);
  return {
    node: el("fieldset", {}, el("legend", { text: label }), el("div", { class: "fields" }, head), body),
    read: () => ({ [key]: select.value, ...current.read() }),
  };
}

function datasetField(datasets, schema) {
  const select = el("select", { name: "dataset.name" });
  for (const item of datasets) {
    const note = item.available ? ` (${item.n_train} train, ${item.n_features} features)` : " (unavailable)";
    const label = `${item.name}${item.builtin === false ? " (upload)" : ""}${note}`;
    select.append(el("option", { value: item.id, text: label, disabled: !item.available, title: item.reason || item.description || "" }));
  }
  const first = datasets.find((item) => item.available);
  if (first) select.value = first.id;
  const options = fields("dataset", schema, ["name", "id"]);
  const node = el("fieldset", {}, el("legend", { text: "Data set" }),
    el("div", { class: "fields" }, el("label", { class: "field" }, el("span", { text: "name" }), select)),
    el("details", {}, el("summary", { text: "sizes and generator options (blank = the data set's own)" }), options.node));
  // A built-in is named; an upload is referred to by its id.
  const read = () => {
    const item = datasets.find((d) => d.id === select.value);
    const ref = item && item.builtin === false ? { id: item.id } : { name: select.value };
    return { ...ref, ...dropNulls(options.read()) };
  };
  return { node, read };
}

function dropNulls(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== null));
}

export async function buildForm(form) {
  const [doc, datasets] = await Promise.all([api.get("/openapi.json"), api.get("/datasets")]);
  schemas = doc.components.schemas;
  const spec = schemas.JobSpec.properties;
  const task = field("task", spec.task);
  const name = field("name", spec.name);
  const dataset = datasetField(datasets.items, resolve(spec.dataset));
  const model = group("model", schemas.Model, "Model");
  const optimizer = field("optimizer", spec.optimizer);
  const taskParams = {};
  for (const taskName of spec.task.enum.filter((t) => t !== "train")) {
    taskParams[taskName] = group(taskName, describe(spec[taskName]).schema, `${taskName} parameters`);
  }
  const run = fields("", { properties: { dtype: spec.dtype, seed: spec.seed, log_every: spec.log_every, eval_every: spec.eval_every } });
  const preprocess = group("preprocess", schemas.Preprocess, "Preprocessing");
  const errors = el("div", { class: "errors", id: "form-errors" });
  const submit = el("button", { type: "submit", class: "primary", id: "submit-job", text: "Submit job" });
  form.replaceChildren(
    el("fieldset", {}, el("legend", { text: "Job" }), el("div", { class: "fields" }, task.node, name.node)),
    dataset.node, model.node, optimizer.node, ...Object.values(taskParams).map((part) => part.node),
    el("fieldset", {}, el("legend", { text: "Run" }), run.node), preprocess.node, errors, submit,
  );
  const chosen = () => form.querySelector('[name="task"]').value;
  const sync = () => {
    optimizer.node.hidden = chosen() !== "train";
    for (const [taskName, part] of Object.entries(taskParams)) part.node.hidden = taskName !== chosen();
  };
  form.querySelector('[name="task"]').addEventListener("change", sync);
  sync();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.textContent = "";
    let body;
    try {
      body = { task: task.read(), dataset: dataset.read(), model: model.read(), preprocess: preprocess.read(), ...run.read() };
      const jobName = name.read();
      if (jobName) body.name = jobName;
      if (body.task === "train") body.optimizer = optimizer.read();
      else body[body.task] = taskParams[body.task].read();
    } catch (error) {
      errors.textContent = error.message;
      return;
    }
    submit.disabled = true;
    try {
      const job = await api.post("/jobs", body);
      window.location.hash = `#/jobs/${job.id}`;
    } catch (error) {
      const list = error instanceof ApiError && error.problem?.errors;
      errors.textContent = list ? list.map((e) => `${e.loc.join(".")}: ${e.msg}`).join("\n") : error.message;
    } finally {
      submit.disabled = false;
    }
  });
}
