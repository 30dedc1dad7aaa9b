// Retrospective search: upload a probe with a case reference and a reason (POST /api/search),
// then show each face found with its candidates as a grid, scores and any look-alike warning.
import { allItems, announce, api, badge, fill, h, oneIn, onSubmit, score, showError } from "./common.js";

const target = document.getElementById("target");
const section = document.getElementById("results-section");
const results = document.getElementById("results");

async function loadTargets() {
  try {
    const [galleries, watchlists] = await Promise.all([allItems("/api/galleries"), allItems("/api/watchlists")]);
    const group = (label, kind, rows) => (rows.length ? h("optgroup", { label },
      rows.map((c) => h("option", { value: `${kind}:${c.name}` }, `${c.name} (${c.subjects} subjects${c.status === "expired" ? ", expired" : ""})`))) : null);
    fill(target, h("option", { value: "" }, "Choose a gallery or watchlist"),
      group("Galleries", "gallery", galleries), group("Watchlists", "watchlist", watchlists));
  } catch (err) {
    fill(target, h("option", { value: "" }, "Could not load the collections"));
    showError(err, "Loading galleries and watchlists");
  }
}

function candidateCard(c, threshold) {
  const above = typeof threshold === "number" && c.score >= threshold;
  return h("li", { class: `candidate${above ? " above" : ""}` },
    h("img", { src: `/api/subjects/${encodeURIComponent(c.subject_id)}/image`, alt: `Enrolled face of candidate ${c.rank}, ${c.name}`, loading: "lazy" }),
    h("h4", {}, `${c.rank}. ${c.name || c.subject_id}`),
    h("p", {}, `Score ${score(c.score)}`, above ? [" ", badge("above threshold", "badge-info")] : null),
    h("p", {}, `Chance a different person scores this high: ${oneIn(c.fmr)}${c.fmr_is_upper_bound ? " or less" : ""}`),
    h("p", {}, `Expected false candidates at this score: ${Number(c.expected_false_candidates_at_this_score).toPrecision(2)}`),
    h("p", {}, h("code", {}, c.subject_id)));
}

function faceBlock(face, i, result) {
  const threshold = result["threshold_fmr_1e-4"];
  return h("section", { class: "face-result", "aria-labelledby": `face-${i}-heading` },
    h("h3", { id: `face-${i}-heading` }, `Face ${i + 1} in the probe`, face.time !== undefined ? ` (at ${face.time} s)` : ""),
    h("div", { class: "face-head" },
      face.crop ? h("img", { src: face.crop, alt: `Face ${i + 1} cropped from the probe` }) : null,
      h("div", {},
        h("p", {}, `Probe quality ${Number(face.quality).toFixed(2)} of 1`),
        face.warnings.length
          ? h("div", { class: "notice notice-warn", role: "note" }, h("p", {}, h("strong", {}, "Warning")),
            h("ul", {}, face.warnings.map((w) => h("li", {}, w))))
          : null)),
    face.candidates.length
      ? h("ol", { class: "candidates", "aria-label": `Candidates for face ${i + 1}, best first` },
        face.candidates.map((c) => candidateCard(c, threshold)))
      : h("p", { class: "empty" }, "No candidates (the collection is empty)."));
}

function showResults(r) {
  section.hidden = false;
  fill(results,
    h("p", {}, `Search ${r.id} in ${r.gallery} (${r.gallery_subjects} subjects), case ${r.case_ref}. `,
      `${r.faces.length} face${r.faces.length === 1 ? "" : "s"} found in the ${r.probe}. `,
      "Candidates outlined in blue score above the threshold for a 1 in 10,000 false match rate."),
    r.faces.length ? r.faces.map((f, i) => faceBlock(f, i, r)) : h("p", { class: "empty" }, "No face found in the probe."));
  document.getElementById("results-heading").focus();
  announce(`Search finished: ${r.faces.length} face(s), ${r.faces.reduce((n, f) => n + f.candidates.length, 0)} candidates.`);
}

onSubmit(document.getElementById("search-form"), async (data) => {
  const probe = data.get("probe");
  if (!probe || !probe.size) throw new Error("choose a probe image or video");
  const [kind, ...rest] = (data.get("target") || "").split(":");
  if (!kind) throw new Error("choose a gallery or watchlist to search");
  if (!(data.get("case_ref") || "").trim() || !(data.get("reason") || "").trim()) {
    throw new Error("a search needs a case reference and a reason");
  }
  const form = new FormData();
  form.append("probe", probe);
  form.append(kind, rest.join(":"));
  form.append("case_ref", data.get("case_ref").trim());
  form.append("reason", data.get("reason").trim());
  form.append("top", data.get("top") || "20");
  fill(results, h("p", {}, "Searching…"));
  section.hidden = false;
  try {
    showResults(await api("/api/search", { method: "POST", form }));
  } catch (err) {
    section.hidden = true;
    throw err;
  }
}, "Search");

loadTargets();
