// Deployments: the list (GET /api/deployments, a page at a time) and the create form (POST /api/deployments).
import {
  allItems, api, badge, can, emptyRow, fill, h, localToIso, onSubmit, pagedList, showError, tableRows, time,
} from "./common.js";

const table = document.getElementById("deployments-table");
const tbody = table.querySelector("tbody");
const form = document.getElementById("create-form");

function deploymentRow(d) {
  return h("tr", {},
    h("td", { class: "num" }, d.id),
    h("td", {}, h("a", { href: `/deployments/${d.id}` }, d.name)),
    h("td", {}, d.location || "–"),
    h("td", {}, badge(d.status), d.trial ? [" ", badge("trial", "badge-warn")] : null),
    h("td", {}, d.watchlists.join(", ") || "–"),
    h("td", {}, time(d.window_start), " to ", time(d.window_end)),
    h("td", {}, d.authorised_by || "–"));
}

// Newest first, a page at a time (GET /api/deployments?limit&cursor; "Show more" follows next_cursor).
const deployments = pagedList({
  path: () => "/api/deployments", after: table.closest(".table-wrap") || table, focusAfter: table,
  label: "Show more deployments", context: "Loading more deployments",
  show: tableRows(tbody, 7, "No deployments yet.", deploymentRow),
});

async function loadList() {
  try {
    await deployments.reload();
  } catch (err) {
    emptyRow(tbody, 7, "Could not load the deployments.");
    showError(err, "Loading deployments");
  }
}

let cameraCount = 0;

function addCamera(name = "", sourceValue = "") {
  cameraCount += 1;
  const n = cameraCount;
  const row = h("li", {},
    h("div", { class: "field" },
      h("label", { for: `cam-name-${n}` }, `Camera ${n} name`),
      h("input", { id: `cam-name-${n}`, name: "camera", required: true, maxlength: 60, value: name || `camera-${n}` })),
    h("div", { class: "field" },
      h("label", { for: `cam-source-${n}` }, `Camera ${n} source`),
      h("input", { id: `cam-source-${n}`, name: "source", required: true, maxlength: 1000, size: 40, value: sourceValue })),
    h("button", {
      type: "button", class: "button button-secondary", onclick: () => {
        if (document.querySelectorAll("#camera-rows li").length > 1) row.remove();
        else showError("a deployment needs at least one camera");
      },
    }, `Remove camera ${n}`));
  document.getElementById("camera-rows").append(row);
  return row;
}

async function loadWatchlists() {
  const box = document.getElementById("watchlist-choices");
  try {
    const rows = await allItems("/api/watchlists");
    if (!rows.length) {
      fill(box, h("p", {}, "No watchlists yet. ", h("a", { href: "/watchlists" }, "Create one first.")));
      return;
    }
    fill(box, h("div", { class: "choices" }, rows.map((w, i) => h("div", { class: "field check" },
      h("input", { type: "checkbox", id: `wl-${i}`, name: "watchlists", value: w.name }),
      h("label", { for: `wl-${i}` }, w.name, " ",
        w.status === "expired" ? badge("expired") : w.authorised_by ? badge("authorised") : badge("not authorised", "badge-warn"),
        ` (${w.subjects} subjects)`)))));
  } catch (err) {
    fill(box, h("p", {}, "Could not load the watchlists."));
    showError(err, "Loading watchlists");
  }
}

if (form && can("deployment.create")) {
  document.getElementById("add-camera").addEventListener("click", () => addCamera().querySelector("input").focus());
  addCamera("camera-1", "");
  loadWatchlists();
  onSubmit(form, async (data) => {
    const cameras = data.getAll("camera").map((camera, i) => ({ camera: camera.trim(), source: (data.getAll("source")[i] || "").trim() }));
    const body = {
      name: data.get("name").trim(),
      location: data.get("location").trim(),
      legal_basis: data.get("legal_basis").trim(),
      purpose: data.get("purpose").trim(),
      cameras,
      watchlists: data.getAll("watchlists"),
      window_start: localToIso(data.get("window_start")),
      window_end: localToIso(data.get("window_end")),
      false_alert_rate: Number(data.get("false_alert_rate") || 0.0001),
      trial: data.get("trial") === "on",
    };
    if (!body.name) throw new Error("give the deployment a name");
    if (!body.watchlists.length) throw new Error("choose at least one watchlist");
    if (cameras.some((c) => !c.camera || !c.source)) throw new Error("every camera needs a name and a source");
    const created = await api("/api/deployments", { method: "POST", json: body });
    location.assign(`/deployments/${created.id}`);
  }, "Creating the deployment");
}

loadList();
