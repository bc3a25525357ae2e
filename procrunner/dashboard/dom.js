// The dashboard page's DOM helpers: build elements (text only ever set as text, never parsed
// as HTML), rewrite only what changed, keep a parent's children by key, and format numbers.
// Loaded before app.js, which renders the pictures with them.

function $(id) {
  return document.getElementById(id);
}

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children.map((child) => (child instanceof Node ? child : String(child))));
  return node;
}

// Rewrite a node's text only when it changed: an unchanged text node keeps its selection.
function setText(node, text) {
  if (node.textContent !== String(text)) node.textContent = text;
}

function setAttribute(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

// The children of `parent`, one per item in order, keyed by `keyOf`: a kept node is updated
// and moved only if out of place (moving a node drops the focus inside it).
function sync(parent, items, keyOf, make, update) {
  const wanted = new Map(items.map((item) => [String(keyOf(item)), item]));
  for (const node of [...parent.children]) {
    if (!wanted.has(node.dataset.key)) node.remove();
  }
  const kept = new Map([...parent.children].map((node) => [node.dataset.key, node]));
  let cursor = parent.firstElementChild;
  for (const [key, item] of wanted) {
    let node = kept.get(key);
    if (node === undefined) {
      node = make(item);
      node.dataset.key = key;
    }
    update(node, item);
    if (node === cursor) cursor = cursor.nextElementSibling;
    else parent.insertBefore(node, cursor);
  }
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
