// The dashboard page: renders the pictures that the server streams (Server-Sent Events) and
// sends the page's actions back as JSON POSTs. Plain DOM: output text is only ever set as
// text, never parsed as HTML. Every part is updated in place (rows, lanes and panes are kept
// by key and only their changed text is rewritten), so keyboard focus, a text selection, a
// scrolled pane and a collapsed pane survive the pictures that arrive several times a second.
"use strict";

const WINDOW = 300; // seconds of timeline shown at most
const ENDED_ROWS = 12; // ended incarnations listed
const OPEN_PANES = 8; // a formation of more instances shows new output panes collapsed
const SCALE_SETTLES = 3000; // ms after a scale reply that a pending count yields to the picture
const CAUSES = ["chaos", "crash", "exited", "unhealthy", "watch", "requested", "scaled",
  "shutdown"];
const FORMATION = ["instance", "state", "inc", "uptime", "restarts", "rss", "scratch", "port",
  "router share", "actions"];
const ENDED = ["incarnation", "how it ended", "uptime", "files", "bytes", "memory", "recovery"];
const UP = ["starting", "running", "stopping"];
const DOWN = ["stopped", "exited", "fatal", "backoff"];

let picture = null;
let pictures = 0; // pictures received, for the browser tests
let skew = 0; // the server's clock minus the page's, in seconds (for the retry countdown)
const scaling = new Map(); // type -> {wanted, sending, repliedAt}: counts not yet in the picture

function typeOf(name) {
  return name.slice(0, name.lastIndexOf("."));
}

function shownType(type) {
  const only = $("type-filter").value;
  return !only || type === only;
}

function shown(name) {
  return shownType(typeOf(name));
}

function causeClass(bar) {
  if (bar.end === null) return picture.connected ? "running" : "other";
  return CAUSES.includes(bar.cause) ? bar.cause : "other";
}

function destroyed(bar) {
  const d = bar.destroyed || {};
  const files = d.files === undefined || d.files === null ? "- files"
    : `${d.files} ${d.files === 1 ? "file" : "files"}`;
  return `${files} / ${bytes(d.bytes)}, ${d.memory === null ? "memory not sampled"
    : `${bytes(d.memory)} memory`}`;
}

// Instance names in formation order: by type, then by number (web.2 before web.10).
function byFormation(names) {
  const rank = (name) => {
    const type = picture.types.indexOf(typeOf(name));
    return [type < 0 ? picture.types.length : type, Number(name.slice(name.lastIndexOf(".") + 1))];
  };
  return [...names].sort((a, b) => {
    const [ta, na] = rank(a);
    const [tb, nb] = rank(b);
    return ta - tb || na - nb;
  });
}

async function act(path, body) {
  let data;
  try {
    const reply = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    data = await reply.json().catch(() => ({ ok: false, error: reply.statusText }));
  } catch (error) {
    data = { ok: false, error: `the dashboard is unreachable (${error.message})` };
  }
  const problem = $("problem");
  problem.hidden = data.ok;
  setText(problem, data.ok ? "" : `Not done: ${data.error}`);
  return data.ok;
}

// The scale request takes absolute counts, so a click builds on the count still pending from
// the clicks before it, and one request per type is in flight at a time (two POSTs may be
// answered in either order): when it returns, the latest wanted count is sent if it moved.
function countOf(type) {
  const pending = scaling.get(type);
  if (pending) return pending.wanted;
  return picture.counts[type] ?? picture.instances.filter((row) => row.type === type).length;
}

async function scaleBy(type, step) {
  const pending = scaling.get(type) ?? { wanted: countOf(type), sending: false, repliedAt: 0 };
  pending.wanted = Math.max(pending.wanted + step, 0);
  scaling.set(type, pending);
  if (picture) renderFormation();
  if (pending.sending) return;
  pending.sending = true;
  let sent;
  let ok = true;
  do {
    sent = pending.wanted;
    ok = await act("scale", { counts: { [type]: sent } });
  } while (ok && pending.wanted !== sent);
  pending.sending = false;
  pending.repliedAt = Date.now();
  if (!ok) scaling.delete(type);
}

function settleScaling() {
  for (const [type, pending] of scaling) {
    const caught = picture.counts[type] === pending.wanted;
    if (!pending.sending && (caught || Date.now() - pending.repliedAt > SCALE_SETTLES)) {
      scaling.delete(type);
    }
  }
}

function instanceAction(name, what) {
  if (what === "stop") act("stop", { targets: [name] });
  else if (what === "kill") act("kill", { targets: [name], signal: "KILL" });
  else act("restart", { targets: [name] }); // a restart starts an instance that is down
}

function renderStatus() {
  const status = $("status");
  const banner = $("banner");
  setText($("app"), picture.app ? `${picture.app} (pid ${picture.pid})` : "");
  if (picture.finished) {
    setText(status, "ended");
    status.className = "pill down";
    banner.hidden = false;
    const why = picture.stopping ? `: ${picture.stopping}` : "";
    setText(banner, `The run ended${why} (exit status ${picture.finished.status}). ` +
      "This is its final picture; actions are off.");
    return;
  }
  if (!picture.connected) {
    setText(status, "stopped");
    status.className = "pill down";
    banner.hidden = false;
    const since = picture.down_since ? ` since ${clock(picture.down_since)}` : "";
    setText(banner, `The formation is not running${since}. This is the last picture; ` +
      "the dashboard reconnects when it starts again.");
    return;
  }
  banner.hidden = !picture.stopping;
  setText(banner, picture.stopping ? `The formation is stopping: ${picture.stopping}` : "");
  setText(status, picture.stopping ? "stopping" : "running");
  status.className = picture.stopping ? "pill stopping" : "pill up";
}

// At the end of a run every action is off: nothing is left to act on.
function renderActions() {
  const over = Boolean(picture.finished);
  for (const control of document.querySelectorAll("#formation button, #chaos-form button, " +
    "#chaos-form input")) {
    if (control.disabled !== over) control.disabled = over;
  }
  const summary = $("summary");
  summary.closest("section").hidden = !over;
  setText(summary, over ? picture.finished.summary.join("\n") : "");
}

function renderFilter() {
  const options = [{ value: "", text: "all types" },
    ...picture.types.map((type) => ({ value: type, text: type }))];
  sync($("type-filter"), options, (option) => option.value,
    (option) => el("option", { value: option.value }),
    (node, option) => setText(node, option.text));
}

// What a starting instance's readiness check waits for (the ps row's `ready`).
function waitingFor(ready) {
  switch (ready.kind) {
    case "port": return `waiting for port ${ready.port}${ready.any ? " (any listener)" : ""}`;
    case "http": return `waiting for GET ${ready.path} on port ${ready.port}`;
    case "exec": return `waiting for ${ready.command} to succeed`;
    case "log": return `waiting for a line matching ${ready.pattern}`;
    case "uptime": return `waiting for ${duration(ready.seconds)} of uptime`;
    default: return `waiting for ${ready.kind}`;
  }
}

// Why an instance is not running, from what the picture knows: what it is held behind, what a
// start waits for, when a backoff ends (counting down), how its last incarnation ended.
function why(row, leaving) {
  if (leaving) return "leaving: scaled down";
  if (row.held) return `held: ${row.held}`;
  const ended = (picture.timeline[row.name] || []).filter((bar) => bar.end !== null).at(-1);
  if (row.state === "starting") return row.ready ? waitingFor(row.ready) : "";
  if (row.state === "backoff") {
    const after = ended ? `${ended.how}; ` : "";
    if (row.retry_at === null) return `${after}restart pending`;
    const left = Math.ceil(row.retry_at - (Date.now() / 1000 + skew));
    return `${after}${left > 0 ? `next retry in ${left} s` : "retrying now"}`;
  }
  return DOWN.includes(row.state) && ended ? ended.how : "";
}

function typeRow(type) {
  return el("tr", { className: "type" }, el("td", { colspan: FORMATION.length },
    el("span", { className: "count" }), " ",
    el("button", { type: "button", "aria-label": `scale ${type} down`, title: `scale ${type} down`,
      onclick: () => scaleBy(type, -1) }, "\u2212"), " ",
    el("button", { type: "button", "aria-label": `scale ${type} up`, title: `scale ${type} up`,
      onclick: () => scaleBy(type, 1) }, "+")));
}

function instanceRow(row) {
  const name = row.name;
  const button = (what) => el("button", {
    type: "button", "data-action": what, "aria-label": `${what} ${name}`,
    onclick: (event) => {
      const target = event.currentTarget;
      if (target.getAttribute("aria-disabled") !== "true") instanceAction(name, target.dataset.action);
    },
  }, what);
  const cells = FORMATION.map((label) => el("td", { "data-label": label }));
  cells[1].append(el("span", { className: "state" }), el("span", { className: "why" }));
  cells[9].className = "actions";
  cells[9].append(button("restart"), button("stop"), button("kill"));
  return el("tr", {}, ...cells);
}

function updateInstance(node, row, total) {
  const cells = node.cells;
  const leaving = picture.counts[row.type] !== undefined &&
    Number(row.name.slice(row.name.lastIndexOf(".") + 1)) > picture.counts[row.type];
  node.dataset.instance = row.name;
  node.hidden = !shown(row.name);
  setText(cells[0], row.name);
  const [state, reason] = cells[1].children;
  setText(state, row.state);
  state.className = `state ${row.state}`;
  setText(reason, why(row, leaving));
  setText(cells[2], `#${row.incarnation}`);
  setText(cells[3], duration(row.uptime));
  setText(cells[4], Object.entries(row.restarts).map(([c, n]) => `${c} ${n}`).join(", ") || "0");
  setText(cells[5], bytes(row.rss));
  setText(cells[6], row.scratch_files === null ? "-" :
    `${row.scratch_files} / ${bytes(row.scratch_bytes)}`);
  setText(cells[7], row.port);
  setText(cells[8], row.connections === null ? "-" :
    `${total ? Math.round((100 * row.connections) / total) : 0}% (${row.connections})`);
  const [restart, stop, kill] = cells[9].children;
  const start = DOWN.includes(row.state);
  setText(restart, start ? "start" : "restart");
  restart.dataset.action = start ? "start" : "restart";
  setAttribute(restart, "aria-label", `${restart.dataset.action} ${row.name}`);
  setAttribute(stop, "aria-disabled", String(!["starting", "running", "backoff"].includes(row.state)));
  setAttribute(kill, "aria-disabled", String(!UP.includes(row.state)));
}

function renderFormation() {
  const items = picture.types.flatMap((type) => [{ type },
    ...picture.instances.filter((row) => row.type === type).map((row) => ({ type, row }))]);
  const totals = {};
  for (const row of picture.instances) totals[row.type] = (totals[row.type] || 0) + (row.connections || 0);
  sync($("formation").tBodies[0], items, (item) => (item.row ? item.row.name : `type ${item.type}`),
    (item) => (item.row ? instanceRow(item.row) : typeRow(item.type)),
    (node, item) => {
      if (item.row) {
        updateInstance(node, item.row, totals[item.type]);
        return;
      }
      node.hidden = !shownType(item.type);
      const count = countOf(item.type);
      const pending = scaling.has(item.type) ? " (scaling)" : "";
      setText(node.querySelector(".count"), `${item.type} \u00d7${count}${pending}`);
    });
}

function renderChaos() {
  const chaos = picture.chaos;
  const text = $("chaos-state");
  if (!chaos) {
    setText(text, "unknown");
    return;
  }
  const kills = `${chaos.kills} kill${chaos.kills === 1 ? "" : "s"} so far`;
  if (chaos.on) {
    const next = chaos.next_at ? `; next kill in ${duration(Math.max(chaos.next_at - picture.time, 0))}` : "";
    setText(text, `${chaos.spec}; ${kills}${next}`);
  } else {
    setText(text, `off; ${kills}${chaos.seed !== null ? ` (last seed ${chaos.seed})` : ""}`);
  }
}

function renderTimeline() {
  const now = picture.time;
  const names = byFormation(Object.keys(picture.timeline));
  const starts = names.flatMap((name) => picture.timeline[name].map((bar) => bar.start));
  const from = Math.min(Math.max(Math.min(now, ...starts), now - WINDOW), now - 10);
  const place = (time) => `${(100 * (time - from)) / (now - from)}%`;
  const bars = (name) => picture.timeline[name]
    .filter((bar) => (bar.end ?? now) >= from)
    .map((bar) => {
      const start = Math.max(bar.start, from);
      const end = bar.end ?? now;
      const what = bar.end === null ? "running" :
        `${bar.how}; destroyed ${destroyed(bar)}; recovery ${duration(bar.recovery)}`;
      const node = el("div", {
        className: `bar ${causeClass(bar)}`,
        "data-incarnation": bar.incarnation,
        title: `${name}#${bar.incarnation} from ${clock(bar.start)}: ${what}`,
      }, `#${bar.incarnation}`);
      Object.assign(node.style, { left: place(start), width: `calc(${place(end)} - ${place(start)})` });
      return node;
    });
  sync($("timeline"), names, (name) => name,
    (name) => el("div", { className: "lane", "data-instance": name },
      el("span", { className: "name" }, name), el("div", { className: "track" })),
    (lane, name) => {
      lane.hidden = !shown(name);
      lane.lastElementChild.replaceChildren(...bars(name));
    });
  const axis = $("axis");
  setText(axis.firstElementChild, `${duration(now - from)} ago`);
  setText(axis.lastElementChild, clock(now));
}

function renderEnded() {
  const ended = Object.entries(picture.timeline)
    .flatMap(([name, bars]) => bars.filter((bar) => bar.end !== null).map((bar) => [name, bar]))
    .sort((a, b) => b[1].end - a[1].end)
    .slice(0, ENDED_ROWS);
  sync($("ended").tBodies[0], ended, ([name, bar]) => `${name}#${bar.incarnation}`,
    ([name, bar]) => {
      const cells = ENDED.map((label) => el("td", { "data-label": label }));
      cells[1].append(el("span", { className: `cause ${bar.cause}` }, bar.cause), ` ${bar.how}`);
      return el("tr", { "data-instance": name, "data-incarnation": bar.incarnation }, ...cells);
    },
    (node, [name, bar]) => {
      const d = bar.destroyed || {};
      const cells = node.cells;
      node.hidden = !shown(name);
      setText(cells[0], `${name}#${bar.incarnation}`);
      setText(cells[2], duration(bar.uptime));
      setText(cells[3], d.files ?? "-");
      setText(cells[4], bytes(d.bytes));
      setText(cells[5], bytes(d.memory));
      setText(cells[6], bar.recovery === null ? "-" : duration(bar.recovery));
    });
}

function describe(notice) {
  const who = `${notice.instance}#${notice.incarnation}`;
  switch (notice.event) {
    case "spawned": return `${who} spawned, pid ${notice.pid}`;
    case "ready":
      return `${who} ready${notice.recovered === null ? "" : `, recovered in ${duration(notice.recovered)}`}`;
    case "ended": return `${who} ended (${notice.cause}): ${notice.how}; destroyed ${destroyed(notice)}`;
    case "scaled": return `scaled ${notice.type} from ${notice.before} to ${notice.after}`;
    case "removed": return `${notice.instance} removed`;
    case "chaos":
      if (notice.action === "kill") return `chaos kills ${who}`;
      return notice.action === "on" ? notice.spec : "chaos off"; // the spec says "chaos on: ..."
    case "shutdown": return `shutdown: ${notice.reason}`;
    case "held": return `${notice.instance} ${notice.failed ? "stays held" : "held"}: ${notice.reason}`;
    case "unhealthy": return `${notice.instance} unhealthy: ${notice.problem}`;
    case "completed": return `${notice.instance} completed${notice.release ? " (release)" : ""}`;
    case "release": return `release failed: ${notice.instance} ${notice.how}`;
    case "dropped": return `${notice.count} notices dropped`;
    case "finished": return `the run ended (exit status ${notice.status})`;
    default: return notice.event;
  }
}

function renderEvents() {
  const lines = picture.events.map((notice) => `${clock(notice.time)} ${describe(notice)}`);
  // Equal lines (two spawns in one second) are told apart by how many came before.
  const seen = new Map();
  const keyed = lines.map((line) => {
    seen.set(line, (seen.get(line) || 0) + 1);
    return [`${line} ${seen.get(line)}`, line];
  });
  sync($("events"), keyed.reverse(), ([key]) => key, ([, line]) => el("li", {}, line), () => {});
}

function outputPane(name) {
  const pre = el("pre", { tabindex: 0, role: "region", "aria-label": `output of ${name}` });
  const open = picture.instances.length <= OPEN_PANES;
  return el("details", { className: "pane", "data-instance": name, ...(open ? { open: "" } : {}) },
    el("summary", {}, name), pre);
}

function renderOutput() {
  sync($("output"), byFormation(Object.keys(picture.output)), (name) => name, outputPane,
    (pane, name) => {
      pane.hidden = !shown(name);
      const lines = picture.output[name];
      const last = lines.at(-1);
      const mark = `${lines.length} ${last?.time} ${last?.text}`;
      const pre = pane.querySelector("pre");
      if (pre.dataset.mark === mark) return;
      pre.dataset.mark = mark;
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.replaceChildren(...lines.map((line) =>
        el("div", line.stderr ? { className: "stderr" } : {}, line.text)));
      if (atBottom) pre.scrollTop = pre.scrollHeight; // follow the output unless scrolled up
    });
}

function render() {
  settleScaling();
  renderStatus();
  renderFilter();
  renderFormation();
  renderActions();
  renderChaos();
  renderTimeline();
  renderEnded();
  renderEvents();
  renderOutput();
}

function follow() {
  const source = new EventSource("events");
  source.addEventListener("picture", (event) => {
    picture = JSON.parse(event.data);
    skew = picture.time - Date.now() / 1000;
    render();
    document.body.dataset.pictures = ++pictures;
    if (picture.last) source.close(); // the dashboard closes after it: no retries, no error
  });
  source.addEventListener("error", () => {
    // The browser retries by itself; until then, keep the last picture and say why.
    const status = $("status");
    setText(status, "dashboard unreachable");
    status.className = "pill down";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = $("chaos-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act("chaos", { action: "on", spec: $("chaos-spec").value || $("chaos-spec").placeholder });
  });
  for (const button of form.querySelectorAll("button[type=button]")) {
    button.addEventListener("click", () => act("chaos", { action: button.dataset.chaos }));
  }
  $("type-filter").addEventListener("change", () => picture && render());
  for (const [id, open] of [["expand-all", true], ["collapse-all", false]]) {
    $(id).addEventListener("click", () => {
      for (const pane of $("output").querySelectorAll("details:not([hidden])")) pane.open = open;
    });
  }
  follow();
  setInterval(() => picture && renderFormation(), 1000); // the retry countdown moves on
});
