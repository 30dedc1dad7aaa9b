// Transparency reports: the annual report (GET /api/reports/annual/{year}) as totals and a
// table; its charts are the ones the server draws for the HTML report (format=html), taken
// from that document as images. Downloads in CSV, HTML and JSON.
import { announce, api, facts, fill, h, onSubmit, showError } from "./common.js";

const form = document.getElementById("year-form");
const COLUMNS = [
  ["deployment_id", "Deployment"], ["name", "Name"], ["date", "Date"], ["duration_minutes", "Minutes"],
  ["faces_seen", "Faces seen"], ["alerts", "Alerts"], ["true_alerts", "Confirmed"], ["false_alerts", "False"],
  ["unverified_alerts", "Unverified"], ["undecided_alerts", "Undecided"], ["false_alert_rate", "False alert rate"],
  ["engagements", "Engagements"], ["arrests", "Arrests"],
];

const show = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? String(Number(v.toPrecision(3))) : String(v));

async function charts(url) {
  const box = document.getElementById("charts");
  try {
    const text = await api(url);
    // The report's own <style> is dropped first: the parsed document shares this page's
    // Content-Security-Policy, which refuses inline styles. Only the chart images are used.
    const doc = new DOMParser().parseFromString(text.replace(/<style[\s\S]*?<\/style>/gi, ""), "text/html");
    const images = [...doc.querySelectorAll("img")].filter((img) => (img.getAttribute("src") || "").startsWith("data:image/"));
    if (!images.length) return fill(box, h("p", { class: "empty" }, "No deployments in this period, so no charts."));
    fill(box, images.map((img, i) => h("figure", { class: "chart" },
      h("img", { src: img.getAttribute("src"), alt: img.getAttribute("alt") || `Chart ${i + 1}` }),
      h("figcaption", {}, img.getAttribute("alt") || `Chart ${i + 1}`, ". The same figures are in the table below."))));
  } catch (err) {
    fill(box, h("p", {}, "Could not draw the charts."));
    showError(err, "Charts");
  }
}

async function load() {
  const data = new FormData(form);
  const year = Number(data.get("year"));
  const trials = data.get("include_trials") === "on";
  const base = `/api/reports/annual/${year}`;
  const q = (fmt) => `${base}?format=${fmt}${trials ? "&include_trials=true" : ""}`;
  document.getElementById("report-year").textContent = String(year);
  fill(document.getElementById("downloads"), "Download: ",
    h("a", { href: q("csv"), download: `vigil-lfr-${year}.csv` }, `CSV (${year})`),
    h("a", { href: q("html") }, `HTML report (${year})`),
    h("a", { href: q("json") }, `JSON (${year})`));
  const report = await api(q("json"));
  const t = report.totals;
  fill(document.getElementById("totals"), facts([
    ["Deployments", show(t.deployments)], ["Faces seen", show(t.faces_seen)], ["Alerts", show(t.alerts)],
    ["Confirmed alerts", show(t.true_alerts)], ["False alerts", show(t.false_alerts)],
    ["Unverified alerts", show(t.unverified_alerts)], ["Undecided alerts", show(t.undecided_alerts)],
    ["False alert rate", show(t.false_alert_rate)], ["Engagements", show(t.engagements)], ["Arrests", show(t.arrests)],
  ]));
  const table = document.getElementById("deployments");
  if (!report.deployments.length) fill(table, h("p", { class: "empty" }, "No deployments in this period."));
  else {
    fill(table, h("table", {},
      h("caption", { class: "visually-hidden" }, `Deployments in ${year}`),
      h("thead", {}, h("tr", {}, COLUMNS.map(([, label]) => h("th", { scope: "col" }, label)), h("th", { scope: "col" }, "Report"))),
      h("tbody", {}, report.deployments.map((r) => h("tr", {},
        COLUMNS.map(([key]) => (key === "name" ? h("td", {}, h("a", { href: `/deployments/${r.deployment_id}` }, r.name))
          : h("td", { class: typeof r[key] === "number" ? "num" : "" }, show(r[key])))),
        h("td", {}, h("a", { href: `/api/reports/deployments/${r.deployment_id}?format=html` }, "HTML",
          h("span", { class: "visually-hidden" }, ` report for deployment ${r.deployment_id}`))))))));
  }
  await charts(q("html"));
  announce(`Report for ${year} shown.`);
}

onSubmit(form, load, "Loading the report");
load().catch((err) => showError(err, "Loading the report"));
