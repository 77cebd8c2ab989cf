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

// ---------------------------------------------------------------------------------------------
// Chat: POST /api/chat/stream and read the Server-Sent Events as they arrive.
async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      let type = "message"; let data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("event: ")) type = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      yield { type, data: data ? JSON.parse(data) : {} };
    }
  }
}

function citationNode(source) {
  let link = null;
  if (source.kind === "article" && source.article_id) link = "/articles/" + source.article_id;
  else if (source.rule_source === "generated" && source.rule_key) link = "/queue/" + source.rule_key.split(":").pop();
  const label = link ? el("a", { href: link, class: "citation" }, source.title) : el("span", { class: "citation" }, source.title);
  return el("li", { value: String(source.number), id: "cite-" + source.number }, label,
    source.path ? el("span", { class: "muted mono" }, " " + source.path) : null);
}

function linkCitations(node, text) {
  // "[1]" markers become links to the numbered sources; everything else stays plain text.
  const parts = text.split(/(\[\d+\])/);
  node.replaceChildren(...parts.map((part) => {
    const m = part.match(/^\[(\d+)\]$/);
    return m ? el("a", { href: "#cite-" + m[1], class: "cite" }, part) : document.createTextNode(part);
  }));
}

function initChat() {
  const form = document.getElementById("chat-form");
  if (!form) return;
  const log = document.getElementById("chat-log");
  const index = document.getElementById("index-library");
  index.addEventListener("click", async () => {
    const status = document.getElementById("index-status");
    status.textContent = "indexing…";
    try {
      const r = await api("POST", "/api/chat/index");
      status.textContent = r.indexed ? `${r.articles} article(s), ${r.chunks} chunk(s) indexed` : r.detail;
    } catch (error) { showError(status, error); }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("chat-question");
    const question = input.value.trim();
    if (!question) return;
    const send = document.getElementById("chat-send");
    send.disabled = true;
    log.append(el("div", { class: "msg user" }, el("p", {}, question)));
    const answer = el("p", { class: "answer", "aria-live": "polite" });
    const sources = el("ol", { class: "citations" });
    const meta = el("p", { class: "muted meta" }, "retrieving…");
    const turn = el("div", { class: "msg assistant streaming" }, answer, sources, meta);
    log.append(turn);
    input.value = "";
    const body = { question, provider: document.getElementById("chat-provider").value };
    if (log.dataset.session) body.session_id = parseInt(log.dataset.session, 10);
    try {
      const response = await fetch("/api/chat/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), Accept: "text/event-stream" },
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        const data = await response.json().catch(() => ({ detail: response.statusText }));
        throw Object.assign(new Error(data.detail), { fix: data.fix });
      }
      let text = "";
      for await (const ev of sseEvents(response)) {
        if (ev.type === "session") { log.dataset.session = ev.data.session_id; }
        else if (ev.type === "sources") { sources.replaceChildren(...ev.data.sources.map(citationNode)); meta.textContent = "answering…"; }
        else if (ev.type === "token") {
          text += ev.data.text; answer.textContent = text;
          turn.dataset.tokens = String(parseInt(turn.dataset.tokens || "0", 10) + 1);
          if (!turn.dataset.firstTokenAt) turn.dataset.firstTokenAt = String(performance.now());
        }
        else if (ev.type === "error") { throw Object.assign(new Error(ev.data.message), { fix: ev.data.fix }); }
        else if (ev.type === "done") {
          const a = ev.data.answer;
          linkCitations(answer, a.text);
          const cited = new Set(a.citations);
          for (const li of sources.children) if (!cited.has(parseInt(li.value, 10))) li.classList.add("muted");
          const t = a.timings || {};
          meta.textContent = [a.provider && a.model ? `${a.provider}/${a.model}` : a.provider,
            t.retrieval_ms != null ? `retrieval ${Math.round(t.retrieval_ms)} ms` : null,
            t.time_to_first_token_s != null ? `first token ${t.time_to_first_token_s.toFixed(2)} s` : null,
            t.generation_tokens_per_s ? `${t.generation_tokens_per_s.toFixed(1)} tok/s` : null,
            a.stateful ? (a.continued_thread ? "thread continued" : "new thread") : null,
            a.server_stats && a.server_stats.input_tokens != null
              ? `server: ${a.server_stats.input_tokens} input / ${a.server_stats.total_output_tokens || 0} output tokens` : null,
          ].filter(Boolean).join(" · ");
          turn.classList.remove("streaming");
          turn.dataset.doneAt = String(performance.now());
          turn.dataset.done = "true";
        }
      }
    } catch (error) {
      showError(meta, error);
      turn.dataset.done = "error";
    } finally { send.disabled = false; }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  initSettings();
  initChat();
  if (window.ctistudioPage) window.ctistudioPage();
});
