// Lamina's web console: plain JavaScript, no build step, nothing loaded from the network.
// It reads the engine's JSON endpoints under /_lamina/ and polls them while "live" is on.
"use strict";
(() => {
  const view = document.getElementById("view");
  const liveBox = document.getElementById("live");
  const FINAL = new Set(["success", "error", "failed", "rejected", "dropped", "bisected",
    "stopped"]);
  const STATUSES = ["success", "error", "failed", "rejected", "running", "queued", "retrying",
    "dropped", "bisected", "stopped"];
  const PERIODS = [["", "any time"], ["5m", "last 5 min"], ["15m", "last 15 min"],
    ["1h", "last hour"], ["6h", "last 6 h"], ["1d", "last day"]];
  const state = { engine: null, fetchedAt: 0, functions: [], mappings: [] };
  let timer = null;
  let generation = 0;

  // helpers ---------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.Message || body.message || `HTTP ${response.status}`);
    return body;
  }

  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function fmtTime(epoch) {
    if (epoch === null || epoch === undefined) return "–";
    const d = new Date(epoch * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
      pad(d.getMilliseconds(), 3);
  }
  function fmtSeconds(s) {
    if (s === null || s === undefined) return "–";
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    if (s < 120) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
    if (s < 7200) return `${(s / 60).toFixed(1)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }
  const fmtMs = (ms) => (ms === null || ms === undefined ? "–" : `${Number(ms).toFixed(2)} ms`);
  const badge = (text, kind) => h("span", { class: `badge ${kind || text}` }, text);
  const short = (id) => (id ? String(id).slice(0, 8) : "");
  const param = (values) => new URLSearchParams(
    Object.entries(values).filter(([, v]) => v !== "" && v !== null && v !== undefined));

  function engineNow() {
    if (!state.engine) return Date.now() / 1000;
    return state.engine.Now + (Date.now() / 1000 - state.fetchedAt) * state.engine.TimeScale;
  }

  function setStatus(text, bad) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.style.color = bad ? "var(--err)" : "";
  }

  function later(fn, ms) {
    clearTimeout(timer);
    const mine = generation;
    timer = setTimeout(async () => {
      if (mine !== generation) return;
      if (liveBox.checked) {
        try { await fn(); setStatus(`updated ${new Date().toLocaleTimeString()}`); }
        catch (error) { setStatus(`update failed: ${error.message}`, true); }
      }
      if (mine === generation) later(fn, ms);
    }, ms);
  }

  async function loadOverview() {
    const overview = await api("/_lamina/overview");
    state.engine = overview;
    state.fetchedAt = Date.now() / 1000;
    state.functions = overview.Functions;
    state.mappings = overview.Mappings;
    const scale = overview.TimeScale === 1 ? "" :
      overview.TimeScale === 0 ? " · virtual time" : ` · time ×${overview.TimeScale}`;
    const sandbox = overview.Sandbox || {};
    const engine = document.getElementById("engine");
    engine.textContent =
      `engine time ${fmtTime(overview.Now)}${scale} · ` +
      `${overview.Account.ConcurrentExecutions}/${overview.Account.ConcurrencyLimit} running` +
      (sandbox.Warning ? " · ⚠ no sandbox" : "");
    engine.title = sandbox.Warning || `sandbox: ${sandbox.Description || sandbox.Mode || "?"}`;
    return overview;
  }

  function envChips(environments) {
    const counts = {};
    for (const env of environments) counts[env.State] = (counts[env.State] || 0) + 1;
    const chips = ["busy", "warm", "frozen", "starting"].filter((s) => counts[s])
      .map((s) => h("span", { class: `chip ${s}`, title: s }, `${counts[s]} ${s}`));
    return chips.length ? chips : h("span", { class: "muted" }, "none");
  }

  function table(headers, rows, attrs) {
    return h("div", { class: "table-wrap" }, h("table", attrs || {},
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
      h("tbody", {}, rows)));
  }

  // functions -------------------------------------------------------------------------
  function functionRow(fn) {
    const c = fn.Concurrency;
    const q = fn.AsyncQueue;
    return h("tr", { "data-function": fn.FunctionName },
      h("td", {}, h("a", { href: `#/functions/${encodeURIComponent(fn.FunctionName)}`,
        class: "fn-link" }, fn.FunctionName)),
      h("td", {}, fn.Runtime || "–"),
      h("td", {}, badge(fn.State, fn.State === "Active" ? "success" : "running")),
      h("td", {}, `${fn.MemorySize} MB · ${fn.Timeout} s`),
      h("td", {}, fn.Versions.length ? fn.Versions.join(", ") : "$LATEST"),
      h("td", {}, fn.Aliases.map((a) => a.Name).join(", ") || "–"),
      h("td", {}, `${c.InFlight} running` + (c.Reserved === null ? "" : ` / ${c.Reserved} reserved`) +
        (c.Provisioned.length ? ` · ${c.Provisioned.reduce((n, p) => n + p.Requested, 0)} provisioned` : "")),
      h("td", {}, envChips(fn.Environments)),
      h("td", {}, q.Depth ? `${q.Depth} · oldest ${fmtSeconds(q.OldestEventAgeSeconds)}` : "0"),
      h("td", {}, h("a", { href: `#/invocations?function=${encodeURIComponent(fn.FunctionName)}` },
        "invocations")));
  }

  async function functionsView() {
    const search = h("input", { type: "search", id: "function-search",
      placeholder: "Find a function", "aria-label": "Find a function" });
    const holder = h("div", {});
    view.replaceChildren(h("h1", {}, "Functions"), h("div", { class: "toolbar" }, search), holder);
    const draw = () => {
      const wanted = search.value.trim().toLowerCase();
      const shown = state.functions.filter((f) => f.FunctionName.toLowerCase().includes(wanted));
      holder.replaceChildren(shown.length ? table(["Function", "Runtime", "State", "Memory · timeout",
        "Versions", "Aliases", "Concurrency", "Environments", "Async queue", ""],
        shown.map(functionRow), { id: "functions-table" })
        : h("div", { class: "empty panel" }, state.functions.length ? "No function matches."
          : "No functions yet: create one with the AWS CLI or boto3."));
    };
    search.addEventListener("input", draw);
    await loadOverview();
    draw();
    search.focus();
    later(async () => { await loadOverview(); draw(); }, 2000);
  }

  function kv(pairs) {
    return h("dl", { class: "kv" }, pairs.filter(([, v]) => v !== undefined)
      .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === null || v === "" ? "–" : v)]));
  }

  function functionDetail(fn) {
    const cfg = fn.Configuration;
    const c = fn.Concurrency;
    const versions = [["$LATEST", cfg], ...fn.VersionConfigurations.map((v) => [v.Version, v])];
    return [
      h("div", { class: "cards" },
        h("div", { class: "panel" }, h("h2", {}, "Configuration"), kv([
          ["Runtime", cfg.Runtime], ["Handler", cfg.Handler], ["Memory", `${cfg.MemorySize} MB`],
          ["Timeout", `${cfg.Timeout} s`], ["State", cfg.State], ["Code SHA-256", cfg.CodeSha256],
          ["Last modified", cfg.LastModified], ["Role", cfg.Role],
          ["Environment", Object.keys((cfg.Environment || {}).Variables || {}).join(", ")],
          ["Layers", (cfg.Layers || []).map((l) => l.Arn).join(", ")],
          ["Function URLs", (fn.FunctionUrls || []).map((u) =>
            `${u.FunctionUrl} (${u.AuthType}, ${u.InvokeMode})`).join("; ")],
          ["Dead-letter target", fn.DeadLetterTarget]])),
        h("div", { class: "panel" }, h("h2", {}, "Concurrency"), kv([
          ["Running now", String(c.InFlight)],
          ["Reserved", c.Reserved === null ? "unreserved pool" : String(c.Reserved)],
          ["Provisioned", c.Provisioned.map((p) =>
            `${p.Qualifier}: ${p.Available}/${p.Requested} ${p.Status}`).join("; ")],
          ["Async queue", `${fn.AsyncQueue.Depth} events` + (fn.AsyncQueue.Depth ?
            `, oldest ${fmtSeconds(fn.AsyncQueue.OldestEventAgeSeconds)}` : "")],
          ["Async config", fn.EventInvokeConfigs.map((e) => `${e.Qualifier}: retries ` +
            `${e.MaximumRetryAttempts ?? 2}, max age ${e.MaximumEventAgeInSeconds ?? 21600} s` +
            (e.OnSuccess ? `, on success → ${e.OnSuccess}` : "") +
            (e.OnFailure ? `, on failure → ${e.OnFailure}` : "")).join("; ")]]))),
      h("h2", {}, "Versions and aliases"),
      table(["Version", "Description", "Code SHA-256", "Last modified", "Aliases", "Environments"],
        versions.map(([version, v]) => h("tr", {}, h("td", {}, version), h("td", {}, v.Description || "–"),
          h("td", { class: "mono" }, short(v.CodeSha256)), h("td", {}, v.LastModified),
          h("td", {}, fn.Aliases.filter((a) => a.FunctionVersion === version).map((a) => a.Name +
            (a.RoutingConfig ? ` (+${JSON.stringify(a.RoutingConfig.AdditionalVersionWeights)})` : ""))
            .join(", ") || "–"),
          h("td", {}, envChips(fn.Environments.filter((e) => e.Version === version)))))),
      h("h2", {}, "Execution environments"),
      fn.Environments.length ? table(["Environment", "Version", "State", "Provisioned", "Idle for",
        "Log stream"], fn.Environments.map((e) => h("tr", {}, h("td", { class: "mono" }, short(e.Id)),
        h("td", {}, e.Version), h("td", {}, h("span", { class: `chip ${e.State}` }, e.State)),
        h("td", {}, e.Provisioned ? "yes" : "no"), h("td", {}, fmtSeconds(e.IdleSeconds)),
        h("td", { class: "mono" }, e.LogStream))))
        : h("div", { class: "empty panel" }, "No environment is running."),
      h("h2", {}, "Event source mappings"), mappingTable(fn.Mappings),
    ];
  }

  // debug mode of $LATEST (lamina debug): drawn once, not redrawn with the rest
  function debugPanel(name) {
    const path = `/_lamina/debug/${encodeURIComponent(name)}`;
    const status = h("span", { id: "debug-status" }, "…");
    const port = h("input", { id: "debug-port", type: "number", min: 1024, max: 65535,
      placeholder: "default", style: "width: 7em" });
    const wait = h("input", { id: "debug-wait", type: "checkbox" });
    const button = h("button", { id: "debug-toggle", type: "button" }, "…");
    let on = null;
    const show = (settings) => {
      on = settings;
      status.textContent = settings ? `on: next environment listens on 127.0.0.1:${settings.Port}` +
        (settings.Wait ? ", and waits for a debugger to attach" : "") +
        "; the timeout does not fire" : "off";
      button.textContent = settings ? "Stop debugging" : "Debug the next invocation";
    };
    button.addEventListener("click", async () => {
      try {
        if (on) {
          await fetch(path, { method: "DELETE" });
          show(null);
          return;
        }
        const body = { Wait: wait.checked };
        if (port.value) body.Port = Number(port.value);
        const response = await fetch(path, { method: "PUT", body: JSON.stringify(body) });
        const answer = await response.json();
        if (!response.ok) throw new Error(answer.Message || answer.message || response.status);
        show(answer);
      } catch (error) { status.textContent = `error: ${error.message}`; }
    });
    api(path).then(show, () => show(null));
    return h("div", { class: "panel", id: "debug-panel" }, h("h2", {}, "Debugger"),
      h("p", {}, "Runs $LATEST's next environment under debugpy (Python) or Node's inspector; ",
        "attach from VS Code (docs/DEBUGGING.md)."),
      h("p", {}, "Port ", port, " ", h("label", {}, wait, " wait for the debugger"), " ", button),
      h("p", {}, "Debug mode: ", status));
  }

  async function functionView(name) {
    const holder = h("div", {});
    const recent = h("div", {});
    view.replaceChildren(h("h1", {}, h("a", { href: "#/functions" }, "Functions"), " / ", name),
      holder, debugPanel(name), h("h2", {}, "Recent invocations ",
        h("a", { href: `#/invocations?function=${encodeURIComponent(name)}` }, "(all)")), recent);
    const load = async () => {
      const [fn, listed] = await Promise.all([
        api(`/_lamina/functions/${encodeURIComponent(name)}`),
        api(`/_lamina/invocations?${param({ function: name, limit: 20 })}`)]);
      holder.replaceChildren(...functionDetail(fn));
      recent.replaceChildren(invocationTable(listed.Invocations));
    };
    try { await loadOverview(); await load(); }
    catch (error) { holder.replaceChildren(h("div", { class: "error-box" }, error.message)); return; }
    later(load, 2000);
  }

  // invocations -----------------------------------------------------------------------
  function invocationTable(items) {
    if (!items.length) return h("div", { class: "empty panel" }, "No invocations recorded.");
    return table(["Accepted (engine time)", "Function", "Type", "Outcome", "Attempts", "Duration",
      "Error", "Request id"], items.map((item) => h("tr", { "data-request-id": item.RequestId },
      h("td", {}, fmtTime(item.AcceptedAt)),
      h("td", {}, h("a", { href: `#/functions/${encodeURIComponent(item.FunctionName)}` },
        item.FunctionName + (item.Qualifier ? `:${item.Qualifier}` : ""))),
      h("td", {}, kindOf(item.InvocationType)), h("td", {}, badge(item.Status)),
      h("td", {}, String(item.Attempts)), h("td", {}, fmtMs(item.DurationMs)),
      h("td", {}, item.ErrorType || ""),
      h("td", { class: "mono" }, h("a", { href: `#/invocations/${item.RequestId}`,
        class: "trace-link" }, item.RequestId)))), { id: "invocations-table" });
  }

  function kindOf(type) {
    return { RequestResponse: "sync", Event: "async", EventSourceMapping: "mapping" }[type] || type;
  }

  function select(id, label, options, value) {
    return h("select", { id, "aria-label": label }, options.map(([v, text]) =>
      h("option", { value: v, selected: v === value }, text)));
  }

  async function invocationsView(query) {
    await loadOverview();
    const filters = {
      function: select("filter-function", "Function", [["", "all functions"],
        ...state.functions.map((f) => [f.FunctionName, f.FunctionName])], query.get("function") || ""),
      type: select("filter-type", "Type", [["", "all types"], ["sync", "sync"], ["async", "async"],
        ["mapping", "mapping"]], query.get("type") || ""),
      status: select("filter-status", "Outcome", [["", "all outcomes"],
        ...STATUSES.map((s) => [s, s])], query.get("status") || ""),
      since: select("filter-since", "Time", PERIODS, query.get("since") || ""),
    };
    const holder = h("div", {});
    const more = h("button", { type: "button", id: "older" }, "Older");
    let items = [];
    let next = null;
    const wanted = () => Object.fromEntries(Object.entries(filters).map(([k, n]) => [k, n.value]));
    const fetchPage = (before) => api(`/_lamina/invocations?${param({ ...wanted(), before, limit: 50 })}`);
    const draw = () => {
      holder.replaceChildren(invocationTable(items));
      more.style.display = next === null ? "none" : "";
    };
    const reload = async () => {
      const page = await fetchPage(null);
      const extra = items.length > 50 ? items.filter((i) => i.AcceptedAt < (page.NextBefore ?? 0)) : [];
      items = [...page.Invocations, ...extra];
      if (!extra.length) next = page.NextBefore ?? null;
      draw();
    };
    for (const node of Object.values(filters)) {
      node.addEventListener("change", async () => {
        history.replaceState(null, "", `#/invocations?${param(wanted())}`);
        items = [];
        await reload();
      });
    }
    more.addEventListener("click", async () => {
      const page = await fetchPage(next);
      items = [...items, ...page.Invocations];
      next = page.NextBefore ?? null;
      draw();
    });
    view.replaceChildren(h("h1", {}, "Invocations"),
      h("div", { class: "toolbar" }, Object.values(filters)), holder, h("p", {}, more));
    await reload();
    later(reload, 2000);
  }

  // the timeline of one invocation ------------------------------------------------------
  function describe(entry, scale) {
    const e = entry;
    const dest = (kind) => (kind === "dlq" ? "DLQ" : kind === "on_failure" ? "OnFailure" :
      kind === "on_success" ? "OnSuccess" : kind);
    switch (e.Kind) {
      case "accepted": return [`accepted`, `type ${kindOf(e.type)}` +
        (e.version ? ` · version ${e.version}` : "") + (e.sdk_retry_of ? ` · SDK retry of ${short(e.sdk_retry_of)}` : "") +
        (e.source ? ` · from ${e.source}` + (e.schedule ? ` schedule ${e.schedule} (${e.scheduled_time})` : "") +
          (e.route ? ` ${e.api} ${e.route}` : "") : "")];
      case "queued": return ["queued", "in the async queue"];
      case "attempt": return [`attempt ${e.attempt}`, [e.start === "cold" ?
        `cold start · init ${fmtMs(e.init_ms)}` : "warm", `duration ${fmtMs(e.duration_ms)}`,
        e.outcome + (e.error_type ? ` ${e.error_type}` : ""), `env ${short(e.environment)}`].join(" · ")];
      case "retry_scheduled": return ["retry scheduled", `in ${fmtSeconds(e.delay_s)} · ` +
        `${String(e.reason).replace(/_/g, " ")} · after ${e.invocations} invocation(s)`];
      case "throttled": return ["throttled", e.reason || e.error || ""];
      case "rejected": return ["rejected", e.error || ""];
      case "discarded": return ["discarded", `${e.condition} after ${e.invocations} invocation(s)`];
      case "dropped": return ["dropped", e.reason || ""];
      case "destination_queued": return [`${dest(e.kind)} queued`, e.target];
      case "destination_delivered": return [`${dest(e.kind)} delivered`, `${e.target} · try ${e.attempt}`];
      case "destination_retry": return [`${dest(e.kind)} retry`, `try ${e.attempt}: ${e.error}`];
      case "destination_failed": return [`${dest(e.kind)} failed`, `after ${e.attempt} tries: ${e.error}`];
      case "attached": return ["SDK retry attached", `call ${e.call} · ${e.sdk_request || ""}`];
      case "sdk_retry": return ["SDK retry", `ran again as ${short(e.request_id)}`];
      case "caller_gone": return ["caller gone", "the invocation ran on"];
      case "fault_injected": return ["fault injected", `attempt ${e.attempt}: ${e.action}`];
      case "bisected": return ["bisect split", `into ${(e.halves || []).join(" + ")} records` +
        ` after ${e.invocations} invocation(s)`];
      default: return [e.Kind.replace(/_/g, " "), Object.entries(e)
        .filter(([k]) => k !== "At" && k !== "Kind").map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")];
    }
  }

  function span(entry, scale) {
    if (entry.Kind !== "attempt") return [entry.At, entry.At, 0];
    const run = (entry.duration_ms || 0) / 1000 * scale;
    const init = (entry.init_ms || 0) / 1000 * scale;
    return [entry.At - run - init, entry.At, init];
  }

  function niceStep(total) {
    const rough = total / 6;
    const power = Math.pow(10, Math.floor(Math.log10(rough || 1e-3)));
    for (const m of [1, 2, 5, 10]) if (m * power >= rough) return m * power;
    return 10 * power;
  }

  function ticks(t0, total) {
    const step = niceStep(total);
    const nodes = [];
    for (let t = 0; t <= total + 1e-9; t += step) {
      const at = (t / total) * 100;
      nodes.push(h("div", { class: "tick", style: `left:${at}%` },
        at < 90 ? h("span", {}, `+${fmtSeconds(t)}`) : null));
    }
    return nodes;
  }

  function timelineRows(entries, scale, select) {
    const spans = entries.map((e) => span(e, scale));
    const t0 = Math.min(...spans.map((s) => s[0]));
    const total = Math.max(Math.max(...spans.map((s) => s[1])) - t0, 1e-3);
    const x = (t) => `${((t - t0) / total) * 100}%`;
    const rows = entries.map((entry, i) => {
      const [start, end, init] = spans[i];
      const [title, detail] = describe(entry, scale);
      const outcome = entry.Kind === "attempt" ? entry.outcome : "";
      const lane = h("div", { class: "tl-lane" }, ticks(t0, total).map((t) => { t.replaceChildren(); return t; }));
      if (entry.Kind === "attempt") {
        if (init > 0) lane.append(h("div", { class: "bar init", title: `init ${fmtMs(entry.init_ms)}`,
          style: `left:${x(start)};width:${((init / total) * 100).toFixed(3)}%` }));
        lane.append(h("div", { class: "bar", title: `${fmtMs(entry.duration_ms)} ${outcome}`,
          style: `left:${x(start + init)};width:${(((end - start - init) / total) * 100).toFixed(3)}%` }));
      } else {
        lane.append(h("div", { class: "mark", title: title, style: `left:${x(end)}` }));
      }
      const kindClass = entry.Kind === "attempt" ? outcome : entry.Kind;
      return h("div", { class: `tl-row k-${entry.Kind} ${outcome}`, "data-kind": entry.Kind,
        "data-attempt": entry.attempt ?? null, "data-destination": entry.kind ?? null,
        onclick: entry.Kind === "attempt" ? () => select(entry.attempt) : null },
        h("div", { class: "tl-when" }, `+${fmtSeconds(entry.At - t0)}`),
        h("div", { class: "tl-what" }, h("span", { class: `kind ${kindClass}` }, title),
          h("span", { class: "detail" }, detail)),
        lane);
    });
    const axis = h("div", { class: "tl-axis" }, h("div", { class: "tl-when" }, "offset"),
      h("div", { class: "tl-what" }, "event"), h("div", { class: "tl-lane" }, ticks(t0, total)));
    return [axis, ...rows];
  }

  function logPanel(logs, attempts) {
    if (!logs.Attempts.length) {
      return h("div", { class: "logs", id: "attempt-logs" }, h("h3", {}, "Logs"),
        h("pre", {}, "No log lines: no attempt ran in an environment yet."));
    }
    return h("div", { class: "logs", id: "attempt-logs" }, logs.Attempts.map((a) => {
      const record = attempts.find((r) => r.attempt === a.Attempt) || {};
      return h("section", { "data-attempt": a.Attempt },
        h("h3", {}, `Attempt ${a.Attempt} · ${record.start || ""} · env ${short(a.Environment)}`,
          record.outcome ? badge(record.outcome) : null),
        h("pre", {}, a.Lines.length ? a.Lines.map((line) => [
          h("span", { class: "ts" }, line.Timestamp.slice(11, 23) + " "),
          /^(START|END|REPORT|INIT_START|INIT_REPORT) /.test(line.Message)
            ? h("span", { class: "platform" }, line.Message) : line.Message, "\n"])
          : "(no lines)"));
    }));
  }

  async function traceView(requestId) {
    await loadOverview();
    let last = "";
    let selected = null;
    const holder = h("div", {});
    view.replaceChildren(h("h1", {}, h("a", { href: "#/invocations" }, "Invocations"), " / ",
      h("span", { class: "mono" }, requestId)), holder);
    const choose = (attempt) => {
      selected = attempt;
      for (const node of view.querySelectorAll(".tl-row, .logs section")) {
        node.classList.toggle("selected", Number(node.dataset.attempt) === attempt);
      }
      const target = view.querySelector(`.logs section[data-attempt="${attempt}"]`);
      if (target) target.scrollIntoView({ block: "nearest" });
    };
    const load = async () => {
      const [found, logs] = await Promise.all([
        api(`/_lamina/invocations/${encodeURIComponent(requestId)}`),
        api(`/_lamina/invocations/${encodeURIComponent(requestId)}/logs`).catch(() => ({ Attempts: [] }))]);
      const text = JSON.stringify([found, logs]);
      if (text === last) return;
      last = text;
      holder.replaceChildren(...traceBody(found, logs, choose));
      if (selected !== null) choose(selected);
    };
    try { await load(); }
    catch (error) { holder.replaceChildren(h("div", { class: "error-box" }, error.message)); return; }
    later(load, 1000);
  }

  function traceBody(found, logs, choose) {
    const s = found.Invocation || {};
    const scale = state.engine && state.engine.TimeScale ? state.engine.TimeScale : 1;
    const attempts = found.Timeline.filter((e) => e.Kind === "attempt");
    const count = (kind) => found.Timeline.filter((e) => e.Kind === kind).length;
    return [
      h("div", { class: "panel", id: "trace-summary" }, kv([
        ["Function", s.FunctionName ? h("a", { href: `#/functions/${encodeURIComponent(s.FunctionName)}` },
          s.FunctionName + (s.Qualifier ? `:${s.Qualifier}` : "")) : "–"],
        ["Type", kindOf(s.InvocationType)], ["Outcome", s.Status ? badge(s.Status) : "–"],
        ["Attempts", `${attempts.length} ran · ${count("retry_scheduled")} retries scheduled`],
        ["Accepted", fmtTime(s.AcceptedAt)], ["Finished", fmtTime(s.FinishedAt)],
        ["Error", s.ErrorType || "–"]])),
      h("div", { class: "trace" },
        h("div", {}, h("div", { class: "tl", id: "timeline" }, timelineRows(found.Timeline, scale, choose)),
          h("div", { class: "legend" }, "Engine time. Bars: attempts (hatched: init of a cold start). ",
            "Diamonds: retries scheduled; squares: discards; purple: destination and DLQ deliveries. ",
            "Log times are wall-clock time. Click an attempt for its logs.")),
        logPanel(logs, attempts)),
    ];
  }

  // mappings and queues -----------------------------------------------------------------
  function mappingTable(mappings) {
    if (!mappings.length) return h("div", { class: "empty panel", id: "no-mappings" },
      "No event source mappings.");
    return table(["UUID", "Function", "Source", "State", "Batch size", "Backlog", "Lag",
      "Last batch", "Last processing result", "Checkpoint"], mappings.map((m) => h("tr", {},
      h("td", { class: "mono" }, m.UUID), h("td", {}, m.FunctionName),
      h("td", { class: "wrap mono" }, m.EventSourceArn || "–"),
      h("td", {}, badge(m.State, m.State === "Enabled" ? "success" : "running"),
        m.StateTransitionReason ? h("span", { class: "muted" }, ` ${m.StateTransitionReason}`) : null),
      h("td", {}, String(m.BatchSize)), h("td", {}, m.Backlog ?? "–"),
      h("td", {}, fmtSeconds(m.LagSeconds)), h("td", {}, m.LastBatchSize ?? "–"),
      h("td", { class: "wrap" }, m.LastProcessingResult || "–"),
      h("td", { class: "mono" }, m.Checkpoint || "–"))), { id: "mappings-table" });
  }

  async function mappingsView() {
    const holder = h("div", {});
    view.replaceChildren(h("h1", {}, "Event source mappings"), holder);
    const draw = () => holder.replaceChildren(mappingTable(state.mappings));
    await loadOverview();
    draw();
    later(async () => { await loadOverview(); draw(); }, 2000);
  }

  async function queuesView() {
    const holder = h("div", {});
    view.replaceChildren(h("h1", {}, "Async queues"), holder);
    const draw = () => {
      const rows = state.functions.map((f) => h("tr", { "data-function": f.FunctionName },
        h("td", {}, h("a", { href: `#/functions/${encodeURIComponent(f.FunctionName)}` }, f.FunctionName)),
        h("td", {}, String(f.AsyncQueue.Depth)),
        h("td", {}, f.AsyncQueue.Depth ? fmtSeconds(f.AsyncQueue.OldestEventAgeSeconds) : "–"),
        h("td", {}, `${f.Concurrency.InFlight}` + (f.Concurrency.Reserved === null ? "" :
          ` of ${f.Concurrency.Reserved} reserved`))));
      holder.replaceChildren(rows.length ? table(["Function", "Events queued or running",
        "Oldest event age (engine time)", "Running now"], rows, { id: "queues-table" })
        : h("div", { class: "empty panel" }, "No functions."));
    };
    await loadOverview();
    draw();
    later(async () => { await loadOverview(); draw(); }, 2000);
  }

  // schedules and HTTP APIs ----------------------------------------------------------------
  function scheduleTable(items) {
    if (!items.length) return h("div", { class: "empty panel", id: "no-schedules" },
      "No schedules: PUT one at /_lamina/schedules/NAME, or run lamina schedules NAME --expression … --target ….");
    return table(["Name", "Expression", "Source", "State", "Next due (UTC)", "Last due", "Fired",
      "Missed", "Target", "Last invocation"], items.map((s) => h("tr", { "data-schedule": s.Name },
      h("td", {}, s.Name), h("td", { class: "mono" }, s.ScheduleExpression +
        (s.ScheduleExpressionTimezone ? ` ${s.ScheduleExpressionTimezone}` : "")),
      h("td", {}, s.Source), h("td", {}, badge(s.State, s.State === "ENABLED" ? "success" : "running")),
      h("td", { class: "mono" }, s.NextDue || "–"), h("td", { class: "mono" }, s.LastDue || "–"),
      h("td", {}, String(s.Fired)), h("td", {}, String(s.Missed)),
      h("td", { class: "wrap mono" }, s.TargetArn),
      h("td", {}, s.LastRequestId ? h("a", { href: `#/invocations/${encodeURIComponent(s.LastRequestId)}`,
        class: "mono" }, s.LastRequestId) : (s.LastError || "–")))), { id: "schedules-table" });
  }

  async function schedulesView() {
    const holder = h("div", {});
    view.replaceChildren(h("h1", {}, "Schedules"), holder);
    const draw = async () => holder.replaceChildren(
      scheduleTable((await api("/_lamina/schedules")).Schedules));
    await draw();
    later(draw, 2000);
  }

  function apiPanel(a) {
    return h("div", { class: "panel", "data-api": a.ApiId },
      h("h2", {}, `${a.Name} `, h("span", { class: "muted" }, `${a.ApiId} · ${a.ProtocolType} · stage ${a.StageName}`)),
      kv([["URL", h("a", { href: a.Url, class: "mono" }, a.Url)],
        ["Fallback URL", h("a", { href: a.FallbackUrl, class: "mono" }, a.FallbackUrl)]]),
      table(["Route", "Function", "Payload", "Timeout"], a.Routes.map((r) => h("tr", {},
        h("td", { class: "mono" }, r.RouteKey), h("td", { class: "wrap mono" }, r.TargetArn),
        h("td", {}, r.PayloadFormatVersion), h("td", {}, `${r.TimeoutInMillis} ms`)))));
  }

  async function apisView() {
    const holder = h("div", { id: "apis" });
    view.replaceChildren(h("h1", {}, "HTTP APIs"), holder);
    const found = (await api("/_lamina/apis")).Apis;
    holder.replaceChildren(...(found.length ? found.map(apiPanel)
      : [h("div", { class: "empty panel", id: "no-apis" }, "No HTTP APIs: PUT one at /_lamina/apis/API_ID.")]));
  }

  // stacks (lamina deploy) ------------------------------------------------------------------
  function stackBadge(status) {
    const kind = /FAILED|ROLLBACK/.test(status) ? "error" : /IN_PROGRESS/.test(status) ? "running"
      : "success";
    return badge(status, kind);
  }

  async function stacksView() {
    const holder = h("div", { id: "stacks" });
    view.replaceChildren(h("h1", {}, "Stacks"), holder);
    const draw = async () => {
      const found = (await api("/_lamina/stacks")).Stacks;
      if (!found.length) {
        holder.replaceChildren(h("div", { class: "empty panel", id: "no-stacks" },
          "No stacks: run lamina deploy PATH (a SAM or CloudFormation template)."));
        return;
      }
      const panels = [];
      for (const summary of found) {
        const s = await api(`/_lamina/stacks/${encodeURIComponent(summary.StackName)}`);
        panels.push(h("div", { class: "panel", "data-stack": s.StackName },
          h("h2", {}, `${s.StackName} `, stackBadge(s.StackStatus)),
          s.StackStatusReason ? h("p", { class: "muted" }, s.StackStatusReason) : "",
          table(["Logical id", "Type", "Physical id", "Status"], s.Resources.map((r) => h("tr", {},
            h("td", {}, r.LogicalResourceId), h("td", { class: "mono" }, r.ResourceType),
            h("td", { class: "wrap mono" }, r.ResourceType === "AWS::Lambda::Function"
              ? h("a", { href: `#/functions/${encodeURIComponent(r.PhysicalResourceId)}` },
                r.PhysicalResourceId) : (r.PhysicalResourceId || "–")),
            h("td", {}, stackBadge(r.ResourceStatus))))),
          s.Outputs.length ? kv(s.Outputs.map((o) => [o.OutputKey, o.OutputValue])) : "",
          s.HttpApis.length ? kv(s.HttpApis.map((a) => [`HTTP API ${a.LogicalResourceId}`,
            h("a", { href: a.Url, class: "mono" }, a.Url)])) : ""));
      }
      holder.replaceChildren(...panels);
    };
    await draw();
    later(draw, 3000);
  }

  // routing -----------------------------------------------------------------------------
  async function route() {
    generation += 1;
    clearTimeout(timer);
    const hash = location.hash.replace(/^#\/?/, "") || "functions";
    const [path, search] = hash.split("?");
    const parts = path.split("/").map(decodeURIComponent);
    for (const link of document.querySelectorAll("[data-nav]")) {
      link.classList.toggle("active", link.dataset.nav === parts[0]);
    }
    try {
      if (parts[0] === "functions" && parts[1]) await functionView(parts[1]);
      else if (parts[0] === "invocations" && parts[1]) await traceView(parts[1]);
      else if (parts[0] === "invocations") await invocationsView(new URLSearchParams(search || ""));
      else if (parts[0] === "mappings") await mappingsView();
      else if (parts[0] === "queues") await queuesView();
      else if (parts[0] === "schedules") await schedulesView();
      else if (parts[0] === "apis") await apisView();
      else if (parts[0] === "stacks") await stacksView();
      else await functionsView();
      setStatus(`loaded ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      view.replaceChildren(h("div", { class: "error-box" }, error.message));
      setStatus("could not reach the engine", true);
    }
  }

  window.addEventListener("hashchange", route);
  route();
})();
