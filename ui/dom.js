// A tiny element builder and the page-wide helpers (alerts, confirmation dialog, dates).
//
// Every element is made with createElement and every piece of text goes in through
// textContent or .value: never innerHTML and friends, so that keys, contents, names and error
// messages (user-supplied) are always shown as text, never parsed as HTML.

// h('button', {class: 'x', onclick: fn, 'data-test': 't'}, 'Save') → a <button>.
// Props: class, text, value, checked/disabled/hidden/... (properties), for, on<event>
// functions (addEventListener), anything else via setAttribute. Children: nodes, strings
// (text nodes), arrays, and null/false/undefined (skipped).
const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'readOnly', 'required', 'selected',
  'multiple', 'spellcheck']);

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'for') el.htmlFor = v;
    else if (PROPS.has(k)) el[k] = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A labelled form field: <div class="field"><label for=id>text</label>control</div>.
export function field(labelText, control, hint) {
  if (!control.id) control.id = 'f-' + Math.random().toString(36).slice(2, 9);
  return h('div', { class: 'field' }, h('label', { for: control.id }, labelText), control,
    hint ? h('p', { class: 'hint' }, hint) : null);
}

// The alert region (role="alert" in index.html): errors the user must see.
export function showError(err) {
  const region = document.getElementById('alert');
  clear(region);
  if (!err) {
    region.hidden = true;
    return;
  }
  const msg = typeof err === 'string' ? err : (err.message || String(err));
  const code = err && err.status ? ' (HTTP ' + err.status + (err.code ? ', ' + err.code : '') + ')' : '';
  append(region, [h('span', { 'data-test': 'alert-text' }, msg + code),
    h('button', { class: 'link', type: 'button', 'aria-label': 'Dismiss the message',
      onclick: () => showError(null) }, '×')]);
  region.hidden = false;
}

// The status region (role="status"): short confirmations that something worked.
let statusTimer = null;
let statusCarry = false;
// showStatus(text, {carry}): carry keeps it through the next page change (the action that
// led to the new page: "created", "deleted").
export function showStatus(text, opts = {}) {
  const region = document.getElementById('status');
  region.textContent = text;
  region.hidden = !text;
  statusCarry = Boolean(opts.carry);
  clearTimeout(statusTimer);
  if (text) statusTimer = setTimeout(() => { region.hidden = true; }, 6000);
}

// On a page change: a confirmation belongs to the page it was shown on, unless carried.
export function clearStaleStatus() {
  if (!statusCarry) document.getElementById('status').hidden = true;
  statusCarry = false;
}

// Runs fn(); an exception other than an abort goes to the alert region.
export async function guard(fn) {
  try {
    showError(null);
    return await fn();
  } catch (err) {
    if (err && (err.name === 'AbortError')) return undefined;
    showError(err);
    return undefined;
  }
}

// confirmDialog({title, body: [nodes], confirm: 'Delete', danger}) → Promise<boolean>, with a
// modal <dialog> (Escape cancels). The page's own dialog rather than window.confirm, so that
// it can show a diff and be styled and tested like any other element.
export function confirmDialog({ title, body = [], confirm = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'button', class: danger ? 'danger' : 'primary', 'data-test': 'confirm-ok' }, confirm);
    const cancel = h('button', { type: 'button', 'data-test': 'confirm-cancel' }, 'Cancel');
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title', 'data-test': 'confirm' },
      h('h2', { id: 'confirm-title' }, title),
      h('div', { class: 'confirm-body' }, body),
      h('div', { class: 'actions' }, cancel, ok));
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      if (dlg.open) dlg.close();
      dlg.remove();
      resolve(v);
    };
    ok.addEventListener('click', () => finish(true));
    cancel.addEventListener('click', () => finish(false));
    dlg.addEventListener('close', () => finish(false));
    document.body.appendChild(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

// An ISO time shown in the browser's local time zone ("" for none).
export function localTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function timeEl(iso) {
  return h('time', { datetime: iso || '', title: iso || '' }, localTime(iso));
}

// Who wrote a revision: "user:UUID" or "key:PREFIX" as the server records it, shortened
// (the whole value in the tooltip).
export function actorEl(actor) {
  const s = String(actor || '');
  const m = /^(user|key):(.{8}).{9,}$/.exec(s);
  return h('span', { class: 'actor', title: s }, m ? m[1] + ':' + m[2] + '…' : s);
}

// A table: headers are strings, rows arrays of cells (nodes or strings).
export function table(headers, rows, props = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', props,
      h('thead', null, h('tr', null, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows.map((r) => (r instanceof Node ? r : h('tr', null, r.map((c) => h('td', null, c))))))));
}

// A copy-to-clipboard button for a value shown once (an API key). The Clipboard API needs a
// secure context: elsewhere the hint says to select the text by hand.
export function copyButton(text, label) {
  const btn = h('button', { type: 'button', 'aria-label': label || 'Copy to the clipboard' }, 'Copy');
  btn.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      showStatus('Copied.');
    } catch (_) {
      showStatus('The browser refused the clipboard: select the text and copy it by hand.');
    }
  });
  return btn;
}

// Pretty JSON text of a value (2 spaces), as the editor and the diffs show it.
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}
