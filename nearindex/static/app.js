// nearindex web page: plain JavaScript, no build step. Tabs follow the URL hash:
// #search, #duplicates, #diff (or #diff?a=PATH&b=PATH for two stored images), #info.
"use strict";

const state = { upload: null, loaded: {} };

function $(selector) { return document.querySelector(selector); }

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function thumbnail(path, side = 200) {
  return element("img", { src: `/image?path=${encodeURIComponent(path)}&side=${side}`, alt: path, loading: "lazy" });
}

function setStatus(id, text, isError = false) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

async function fetchJson(url, options) {
  const response = await fetch(url, options);
  const document = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(document.error || `${response.status} ${response.statusText}`);
  return document;
}

function diffHash(a, b) {
  return `#diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
}

// -- tabs ------------------------------------------------------------------------------
function showTab() {
  const [name, query] = (location.hash.slice(1) || "search").split("?");
  const tab = ["search", "duplicates", "diff", "info"].includes(name) ? name : "search";
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== `tab-${tab}`;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.tab === tab);
  if (tab === "duplicates" && !state.loaded.duplicates) loadDuplicates();
  if (tab === "info") loadInfo();
  if (tab === "diff" && query) {
    const params = new URLSearchParams(query);
    if (params.get("a") && params.get("b")) diffStored(params.get("a"), params.get("b"));
  }
}

// -- search ----------------------------------------------------------------------------
async function search(file) {
  state.upload = file;
  $("#search-query").replaceChildren(element("img", { src: URL.createObjectURL(file), alt: file.name }),
    element("span", {}, `query: ${file.name} (${Math.round(file.size / 1024)} KB)`));
  $("#search-results").replaceChildren();
  setStatus("#search-status", "searching...");
  const form = new FormData();
  form.append("file", file);
  try {
    const document = await fetchJson(`/api/query?k=${$("#search-k").value || 10}`, { method: "POST", body: form });
    showResults(document.results);
  } catch (error) {
    setStatus("#search-status", error.message, true);
  }
}

function showResults(results) {
  setStatus("#search-status", results.length ? `${results.length} results, best first` : "no similar images");
  $("#search-results").replaceChildren(...results.map(resultCard));
}

function resultCard(match) {
  const relation = match.relation;
  const heading = element("div", {}, element("span", { class: "score" }, match.score.toFixed(3)), ` ${relation.kind}`);
  if (relation.edited) heading.append(element("span", { class: "badge edited", title: "a local region differs" }, "edited"));
  if (match.mirrored) heading.append(element("span", { class: "badge mirrored" }, "mirrored"));
  const link = element("a", { href: "#diff", class: "diff-link" }, "diff with the query");
  link.addEventListener("click", (event) => { event.preventDefault(); diffUpload(match.path); });
  const details = `coarse ${match.coarse.toFixed(3)}` + (relation.scale ? `, x${relation.scale.toFixed(2)}` : "");
  return element("li", { class: "result" }, thumbnail(match.path), heading,
    element("div", { class: "path" }, match.path), element("div", { class: "path" }, details), link);
}

function setUpSearch() {
  const input = $("#search-file"), zone = $("#drop-zone");
  input.addEventListener("change", () => { if (input.files.length) search(input.files[0]); });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) search(event.dataTransfer.files[0]);
  });
}

// -- diff ------------------------------------------------------------------------------
function box(values) {
  const [x, y, w, h] = values;
  return `${w} x ${h} at (${x}, ${y})`;
}

function showDifference(document, pictureUrl, nameA, nameB) {
  const count = document.regions.length;
  const regions = count ? `${count} ${count === 1 ? "region differs" : "regions differ"}` : "nothing changed";
  $("#diff-summary").textContent = `A: ${nameA} | B: ${nameB} | score ${document.score.toFixed(3)}, aligned by ` +
    `${document.aligned_by}; B covers ${document.overlap_a.toFixed(0)} % of A, A covers ` +
    `${document.overlap_b.toFixed(0)} % of B; ${regions}`;
  $("#diff-picture").src = pictureUrl;
  $("#diff-regions tbody").replaceChildren(...document.regions.map((region, n) => element("tr", {},
    element("td", {}, String(n + 1)), element("td", {}, box(region.box_a)), element("td", {}, box(region.box_b)),
    element("td", {}, region.score.toFixed(2)))));
  $("#diff-result").hidden = false;
  setStatus("#diff-status", "");
}

async function diffStored(a, b) {
  $("#diff-a").value = a;
  $("#diff-b").value = b;
  $("#diff-result").hidden = true;
  setStatus("#diff-status", "aligning...");
  const query = `a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
  try {
    const document = await fetchJson(`/api/diff?${query}`);
    showDifference(document, `/api/diff.png?${query}`, a, b);
  } catch (error) {
    setStatus("#diff-status", error.message, true);
  }
}

async function diffUpload(path) {
  history.pushState(null, "", "#diff");
  showTab();
  $("#diff-a").value = path;
  $("#diff-b").value = "";
  $("#diff-b").placeholder = `the query: ${state.upload.name}`;
  $("#diff-result").hidden = true;
  setStatus("#diff-status", "aligning...");
  const form = new FormData();
  form.append("a", path);
  form.append("file", state.upload);
  try {
    const document = await fetchJson("/api/diff", { method: "POST", body: form });
    showDifference(document, document.picture, path, state.upload.name);
  } catch (error) {
    setStatus("#diff-status", error.message, true);
  }
}

function setUpDiff() {
  $("#diff-form").addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = diffHash($("#diff-a").value.trim(), $("#diff-b").value.trim());
  });
}

// -- duplicates and info ---------------------------------------------------------------
async function loadDuplicates() {
  setStatus("#duplicates-status", "finding groups...");
  try {
    const document = await fetchJson("/api/duplicates");
    state.loaded.duplicates = true;
    setStatus("#duplicates-status", document.groups.length ? `${document.groups.length} groups` : "no duplicate groups");
    $("#duplicates-groups").replaceChildren(...document.groups.map(groupBlock));
  } catch (error) {
    setStatus("#duplicates-status", error.message, true);
  }
}

function groupBlock(group, n) {
  const [first] = group.paths;
  const members = group.paths.map((path) => {
    const card = element("div", { class: "member" }, thumbnail(path), element("div", { class: "path" }, path));
    if ((group.edited || []).includes(path)) {
      card.append(element("span", { class: "badge edited", title: "differs locally from the group's largest image" }, "edited"));
    }
    if (path !== first) card.append(element("a", { href: diffHash(first, path), class: "diff-link" }, "diff with the first"));
    return card;
  });
  const title = `group ${n + 1}: ${group.paths.length} images, score ${group.score.toFixed(3)}`;
  return element("div", { class: "group" }, element("h3", {}, title), element("div", { class: "members" }, ...members));
}

const INFO_ROWS = [
  ["directory", "database"], ["images", "images"], ["contents", "contents"], ["flat", "flat"],
  ["failed", "failed"], ["vectors", "vectors"], ["index_kind", "index"], ["generation", "generation"],
  ["schema", "schema"], ["catalog_bytes", "catalog bytes"], ["index_bytes", "index bytes"], ["grid", "grid"],
  ["thumb_side", "thumbnail px"], ["duplicate_threshold", "threshold"], ["calibrated", "calibrated here"],
];

async function loadInfo() {
  try {
    const info = await fetchJson("/api/info");
    $("#database").textContent = info.directory;
    $("#info-table tbody").replaceChildren(...INFO_ROWS.map(([key, label]) =>
      element("tr", {}, element("th", {}, label), element("td", {}, String(info[key])))));
    setStatus("#info-status", "");
  } catch (error) {
    setStatus("#info-status", error.message, true);
  }
}

window.addEventListener("hashchange", showTab);
window.addEventListener("DOMContentLoaded", () => {
  setUpSearch();
  setUpDiff();
  showTab();
  fetchJson("/api/info").then((info) => { $("#database").textContent = info.directory; }).catch(() => {});
});
