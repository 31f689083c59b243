"use strict";
// The godwit web view: polls the agent's JSON API with the token from sessionStorage.
(function () {
  const POLL_MS = 1500;
  const KEY = "godwit-token";
  const $ = (id) => document.getElementById(id);
  let whoami = null;
  let timer = null;
  let busy = false;

  // h builds an element; children are nodes or text (never parsed as HTML).
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v === null || v === undefined) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  const svgNS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...kids) {
    const e = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const k of kids) e.append(k);
    return e;
  }

  async function api(method, path, body) {
    const token = sessionStorage.getItem(KEY);
    const opts = { method, headers: { Authorization: "Bearer " + token }, cache: "no-store" };
    if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    const r = await fetch(path, opts);
    const data = await r.json().catch(() => ({}));
    return { status: r.status, data };
  }

  // Formatting. Durations come as nanoseconds.
  const secs = (ns) => (ns ? (ns / 1e9).toFixed(3) + " s" : "–");
  const mib = (b) => (b ? (b / 1048576).toFixed(1) + " MiB" : "–");
  const pct = (x) => (isFinite(x) ? Math.round(x * 100) + "%" : "–");
  const when = (t) => (t && !t.startsWith("0001") ? new Date(t).toLocaleString() : "–");
  function ago(t, now) {
    const d = (now - new Date(t)) / 1000;
    if (d < 90) return Math.round(d) + " s ago";
    if (d < 5400) return Math.round(d / 60) + " min ago";
    return Math.round(d / 3600) + " h ago";
  }

  function showError(msg) {
    const e = $("error");
    e.textContent = msg || "";
    e.hidden = !msg;
  }

  function signedIn(on) {
    $("login").hidden = on;
    $("session").hidden = !on;
    if (!on) { $("summary").textContent = "not signed in"; $("token").focus(); }
  }

  async function start() {
    const w = await api("GET", "/v1/whoami");
    if (w.status !== 200) {
      sessionStorage.removeItem(KEY);
      signedIn(false);
      showError("Sign-in refused: " + (w.data.error || "status " + w.status));
      return;
    }
    whoami = w.data;
    $("whoami").textContent = "signed in as " + whoami.name + " (" + whoami.role + ")";
    document.body.dataset.role = whoami.role;
    signedIn(true);
    showError("");
    poll();
  }

  async function poll() {
    clearTimeout(timer);
    if (!sessionStorage.getItem(KEY)) return;
    if (!busy) {
      busy = true;
      try { await refresh(); } catch (e) { showError("Cannot reach the agent: " + e.message); }
      busy = false;
    }
    timer = setTimeout(poll, POLL_MS);
  }

  async function refresh() {
    const paths = ["/v1/status", "/v1/nodes", "/v1/containers", "/v1/migrations", "/v1/policy", "/v1/explain", "/v1/view"];
    const [st, nodes, cts, migs, pol, exp, cost] = await Promise.all(paths.map((p) => api("GET", p)));
    if (st.status === 401) { sessionStorage.removeItem(KEY); signedIn(false); showError("The token is no longer valid."); return; }
    const failed = [st, nodes, cts, migs, cost].find((a) => a.status !== 200);
    showError(failed ? "Some data is unavailable: " + (failed.data.error || failed.status) : "");
    const now = new Date(cost.data.now || Date.now());
    renderSummary(st.data);
    if (nodes.status === 200) renderNodes(nodes.data, st.data);
    if (cts.status === 200) renderWorkloads(cts.data, nodes.data, cost.data, now);
    if (migs.status === 200) { renderInflight(migs.data); renderHistory(migs.data); }
    if (migs.status === 200 && cost.status === 200) renderCost(migs.data, cost.data);
    renderPolicy(pol, exp, now);
    document.body.dataset.updated = String(Date.now());
  }

  function renderSummary(st) {
    const leader = st.leader ? st.leader.name : "none known";
    $("summary").textContent = "leader " + leader + " · term " + (st.term || "?") + " · " + st.members + " members alive · policy v" +
      (st.policyVersion || 0) + " · " + st.inFlight + " migration(s) in flight · answered by " + st.node;
  }

  function renderNodes(nodes, st) {
    const leader = st.leader ? st.leader.name : "";
    const voters = new Set((st.servers || []).map((x) => x.name));
    const bySite = new Map();
    for (const n of nodes) {
      const site = n.site || "(no site)";
      if (!bySite.has(site)) bySite.set(site, []);
      bySite.get(site).push(n);
    }
    const out = [];
    for (const site of [...bySite.keys()].sort()) {
      const list = bySite.get(site).sort((a, b) => a.name.localeCompare(b.name));
      out.push(h("div", { class: "site", role: "group", "aria-label": "site " + site },
        h("h3", { text: "site " + site }),
        list.map((n) => nodeCard(n, leader, voters))));
    }
    $("sites").replaceChildren(...out);
  }

  function nodeCard(n, leader, voters) {
    const cpu = n.cpuCapacity ? n.cpuCores / n.cpuCapacity : NaN;
    const mem = n.memoryCapacity ? n.memoryBytes / n.memoryCapacity : NaN;
    const badges = [];
    if (n.name === leader) badges.push(h("span", { class: "badge ok", text: "leader" }));
    else if (n.role === "server" || voters.has(n.name)) badges.push(h("span", { class: "badge", text: "server" }));
    else badges.push(h("span", { class: "badge muted", text: n.role || "client" }));
    if (n.status !== "alive") badges.push(h("span", { class: "badge bad", text: n.status }));
    if (n.drained) badges.push(h("span", { class: "badge warn", text: "drained" }));
    const op = canOperate() ? h("button", { type: "button", class: "op", "data-node": n.name,
      onclick: () => act(n.drained ? "undrain" : "drain", n.name) }, n.drained ? "Undrain" : "Drain") : null;
    return h("div", { class: "node", "data-node": n.name },
      h("div", {}, h("span", { class: "name", text: n.name }), badges),
      h("div", { class: "bar" }, h("span", { text: "CPU" }), h("meter", { min: 0, max: 1, value: isFinite(cpu) ? cpu : 0, "aria-label": "CPU load of " + n.name }), h("span", { text: pct(cpu) + " of " + n.cpuCapacity + " cores" })),
      h("div", { class: "bar" }, h("span", { text: "Mem" }), h("meter", { min: 0, max: 1, value: isFinite(mem) ? mem : 0, "aria-label": "memory load of " + n.name }), h("span", { text: pct(mem) + " of " + mib(n.memoryCapacity) })),
      h("div", { class: "muted" }, n.containers + " container(s)"), op);
  }

  function canOperate() { return whoami && whoami.role !== "viewer" && whoami.role !== "client"; }

  async function act(what, node) {
    if (!window.confirm(what[0].toUpperCase() + what.slice(1) + " node " + node + "?")) return;
    const r = await api("POST", "/v1/" + what + "/" + encodeURIComponent(node));
    showError(r.status === 200 ? "" : what + " " + node + ": " + (r.data.error || r.status));
    poll();
  }

  async function migrate(workload, to) {
    if (!to) return;
    if (!window.confirm("Migrate " + workload + " to " + to + "?")) return;
    const r = await api("POST", "/v1/migrate", { workload, to });
    showError(r.status === 202 ? "" : "migrate " + workload + ": " + (r.data.error || r.status));
    poll();
  }

  function userSites(c, extras) {
    return (extras.userSites && extras.userSites[c.workload]) || "–";
  }

  function renderWorkloads(cts, nodes, cost, now) {
    const cooldown = cost.policy ? cost.policy.cooldown || 0 : 0;
    const alive = (nodes || []).filter((n) => n.status === "alive");
    const rows = cts.sort((a, b) => a.name.localeCompare(b.name)).map((c) => {
      let last = "–", left = "–";
      if (c.lastMove) {
        last = c.lastMove.from + " → " + c.lastMove.to + ", " + ago(c.lastMove.at, now);
        const rem = (new Date(c.lastMove.at).getTime() + cooldown / 1e6 - now.getTime()) / 1000;
        left = rem > 0 ? Math.ceil(rem) + " s" : "none";
      }
      const why = h("button", { type: "button", onclick: () => explain(c.workload, c.name) }, "Explain");
      let move = null;
      if (canOperate()) {
        const sel = h("select", { "aria-label": "target node for " + c.name },
          h("option", { value: "", text: "move to…" }), alive.filter((n) => n.name !== c.node).map((n) => h("option", { value: n.name, text: n.name })));
        move = h("span", {}, sel, h("button", { type: "button", onclick: () => migrate(c.workload, sel.value) }, "Migrate"));
      }
      return h("tr", { "data-workload": c.workload },
        h("td", {}, c.name, c.inFlight ? h("span", { class: "badge warn", text: "moving" }) : null),
        h("td", { text: c.node }), h("td", { text: mib(c.memoryBytes) }), h("td", { text: userSites(c, cost) }),
        h("td", { text: last }), h("td", { text: left }), h("td", {}, why), h("td", { class: "op", hidden: !canOperate() }, move));
    });
    document.querySelectorAll("th.op").forEach((th) => (th.hidden = !canOperate()));
    $("workloads").tBodies[0].replaceChildren(...rows);
  }

  async function explain(workload, name) {
    const r = await api("GET", "/v1/explain?workload=" + encodeURIComponent(workload));
    const body = $("explainbody");
    if (r.status !== 200) {
      body.replaceChildren(h("p", { text: r.data.error || "no explanation (status " + r.status + ")" }));
    } else {
      const parts = [h("p", { text: "Round of " + when(r.data.at) + ", mode " + r.data.mode })];
      for (const e of r.data.explanations || []) {
        parts.push(h("p", {}, h("strong", { text: name + " on " + e.node + ": " }), (e.moved ? "moves" : "stays") + " (" + e.reason + ")" + (e.detail ? ": " + e.detail : "")));
        if (e.triggers && e.triggers.length) parts.push(h("p", { text: "Triggers: " + e.triggers.join(", ") }));
        if (e.candidates && e.candidates.length) {
          parts.push(h("div", { class: "scroll" }, h("table", {},
            h("thead", {}, h("tr", {}, ["Target", "Score", "Gain", "Predicted downtime", "Rejected because"].map((t) => h("th", { scope: "col", text: t })))),
            h("tbody", {}, e.candidates.map((c) => h("tr", {}, h("td", { text: c.node }), h("td", { text: c.score.toFixed(3) }), h("td", { text: c.gain.toFixed(3) }),
              h("td", { text: secs(c.cost && c.cost.downtime) }), h("td", { text: (c.rejected || "chosen") + (c.detail ? ": " + c.detail : "") })))))));
        }
      }
      for (const d of r.data.decisions || []) parts.push(h("p", { text: "Decision: move " + d.from + " → " + d.to + ", score " + d.score.toFixed(3) }));
      body.replaceChildren(...parts);
    }
    const dlg = $("explain");
    if (typeof dlg.showModal === "function" && !dlg.open) dlg.showModal();
  }

  const flightPhases = ["planned", "preparing", "frozen", "streaming", "restoring"];
  function renderInflight(migs) {
    const live = migs.filter((m) => flightPhases.includes(m.phase) || m.phase === "in-doubt");
    const items = live.map((m) => {
      const i = flightPhases.indexOf(m.phase);
      return h("li", { "data-migration": m.id, "data-phase": m.phase },
        h("strong", { text: m.container || m.workload }), " " + m.source + " → " + m.target + " · " + m.method + " · phase ",
        h("span", { class: m.phase === "in-doubt" ? "bad" : "", text: m.phase }), " ",
        h("progress", { max: flightPhases.length, value: i < 0 ? 0 : i + 1, "aria-label": "progress of " + m.id }));
    });
    $("inflight").replaceChildren(...(items.length ? items : [h("li", { class: "muted", text: "none" })]));
  }

  function renderHistory(migs) {
    const done = migs.filter((m) => !flightPhases.includes(m.phase) && m.phase !== "in-doubt").reverse().slice(0, 50);
    const pm = (p, m, k) => secs(p[k]) + " / " + secs(m[k]);
    const rows = done.map((m) => h("tr", { "data-migration": m.id, "data-phase": m.phase },
      h("td", { text: m.id }), h("td", { text: m.container || m.workload }), h("td", { text: m.source + " → " + m.target }), h("td", { text: m.method }),
      h("td", { class: m.phase === "completed" ? "ok" : "bad", text: m.phase + (m.failure ? ": " + m.failure : "") }),
      h("td", { text: pm(m.predicted, m.measured, "checkpoint") }), h("td", { text: pm(m.predicted, m.measured, "transfer") }),
      h("td", { text: pm(m.predicted, m.measured, "restore") }), h("td", { text: pm(m.predicted, m.measured, "downtime") }),
      h("td", { text: mib(m.measured.checkpointBytes) }), h("td", { text: when(m.updated) })));
    $("history").tBodies[0].replaceChildren(...rows);
  }

  // renderCost draws checkpoint and restore time against memory for every measured
  // migration, with the model's fitted lines.
  function renderCost(migs, cost) {
    const pts = migs.filter((m) => m.memoryBytes > 0 && (m.measured.checkpoint || m.measured.restore))
      .map((m) => ({ id: m.id, gib: m.memoryBytes / 1073741824, ck: (m.measured.checkpoint || 0) / 1e9, rs: (m.measured.restore || 0) / 1e9 }));
    const model = cost.model || {};
    const ck = model.checkpoint || { intercept: 0, slope: 0 }, rs = model.restore || { intercept: 0, slope: 0 };
    const line = (l, x) => Math.max(0, l.intercept + l.slope * x);
    const xmax = Math.max(0.25, ...pts.map((p) => p.gib)) * 1.1;
    const ymax = Math.max(0.05, ...pts.map((p) => Math.max(p.ck, p.rs)), line(ck, xmax), line(rs, xmax)) * 1.1;
    const W = 640, H = 320, L = 56, B = 40, T = 12, R = 12;
    const X = (x) => L + (x / xmax) * (W - L - R), Y = (y) => H - B - (y / ymax) * (H - B - T);
    const desc = "Checkpoint and restore time against memory for " + pts.length + " measured migration(s). Fitted lines: checkpoint " +
      ck.intercept.toFixed(3) + " s + " + ck.slope.toFixed(3) + " s/GiB (n=" + (ck.n || 0) + "), restore " + rs.intercept.toFixed(3) + " s + " + rs.slope.toFixed(3) + " s/GiB (n=" + (rs.n || 0) + ").";
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "cost-title cost-desc", id: "costsvg" },
      s("title", { id: "cost-title" }, "Cost model: checkpoint and restore time against memory"), s("desc", { id: "cost-desc" }, desc));
    svg.append(s("line", { x1: L, y1: Y(0), x2: W - R, y2: Y(0), stroke: "#57606a" }), s("line", { x1: L, y1: T, x2: L, y2: Y(0), stroke: "#57606a" }));
    for (let i = 0; i <= 4; i++) {
      const xv = (xmax * i) / 4, yv = (ymax * i) / 4;
      svg.append(s("text", { x: X(xv), y: H - B + 16, "text-anchor": "middle", "font-size": 11 }, xv.toFixed(2)));
      svg.append(s("text", { x: L - 6, y: Y(yv) + 4, "text-anchor": "end", "font-size": 11 }, yv.toFixed(2)));
    }
    svg.append(s("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 12 }, "memory (GiB)"));
    svg.append(s("text", { x: 14, y: H / 2, "font-size": 12, transform: `rotate(-90 14 ${H / 2})`, "text-anchor": "middle" }, "time (s)"));
    svg.append(s("line", { class: "fit-checkpoint", x1: X(0), y1: Y(line(ck, 0)), x2: X(xmax), y2: Y(line(ck, xmax)), stroke: "#0b5cad", "stroke-width": 2 }));
    svg.append(s("line", { class: "fit-restore", x1: X(0), y1: Y(line(rs, 0)), x2: X(xmax), y2: Y(line(rs, xmax)), stroke: "#b35c00", "stroke-width": 2, "stroke-dasharray": "6 4" }));
    for (const p of pts) {
      svg.append(s("circle", { class: "pt-checkpoint", cx: X(p.gib), cy: Y(p.ck), r: 4, fill: "#0b5cad" }, s("title", {}, p.id + ": checkpoint " + p.ck.toFixed(3) + " s")));
      svg.append(s("rect", { class: "pt-restore", x: X(p.gib) - 3.5, y: Y(p.rs) - 3.5, width: 7, height: 7, fill: "#b35c00" }, s("title", {}, p.id + ": restore " + p.rs.toFixed(3) + " s")));
    }
    svg.append(s("text", { x: W - R - 4, y: T + 12, "text-anchor": "end", "font-size": 12, fill: "#0b5cad" }, "● checkpoint (solid line: fit)"));
    svg.append(s("text", { x: W - R - 4, y: T + 28, "text-anchor": "end", "font-size": 12, fill: "#b35c00" }, "■ restore (dashed line: fit)"));
    $("costplot").replaceChildren(svg);
    $("costtext").textContent = desc + " Model version " + (cost.version || 0) + (cost.updatedBy ? ", refitted by " + cost.updatedBy : " (defaults)") + ".";
    $("costtable").tBodies[0].replaceChildren(...pts.map((p) => h("tr", {}, h("td", { text: p.id }), h("td", { text: (p.gib * 1024).toFixed(1) }), h("td", { text: p.ck.toFixed(3) }), h("td", { text: p.rs.toFixed(3) }))));
  }

  function renderPolicy(pol, exp, now) {
    if (pol.status === 200) {
      const p = pol.data;
      $("policy").textContent = "Policy " + (p.name || "(unnamed)") + ", version " + p.version + ", applied by " + p.appliedBy + " on " + when(p.appliedAt) + ".";
      if ($("policysrc").textContent !== p.source) $("policysrc").textContent = p.source;
    } else {
      $("policy").textContent = pol.data.error || "no policy in force";
      $("policysrc").textContent = "";
    }
    if (exp.status === 200) {
      const e = exp.data;
      const moved = (e.explanations || []).filter((x) => x.moved).length;
      $("round").textContent = "At " + when(e.at) + " (" + ago(e.at, now) + "), mode " + e.mode + ": " + (e.explanations || []).length + " workload(s) considered, " +
        (e.decisions || []).length + " decision(s), " + moved + " moving." + ((e.problems || []).length ? " Problems: " + e.problems.join("; ") : "");
      $("decisions").replaceChildren(...(e.decisions || []).map((d) => h("li", { text: d.container.slice(0, 24) + ": " + d.from + " → " + d.to + " (score " + d.score.toFixed(3) + ", predicted downtime " + secs(d.cost && d.cost.downtime) + ")" })));
    } else {
      $("round").textContent = exp.data.error || "no decision round yet";
      $("decisions").replaceChildren();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = $("token").value.trim();
      $("token").value = "";
      if (!v) return;
      sessionStorage.setItem(KEY, v);
      start();
    });
    $("logout").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      clearTimeout(timer);
      whoami = null;
      // Nothing the last token could see stays on the screen.
      for (const id of ["sites", "inflight", "decisions", "costplot", "explainbody"]) $(id).replaceChildren();
      for (const id of ["workloads", "history", "costtable"]) $(id).tBodies[0].replaceChildren();
      for (const id of ["costtext", "policy", "policysrc", "round"]) $(id).textContent = "";
      delete document.body.dataset.role;
      signedIn(false);
    });
    if (sessionStorage.getItem(KEY)) start(); else signedIn(false);
  });
})();
