// Hash routes: #/ (jobs), #/new, #/jobs/<id>, #/compare?ids=a,b, #/sweeps (hidden for now).

import { api } from "./api.js";
import { ComparePage } from "./compare.js";
import { buildForm } from "./form.js";
import { JobPage } from "./job.js";
import { JobList } from "./list.js";
import { $ } from "./util.js";

const list = new JobList();
const jobPage = new JobPage();
const compare = new ComparePage();
let formBuilt = null;

function showView(name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of document.querySelectorAll("[data-nav]")) link.classList.toggle("active", link.dataset.nav === name);
  document.body.dataset.view = name;
}

async function route() {
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  const params = new URLSearchParams(query);
  list.hide();
  jobPage.hide();
  compare.hide();
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
  } else if (path === "/sweeps") {
    showView("sweeps");
  } else {
    showView("jobs");
    list.show();
  }
}

// The sweep leaderboard's tab stays hidden until the API grows a /sweeps resource.
async function revealSweeps() {
  const doc = await api.get("/openapi.json").catch(() => null);
  if (doc && Object.keys(doc.paths).some((path) => path.startsWith("/sweeps"))) $("#nav-sweeps").hidden = false;
}

window.addEventListener("hashchange", () => route().catch(report));
function report(error) {
  $("#connection").textContent = error.message;
  console.error(error);
}
route().catch(report);
revealSweeps();
