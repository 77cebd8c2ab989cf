// ctistudio page scripts: no build step, no inline scripts (the CSP forbids them).
// Everything that shows server data builds DOM nodes with textContent, never innerHTML.
"use strict";

const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), Accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = { detail: response.statusText }; }
  if (!response.ok) {
    const error = new Error((data && data.detail) || response.statusText);
    error.fix = data && data.fix;
    error.status = response.status;
    throw error;
  }
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showError(target, error) {
  target.replaceChildren(el("div", { class: "notice error", role: "alert" },
    el("p", {}, error.message), error.fix ? el("p", { class: "fix" }, "Fix: " + error.fix) : null));
}

// HTMX: swap error responses into their target too (the server sends a readable fragment).
// An element (or its form) with data-error-target sends its errors there instead of over its target.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status >= 400) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
    const source = event.detail.requestConfig && event.detail.requestConfig.elt;
    const holder = source && source.closest("[data-error-target]");
    const target = holder && document.querySelector(holder.dataset.errorTarget);
    if (target) event.detail.target = target;
  }
});

// ---------------------------------------------------------------------------------------------
// Settings → Agentic Workflow Configuration
function changedSettings(form) {
  const values = {}; const clear = [];
  for (const input of form.querySelectorAll("[name][data-kind]")) {
    const kind = input.dataset.kind; const initial = input.dataset.initial ?? "";
    if (kind === "bool") {
      const now = input.checked ? "true" : "false";
      if (now !== initial) values[input.name] = input.checked;
    } else if (kind === "secret") {
      if (input.value !== "") values[input.name] = input.value;
    } else if (input.value !== initial) {
      if (input.value === "") clear.push(input.name);
      else values[input.name] = kind === "int" ? parseInt(input.value, 10) : kind === "float" ? parseFloat(input.value) : input.value;
    }
  }
  for (const box of form.querySelectorAll("[data-clear]")) if (box.checked) clear.push(box.dataset.clear);
  return { values, clear };
}

function renderReport(target, report) {
  const mark = (c) => (c.ok ? "✔" : c.level === "error" ? "✘" : "!");
  const cls = (c) => (c.ok ? "ok" : c.level === "error" ? "fail" : "warn");
  target.dataset.ok = String(report.ok);
  target.replaceChildren(
    el("p", {}, el("span", { class: "badge " + (report.ok ? "ok" : "fail") }, report.ok ? "Connected" : "Failed"),
      " ", report.provider, report.url ? " at " + report.url : "", ` (${report.duration_s.toFixed(2)}s)`),
    el("ul", {}, ...report.checks.map((c) => el("li", { class: "check " + cls(c) },
      el("span", { class: "badge " + cls(c) }, mark(c)), " ", el("strong", {}, c.name), ": ", c.detail,
      c.fix ? el("div", { class: "fix" }, "Fix: " + c.fix) : null))));
}

function modelLabel(m) {
  if (m.loaded) return `${m.id} — loaded · ${m.context_length ? m.context_length.toLocaleString("en-US") + " ctx" : "context unknown"}`;
  if (m.loaded === false) return `${m.id} — not loaded${m.max_context_length ? " (max " + m.max_context_length.toLocaleString("en-US") + ")" : ""}`;
  return m.id;
}

function fillModelSelects(provider, models) {
  for (const select of document.querySelectorAll(`select[data-kind="model"][data-provider="${provider}"]`)) {
    const current = select.value;
    const options = [];
    if (select.name) options.push(el("option", { value: "" }, "(default model)"));
    const known = new Set(models.map((m) => m.id));
    if (current && !known.has(current)) options.push(el("option", { value: current }, current + " — not on the server"));
    for (const m of models) {
      if (select.name === "lmstudio_embedding_model" ? m.type === "llm" : m.type === "embedding") continue;
      options.push(el("option", { value: m.id }, modelLabel(m)));
    }
    select.replaceChildren(...options);
    select.value = current;
  }
}

async function refreshModels(form, provider) {
  const status = document.getElementById("models-status-" + provider);
  if (status) status.textContent = "loading the model list…";
  try {
    const { values } = changedSettings(form);
    const models = await api("POST", `/api/providers/${provider}/models`, { settings: values });
    fillModelSelects(provider, models);
    if (status) status.textContent = `${models.length} model(s) on the server, ${models.filter((m) => m.loaded).length} loaded`;
  } catch (error) {
    if (status) status.textContent = "model list unavailable: " + error.message;
  }
}

function initSettings() {
  const form = document.getElementById("settings-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("save-status");
    const { values, clear } = changedSettings(form);
    status.textContent = "saving…";
    try {
      const view = await api("PUT", "/api/settings", { ...values, clear });
      for (const s of view.settings) {
        const input = form.querySelector(`[name="${s.name}"]`);
        if (!input) continue;
        if (s.secret) { input.value = ""; input.placeholder = s.value + " — type to replace"; continue; }
        input.dataset.initial = s.kind === "bool" ? String(s.value) : s.value === null ? "" : String(s.value);
      }
      for (const box of form.querySelectorAll("[data-clear]")) box.checked = false;
      status.replaceChildren(el("span", { class: "badge ok" }, "Saved"), " applies everywhere without a restart");
    } catch (error) { showError(status, error); }
  });
  for (const button of form.querySelectorAll("[data-test]")) {
    button.addEventListener("click", async () => {
      const provider = button.dataset.test;
      const target = document.getElementById("report-" + provider);
      target.replaceChildren(el("span", { class: "muted" }, "testing…"));
      button.disabled = true;
      try { renderReport(target, await api("POST", `/api/providers/${provider}/test`, { settings: changedSettings(form).values })); }
      catch (error) { showError(target, error); }
      finally { button.disabled = false; }
    });
  }
  for (const button of form.querySelectorAll("[data-refresh-models]")) {
    button.addEventListener("click", () => refreshModels(form, button.dataset.refreshModels));
  }
  const load = document.getElementById("load-button");
  if (load) load.addEventListener("click", async () => {
    const target = document.getElementById("load-result");
    const model = document.getElementById("load-model").value;
    const context = parseInt(document.getElementById("load-context").value, 10) || null;
    target.replaceChildren(el("span", { class: "muted" }, `loading ${model}…`));
    load.disabled = true;
    try {
      const r = await api("POST", "/api/providers/lmstudio/load", { model, context_length: context });
      target.replaceChildren(el("span", { class: "badge ok" }, r.reused ? "Already loaded" : "Loaded"),
        ` ${r.instance_id} with ${r.context_length ? r.context_length.toLocaleString("en-US") : "default"} tokens`);
      refreshModels(form, "lmstudio");
    } catch (error) { showError(target, error); }
    finally { load.disabled = false; }
  });
  refreshModels(form, "lmstudio");
}

document.addEventListener("DOMContentLoaded", () => {
  initSettings();
  if (window.ctistudioPage) window.ctistudioPage();
});
