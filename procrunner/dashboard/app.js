// The dashboard page: renders the pictures that the server streams (Server-Sent Events) and
// sends the page's actions back as JSON POSTs. Plain DOM: output text is only ever set as
// text, never parsed as HTML.
"use strict";

const WINDOW = 300; // seconds of timeline shown at most
const ENDED_ROWS = 12; // ended incarnations listed
const CAUSES = ["chaos", "crash", "exited", "watch", "requested", "scaled", "shutdown"];

let picture = null;

function $(id) {
  return document.getElementById(id);
}

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === "className") node.className = value;
    else if (name === "style") Object.assign(node.style, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function bytes(count) {
  if (count === null || count === undefined) return "-";
  if (count < 1000) return `${count} B`;
  let value = count / 1000;
  for (const unit of ["kB", "MB", "GB"]) {
    if (value < 999.95) return `${value.toFixed(1)} ${unit}`;
    value /= 1000;
  }
  return `${value.toFixed(1)} TB`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 0.9995) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 59.95) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(Math.round(seconds) / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds) % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function clock(time) {
  return new Date(time * 1000).toLocaleTimeString([], { hour12: false });
}

function causeClass(bar) {
  if (bar.end === null) return picture.connected ? "running" : "other";
  return CAUSES.includes(bar.cause) ? bar.cause : "other";
}

function destroyed(bar) {
  const d = bar.destroyed || {};
  return `${d.files ?? "-"} files / ${bytes(d.bytes)}, ${bytes(d.memory)} memory`;
}

// Instance names in formation order: by type, then by number (web.2 before web.10).
function byFormation(names) {
  const rank = (name) => {
    const dot = name.lastIndexOf(".");
    const type = picture.types.indexOf(name.slice(0, dot));
    return [type < 0 ? picture.types.length : type, Number(name.slice(dot + 1))];
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
  problem.textContent = data.ok ? "" : `Not done: ${data.error}`;
}

function scale(type, count) {
  act("scale", { counts: { [type]: Math.max(count, 0) } });
}

function renderStatus() {
  const status = $("status");
  const banner = $("banner");
  $("app").textContent = picture.app ? `${picture.app} (pid ${picture.pid})` : "";
  if (!picture.connected) {
    status.textContent = "stopped";
    status.className = "pill down";
    banner.hidden = false;
    const since = picture.down_since ? ` since ${clock(picture.down_since)}` : "";
    banner.textContent = `The formation is not running${since}. This is the last picture; ` +
      "the dashboard reconnects when it starts again.";
    return;
  }
  banner.hidden = !picture.stopping;
  banner.textContent = picture.stopping ? `The formation is stopping: ${picture.stopping}` : "";
  status.textContent = picture.stopping ? "stopping" : "running";
  status.className = picture.stopping ? "pill stopping" : "pill up";
}

function renderFormation() {
  const body = $("formation").tBodies[0];
  body.replaceChildren();
  for (const type of picture.types) {
    const rows = picture.instances.filter((row) => row.type === type);
    const total = rows.reduce((sum, row) => sum + (row.connections || 0), 0);
    body.append(el("tr", { className: "type" },
      el("td", { colspan: 10 }, `${type} \u00d7${rows.length} `,
        el("button", { title: `scale ${type} down`, onclick: () => scale(type, rows.length - 1) }, "\u2212"),
        " ",
        el("button", { title: `scale ${type} up`, onclick: () => scale(type, rows.length + 1) }, "+"))));
    for (const row of rows) {
      const restarts = Object.entries(row.restarts).map(([c, n]) => `${c} ${n}`).join(", ") || "0";
      const scratch = row.scratch_files === null ? "-" :
        `${row.scratch_files} / ${bytes(row.scratch_bytes)}`;
      const share = row.connections === null ? "-" :
        `${total ? Math.round((100 * row.connections) / total) : 0}% (${row.connections})`;
      body.append(el("tr", { "data-instance": row.name },
        el("td", {}, row.name),
        el("td", { className: `state ${row.state}` }, row.state),
        el("td", {}, `#${row.incarnation}`),
        el("td", {}, duration(row.uptime)),
        el("td", {}, restarts),
        el("td", {}, bytes(row.rss)),
        el("td", {}, scratch),
        el("td", {}, row.port),
        el("td", {}, share),
        el("td", {}, el("button", { onclick: () => act("restart", { targets: [row.name] }) },
          "restart"))));
    }
  }
}

function renderChaos() {
  const chaos = picture.chaos;
  const text = $("chaos-state");
  if (!chaos) {
    text.textContent = "unknown";
    return;
  }
  const kills = `${chaos.kills} kill${chaos.kills === 1 ? "" : "s"} so far`;
  if (chaos.on) {
    const next = chaos.next_at ? `; next kill in ${duration(Math.max(chaos.next_at - picture.time, 0))}` : "";
    text.textContent = `${chaos.spec}; ${kills}${next}`;
  } else {
    text.textContent = `off; ${kills}${chaos.seed !== null ? ` (last seed ${chaos.seed})` : ""}`;
  }
}

function renderTimeline() {
  const now = picture.time;
  const names = byFormation(Object.keys(picture.timeline));
  const starts = names.flatMap((name) => picture.timeline[name].map((bar) => bar.start));
  const from = Math.min(Math.max(Math.min(now, ...starts), now - WINDOW), now - 10);
  const place = (time) => `${(100 * (time - from)) / (now - from)}%`;
  const lanes = names.map((name) => {
    const bars = picture.timeline[name]
      .filter((bar) => (bar.end ?? now) >= from)
      .map((bar) => {
        const start = Math.max(bar.start, from);
        const end = bar.end ?? now;
        const what = bar.end === null ? "running" :
          `${bar.how}; destroyed ${destroyed(bar)}; recovery ${duration(bar.recovery)}`;
        return el("div", {
          className: `bar ${causeClass(bar)}`,
          "data-incarnation": bar.incarnation,
          title: `${name}#${bar.incarnation} from ${clock(bar.start)}: ${what}`,
          style: { left: place(start), width: `calc(${place(end)} - ${place(start)})` },
        }, `#${bar.incarnation}`);
      });
    return el("div", { className: "lane", "data-instance": name },
      el("span", { className: "name" }, name), el("div", { className: "track" }, ...bars));
  });
  const axis = el("div", { className: "axis" },
    el("span", {}, `${duration(now - from)} ago`), el("span", {}, clock(now)));
  $("timeline").replaceChildren(...lanes, axis);
}

function renderEnded() {
  const ended = Object.entries(picture.timeline)
    .flatMap(([name, bars]) => bars.filter((bar) => bar.end !== null).map((bar) => [name, bar]))
    .sort((a, b) => b[1].end - a[1].end)
    .slice(0, ENDED_ROWS);
  $("ended").tBodies[0].replaceChildren(...ended.map(([name, bar]) => {
    const d = bar.destroyed || {};
    return el("tr", { "data-instance": name, "data-incarnation": bar.incarnation },
      el("td", {}, `${name}#${bar.incarnation}`),
      el("td", {}, el("span", { className: `cause ${bar.cause}` }, bar.cause), ` ${bar.how}`),
      el("td", {}, duration(bar.uptime)),
      el("td", {}, d.files ?? "-"),
      el("td", {}, bytes(d.bytes)),
      el("td", {}, bytes(d.memory)),
      el("td", {}, bar.recovery === null ? "-" : duration(bar.recovery)));
  }));
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
      return notice.action === "on" ? `chaos on: ${notice.spec}` : "chaos off";
    case "shutdown": return `shutdown: ${notice.reason}`;
    case "dropped": return `${notice.count} notices dropped`;
    default: return notice.event;
  }
}

function renderEvents() {
  $("events").replaceChildren(...[...picture.events].reverse()
    .map((notice) => el("li", {}, `${clock(notice.time)} ${describe(notice)}`)));
}

function renderOutput() {
  const boxes = byFormation(Object.keys(picture.output)).map((name) => {
    const pre = el("pre", {}, ...picture.output[name].map((line) =>
      el("div", { className: line.stderr ? "stderr" : "" }, line.text)));
    return el("div", { "data-instance": name }, el("h3", {}, name), pre);
  });
  $("output").replaceChildren(...boxes);
  for (const pre of $("output").querySelectorAll("pre")) pre.scrollTop = pre.scrollHeight;
}

function render() {
  renderStatus();
  renderFormation();
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
    render();
  });
  source.addEventListener("error", () => {
    // The browser retries by itself; until then, keep the last picture and say why.
    const status = $("status");
    status.textContent = "dashboard unreachable";
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
  follow();
});
