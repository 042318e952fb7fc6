// The gcircus dashboard: one Server-Sent Events stream (/api/events?dashboard=1) keeps a model of the
// watchers up to date; the page redraws what changed at most once per animation frame. Every text that comes
// from the daemon (names, output, events) goes into the page as a text node, never as HTML.
"use strict";
(function () {
  const PROCESS_ROWS = 25;        // process rows shown per watcher before "show all"...
  const PROCESS_ROWS_MANY = 3;    // ...or this many when there are more than MANY_WATCHERS, for an overview
  const MANY_WATCHERS = 20;
  const EVENT_ROWS = 300;         // event log rows kept
  const OUTPUT_LINES = 2000;      // output lines kept on the page
  const GRAPH_W = 150, GRAPH_H = 36;
  const NEW_CARDS_PER_FRAME = 12; // cards built per animation frame

  const model = { watchers: new Map(), history: new Map(), interval: 2 };
  const cards = new Map();        // topic name -> card elements
  const expanded = new Set();     // watchers whose whole process list is shown
  const dirty = new Set();
  let frameQueued = false;

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("data-") || key === "aria-label") node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) node.append(child);   // strings become text nodes
    return node;
  }
  const $ = (id) => document.getElementById(id);

  function bytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  }
  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return s.toFixed(0) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
    return Math.floor(s / 86400) + "d" + Math.floor(s % 86400 / 3600) + "h";
  }
  function clock(t) {
    const d = new Date(t * 1000);
    return d.toTimeString().slice(0, 8);
  }
  function exitText(code) {
    if (code === null || code === undefined) return "–";
    return code < 0 ? "signal " + (-code) : String(code);
  }

  function notice(text, kind) {
    const box = $("notice");
    box.textContent = text;
    box.className = "notice" + (kind ? " " + kind : "");
    box.hidden = !text;
    if (text) { clearTimeout(notice.timer); notice.timer = setTimeout(() => { box.hidden = true; }, 8000); }
  }

  // -- the model ------------------------------------------------------------------------------------------

  function setWatcher(w) {
    const old = model.watchers.get(w.topic_name);
    w.received = Date.now() / 1000;
    if (old) {      // keep the last sampled figures until the next sample
      const figures = new Map(old.processes.map((p) => [p.pid, p]));
      for (const p of w.processes) {
        const f = figures.get(p.pid);
        if (f && p.cpu === null) { p.cpu = f.cpu; p.rss = f.rss; }
      }
    }
    model.watchers.set(w.topic_name, w);
    markDirty(w.topic_name);
  }

  function onSnapshot(data) {
    model.interval = data.interval;
    const seen = new Set();
    for (const w of data.watchers) { setWatcher(w); seen.add(w.topic_name); }
    for (const name of [...model.watchers.keys()]) if (!seen.has(name)) removeWatcher(name);
    model.history = new Map(Object.entries(data.history));
    $("event-log").replaceChildren();
    for (const e of data.events) addEvent(e);
    fillWatcherSelect();
  }

  function removeWatcher(name) {
    model.watchers.delete(name);
    const card = cards.get(name);
    if (card) card.root.remove();
    cards.delete(name);
    fillWatcherSelect();
  }

  function onStats(data) {
    for (const [name, sample] of Object.entries(data.watchers)) {
      const history = model.history.get(name) || [];
      history.push([data.time, sample.cpu, sample.rss]);
      if (history.length > 300) history.shift();
      model.history.set(name, history);
      const w = model.watchers.get(name);
      if (!w) continue;
      for (const p of w.processes) {
        const f = sample.processes[p.pid];
        if (f) { p.cpu = f[0]; p.rss = f[1]; }
      }
      markDirty(name);
    }
  }

  function markDirty(name) {
    dirty.add(name);
    if (!frameQueued) { frameQueued = true; requestAnimationFrame(render); }
  }

  // -- drawing --------------------------------------------------------------------------------------------

  function render() {
    frameQueued = false;
    const names = dirty.size ? [...dirty] : [...model.watchers.keys()];
    dirty.clear();
    let created = 0;
    for (const name of names) {
      const w = model.watchers.get(name);
      if (!w) continue;
      if (!cards.has(name) && ++created > NEW_CARDS_PER_FRAME) {
        markDirty(name);      // the rest in the next frames: a page never freezes building 100 cards
        continue;
      }
      drawWatcher(w);
    }
    orderCards();
    let procs = 0;
    for (const w of model.watchers.values()) procs += w.running;
    $("summary").textContent = model.watchers.size + " watchers · " + procs + " processes";
    if (!model.watchers.size && !$("watchers").querySelector(".empty")) {
      $("watchers").append(el("div", { class: "empty" }, "no watchers"));
    }
  }

  function orderCards() {
    const list = [...model.watchers.values()].filter((w) => cards.has(w.topic_name)).sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
    const container = $("watchers");
    const empty = container.querySelector(".empty");
    if (empty && list.length) empty.remove();
    let previous = null;
    for (const w of list) {
      const node = cards.get(w.topic_name).root;
      const expected = previous ? previous.nextSibling : container.firstChild;
      if (node !== expected) container.insertBefore(node, expected);
      previous = node;
    }
    applyFilter();
  }

  function makeCard(w) {
    const c = {};
    c.name = el("span", { class: "name" });
    c.badge = el("span", { class: "badge" });
    c.running = el("b", { class: "count-running" });
    c.configured = el("b", { class: "count-configured" });
    c.restarts = el("b", { class: "restarts" });
    c.exit = el("b", { class: "last-exit" });
    c.graph = el("canvas", { class: "graph", width: GRAPH_W, height: GRAPH_H });
    c.signal = el("select", { "aria-label": "signal" },
      ...["HUP", "TERM", "INT", "QUIT", "USR1", "USR2", "KILL"].map((s) => el("option", { value: s }, s)));
    const button = (action, label, title) => el("button", { type: "button", "data-action": action, title: title }, label);
    c.actions = el("span", { class: "actions" },
      button("start", "start", "start the watcher"), button("stop", "stop", "stop the watcher"),
      button("restart", "restart", "stop then start"), button("reload", "reload", "graceful reload"),
      button("decr", "−", "one process less"), button("incr", "+", "one process more"),
      c.signal, button("signal", "signal", "send the signal to every process"),
      button("output", "output", "follow this watcher's output"));
    c.processes = el("tbody");
    c.rows = new Map();
    c.table = el("table", { class: "processes" },
      el("thead", {}, el("tr", {}, ...["pid", "wid", "cpu %", "memory", "age", ""].map((h) => el("th", {}, h)))),
      c.processes);
    c.more = el("button", { class: "more", type: "button" });
    c.root = el("div", { class: "watcher", "data-watcher": w.name },
      el("div", { class: "row" }, c.name, c.badge,
        el("span", { class: "figure procs" }, "processes ", c.running, " / ", c.configured),
        el("span", { class: "figure" }, "restarts ", c.restarts),
        el("span", { class: "figure" }, "last exit ", c.exit),
        c.graph, c.actions),
      c.table, c.more);
    c.actions.addEventListener("click", (event) => {
      const action = event.target.getAttribute("data-action");
      if (action === "output") followOutput(w.name, "");
      else if (action) act(w.topic_name, action, event.target);
    });
    c.more.addEventListener("click", () => {
      if (expanded.has(w.topic_name)) expanded.delete(w.topic_name); else expanded.add(w.topic_name);
      markDirty(w.topic_name);
    });
    c.processes.addEventListener("click", (event) => {
      const pid = event.target.getAttribute("data-pid");
      if (pid) followOutput(model.watchers.get(w.topic_name).name, pid);
    });
    cards.set(w.topic_name, c);
    return c;
  }

  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

  function drawWatcher(w) {
    const c = cards.get(w.topic_name) || makeCard(w);
    c.root.className = "watcher state-" + w.state;
    c.root.setAttribute("data-state", w.state);
    setText(c.name, w.name);
    setText(c.badge, w.state);
    setText(c.running, String(w.running));
    setText(c.configured, String(w.numprocesses));
    setText(c.restarts, String(w.restarts));
    setText(c.exit, exitText(w.last_exit_code));
    drawGraph(c.graph, model.history.get(w.topic_name) || []);
    const showAll = expanded.has(w.topic_name);
    const limit = model.watchers.size > MANY_WATCHERS ? PROCESS_ROWS_MANY : PROCESS_ROWS;
    const shown = showAll ? w.processes : w.processes.slice(0, limit);
    drawProcesses(c, shown);
    c.table.hidden = !w.processes.length;
    const hidden = w.processes.length - shown.length;
    c.more.hidden = !(hidden > 0 || (showAll && w.processes.length > limit));
    setText(c.more, showAll ? "show fewer" : "show all " + w.processes.length + " processes");
  }

  // Rows are kept per pid and only their changed cells rewritten: a sample every few seconds for 1,000
  // processes must not rebuild 1,000 rows.
  function drawProcesses(c, shown) {
    const now = Date.now() / 1000;
    const rows = [];
    const alive = new Set();
    for (const p of shown) {
      alive.add(p.pid);
      let row = c.rows.get(p.pid);
      if (!row) {
        row = { cells: [0, 1, 2, 3, 4].map(() => el("td")) };
        row.tr = el("tr", {}, el("td", {}, el("button", { class: "more", type: "button", "data-pid": String(p.pid),
          title: "follow its output" }, String(p.pid))), ...row.cells);
        c.rows.set(p.pid, row);
      }
      row.tr.className = p.stopping ? "stopping" : "";
      setText(row.cells[0], String(p.wid));
      setText(row.cells[1], p.cpu === null || p.cpu === undefined ? "–" : p.cpu.toFixed(1));
      setText(row.cells[2], bytes(p.rss));
      setText(row.cells[3], p.started ? duration(now - p.started) : "–");
      setText(row.cells[4], p.stopping ? "stopping" : "");
      rows.push(row.tr);
    }
    for (const pid of [...c.rows.keys()]) if (!alive.has(pid)) c.rows.delete(pid);
    const current = c.processes.children;
    if (current.length !== rows.length || rows.some((tr, i) => current[i] !== tr)) c.processes.replaceChildren(...rows);
  }

  function drawGraph(canvas, points) {
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, GRAPH_W, GRAPH_H);
    if (points.length < 2) return;
    const last = points.slice(-GRAPH_W / 2);
    const step = GRAPH_W / Math.max(1, last.length - 1);
    const line = (index, max, color) => {
      ctx.beginPath();
      last.forEach((p, i) => {
        const y = GRAPH_H - 2 - (p[index] / max) * (GRAPH_H - 4);
        if (i) ctx.lineTo(i * step, y); else ctx.moveTo(0, y);
      });
      ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.stroke();
    };
    // each line scaled to its own recent maximum (the tooltip gives the values): shape over absolute height
    const cpuMax = Math.max(5, ...last.map((p) => p[1])) * 1.15;
    const memMax = Math.max(1, ...last.map((p) => p[2])) * 1.15;
    line(2, memMax, "#d97706");
    line(1, cpuMax, "#2563eb");
    const p = last[last.length - 1];
    canvas.title = "CPU " + p[1].toFixed(1) + " % · memory " + bytes(p[2]) + " (last " +
      duration(p[0] - last[0][0]) + ")";
  }

  function applyFilter() {
    const text = $("filter").value.trim().toLowerCase();
    for (const [name, c] of cards) c.root.hidden = Boolean(text) && !name.includes(text);
  }

  // -- actions --------------------------------------------------------------------------------------------

  async function act(name, action, button) {
    const w = model.watchers.get(name);
    const params = {};
    if (action === "signal") params.signum = cards.get(name).signal.value;
    button.disabled = true;
    try {
      const response = await fetch("/api/watchers/" + encodeURIComponent(w.name) + "/" + action, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(params),
        credentials: "same-origin",
      });
      const reply = await response.json().catch(() => ({ reason: response.statusText }));
      if (!response.ok) { notice(w.name + ": " + action + " failed: " + reply.reason, "error"); return; }
      if (reply.numprocesses !== undefined && model.watchers.has(name)) {
        model.watchers.get(name).numprocesses = reply.numprocesses;
        markDirty(name);
      }
    } catch (error) {
      notice(w.name + ": " + action + " failed: " + error, "error");
    } finally {
      button.disabled = false;
    }
  }

  // -- events ---------------------------------------------------------------------------------------------

  function eventDetail(e) {
    const parts = [];
    const pid = e.process_pid !== undefined ? e.process_pid : e.pid;
    if (pid !== undefined) parts.push("pid " + pid);
    if (e.event === "reap" && e.exit_code !== undefined && e.exit_code !== null) {
      parts.push(e.exit_code < 0 ? "killed by signal " + (-e.exit_code) : "exit code " + e.exit_code);
    }
    return parts.join(", ");
  }

  function addEvent(e) {
    const log = $("event-log");
    const row = el("tr", { class: "ev-" + e.event, "data-event": e.event },
      el("td", {}, e.time ? clock(e.time) : ""), el("td", {}, e.watcher), el("td", { class: "event" }, e.event),
      el("td", {}, eventDetail(e)));
    log.insertBefore(row, log.firstChild);
    while (log.childElementCount > EVENT_ROWS) log.lastElementChild.remove();
  }

  function connect() {
    const status = $("connection");
    const source = new EventSource("/api/events?dashboard=1");
    source.addEventListener("open", () => { status.textContent = "live"; status.className = "connection live"; });
    source.addEventListener("error", () => { status.textContent = "reconnecting…"; status.className = "connection broken"; });
    source.addEventListener("snapshot", (m) => onSnapshot(JSON.parse(m.data)));
    source.addEventListener("watchers", (m) => {
      const data = JSON.parse(m.data);
      for (const w of data.watchers) setWatcher(w);
      for (const name of data.removed) removeWatcher(name);
      if (data.watchers.some((w) => !cards.has(w.topic_name))) fillWatcherSelect();
    });
    source.addEventListener("event", (m) => addEvent(JSON.parse(m.data)));
    source.addEventListener("stats", (m) => onStats(JSON.parse(m.data)));
    source.addEventListener("missed", (m) => {
      notice("This page fell behind and missed " + JSON.parse(m.data).messages + " updates; it has been refreshed.");
    });
  }

  // -- output ---------------------------------------------------------------------------------------------

  const output = { source: null, paused: false, count: 0 };

  function fillWatcherSelect() {
    const select = $("output-watcher");
    const current = select.value;
    const names = [...model.watchers.values()].map((w) => w.name).sort();
    select.replaceChildren(el("option", { value: "" }, "— watcher —"), ...names.map((n) => el("option", { value: n }, n)));
    select.value = names.includes(current) ? current : "";
  }

  function fillPidSelect(name, pid) {
    const w = [...model.watchers.values()].find((x) => x.name === name);
    const pids = w ? w.processes.map((p) => String(p.pid)) : [];
    if (pid && !pids.includes(pid)) pids.push(pid);
    $("output-pid").replaceChildren(el("option", { value: "" }, "all processes"),
      ...pids.map((p) => el("option", { value: p }, "pid " + p)));
    $("output-pid").value = pid || "";
  }

  function followOutput(name, pid) {
    $("output-watcher").value = name;
    fillPidSelect(name, pid);
    openOutput();
  }

  function appendLines(lines) {
    const pre = $("output-lines");
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const fragment = document.createDocumentFragment();
    for (const [, pid, stream, text] of lines) {
      fragment.append(el("span", { class: stream }, el("span", { class: "pid" }, "[" + pid + "] "), text + "\n"));
    }
    pre.append(fragment);
    output.count += lines.length;
    while (output.count > OUTPUT_LINES) { pre.firstChild.remove(); output.count--; }
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  function openOutput() {
    if (output.source) output.source.close();
    output.source = null;
    $("output-lines").replaceChildren();
    output.count = 0;
    const name = $("output-watcher").value;
    if (!name) { $("output-status").textContent = "pick a watcher to follow its output"; return; }
    const query = new URLSearchParams();
    if ($("output-pid").value) query.set("pid", $("output-pid").value);
    if ($("output-stream").value) query.set("stream", $("output-stream").value);
    const source = new EventSource("/api/watchers/" + encodeURIComponent(name) + "/output?" + query);
    output.source = source;
    source.addEventListener("hello", (m) => {
      const hello = JSON.parse(m.data);
      $("output-lines").replaceChildren();     // a reconnect sends the backlog again
      output.count = 0;
      const captured = ["stdout", "stderr"].filter((s) => hello.captured[s]);
      $("output-status").textContent = captured.length
        ? "following " + hello.watcher + (hello.pid ? " pid " + hello.pid : "") + " (" + captured.join(" + ") + ")"
        : hello.watcher + " has no stdout_stream / stderr_stream: its output is not captured " +
          "(set stdout_stream.class = NullStream to see it here without writing it anywhere)";
    });
    source.addEventListener("lines", (m) => { if (!output.paused) appendLines(JSON.parse(m.data)); });
    source.addEventListener("missed", (m) => {
      const pre = $("output-lines");
      pre.append(el("span", { class: "meta" }, "… " + JSON.parse(m.data).messages + " batches of lines missed (the page was too slow)\n"));
      output.count++;
    });
    source.addEventListener("error", () => { $("output-status").textContent = "output stream interrupted, reconnecting…"; });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("filter").addEventListener("input", applyFilter);
    $("output-watcher").addEventListener("change", () => { fillPidSelect($("output-watcher").value, ""); openOutput(); });
    $("output-pid").addEventListener("change", openOutput);
    $("output-stream").addEventListener("change", openOutput);
    $("output-pause").addEventListener("click", () => {
      output.paused = !output.paused;
      $("output-pause").textContent = output.paused ? "resume" : "pause";
    });
    $("output-clear").addEventListener("click", () => { $("output-lines").replaceChildren(); output.count = 0; });
    connect();
  });
})();
