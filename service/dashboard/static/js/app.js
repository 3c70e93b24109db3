// Hash routes: #/ (jobs), #/new, #/jobs/<id>, #/compare?ids=a,b, #/sweeps,
// #/sweeps/<id>.

import { ComparePage } from "./compare.js";
import { buildForm } from "./form.js";
import { JobPage } from "./job.js";
import { JobList } from "./list.js";
import { SweepPage } from "./sweep.js";
import { buildSweepForm } from "./sweep-form.js";
import { SweepList } from "./sweeps.js";
import { $ } from "./util.js";

const list = new JobList();
const jobPage = new JobPage();
const compare = new ComparePage();
const sweeps = new SweepList();
const sweepPage = new SweepPage();
let formBuilt = null;
let sweepFormBuilt = null;

function showView(name, tab = name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of document.querySelectorAll("[data-nav]")) link.classList.toggle("active", link.dataset.nav === tab);
  document.body.dataset.view = name;
}

async function route() {
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  const params = new URLSearchParams(query);
  list.hide();
  jobPage.hide();
  compare.hide();
  sweeps.hide();
  sweepPage.hide();
  if (path.startsWith("/jobs/")) {
    showView("job");
    await jobPage.show(decodeURIComponent(path.slice("/jobs/".length)));
  } else if (path === "/new") {
    showView("new");
    formBuilt = formBuilt || buildForm($("#job-form"));
    await formBuilt;
  } else if (path === "/compare") {
    showView("compare");
    compare.show((params.get("ids") || "").split(",").filter(Boolean));
  } else if (path.startsWith("/sweeps/")) {
    showView("sweep", "sweeps");
    sweepPage.show(decodeURIComponent(path.slice("/sweeps/".length)));
  } else if (path === "/sweeps") {
    showView("sweeps");
    sweeps.show();
    sweepFormBuilt = sweepFormBuilt || buildSweepForm();
    await sweepFormBuilt;
  } else {
    showView("jobs");
    list.show();
  }
}

window.addEventListener("hashchange", () => route().catch(report));
function report(error) {
  $("#connection").textContent = error.message;
  console.error(error);
}
route().catch(report);
