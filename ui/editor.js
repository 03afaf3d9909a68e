// The JSON editor: a textarea that checks its text on every change, shows a syntax error
// with its line and column before anything is sent, and lists server-side errors (a schema
// violation's JSON Pointers, a schema's compile error) as buttons that select the value at
// the pointer in the text.

import { h, clear } from './dom.js';
import { checkJson, locate, lineCol } from './jsonloc.js';

// jsonEditor({id, label, text, readOnly, onValidity}) → {el, textarea, value(), valid(),
// text(), setText(t), dirty(), markClean(), showErrors(list), clearErrors(), select(ptr)}.
// onValidity(valid) runs after every check, so the page can disable Save while invalid.
export function jsonEditor({ id, label = 'Content (JSON)', text = '', readOnly = false, onValidity }) {
  const ta = h('textarea', { id, class: 'json', spellcheck: false, rows: '16', readOnly,
    'aria-describedby': id + '-syntax', autocomplete: 'off', autocapitalize: 'off' });
  ta.value = text;
  const syntax = h('p', { id: id + '-syntax', class: 'syntax', 'data-test': 'syntax-error', 'aria-live': 'polite', hidden: true });
  const errList = h('ul', { class: 'errors', 'data-test': 'violations', hidden: true });
  let clean = text;
  let state = checkJson(text);

  // The textarea grows with its text (8 to 30 rows); beyond that it scrolls.
  function fit() {
    const lines = ta.value.split('\n').length;
    ta.rows = Math.max(8, Math.min(30, lines + 2));
  }

  function check() {
    fit();
    state = checkJson(ta.value);
    if (state.ok) {
      syntax.hidden = true;
      syntax.textContent = '';
      ta.removeAttribute('aria-invalid');
    } else {
      syntax.textContent = `Invalid JSON at line ${state.line}, column ${state.column}: ${state.message}`;
      syntax.hidden = false;
      ta.setAttribute('aria-invalid', 'true');
    }
    if (onValidity) onValidity(state.ok);
  }
  ta.addEventListener('input', check);

  // Selects the value at pointer in the textarea (or its nearest existing ancestor) and
  // scrolls it into view.
  function select(pointer) {
    const loc = locate(ta.value, pointer);
    if (!loc) return false;
    ta.focus();
    ta.setSelectionRange(loc.start, loc.end);
    // Scroll so that the selection's line is visible: a textarea does not do it on its own
    // for a selection set by script.
    const { line } = lineCol(ta.value, loc.start);
    const lineHeight = parseFloat(getComputedStyle(ta).lineHeight) || 18;
    ta.scrollTop = Math.max(0, (line - 3) * lineHeight);
    return true;
  }

  // errors: [{path, message, keyword?}] → one list item each; clicking selects the value.
  function showErrors(errors, heading) {
    clear(errList);
    if (!errors || errors.length === 0) {
      errList.hidden = true;
      return;
    }
    if (heading) errList.appendChild(h('li', { class: 'errors-heading' }, heading));
    for (const e of errors) {
      const ptr = typeof e.path === 'string' ? e.path : '';
      const shown = ptr === '' ? '(the whole document)' : ptr;
      const btn = h('button', { type: 'button', class: 'link pointer', 'data-test': 'violation',
        'data-pointer': ptr, 'aria-label': `Select ${shown} in the editor` }, shown);
      btn.addEventListener('click', () => select(ptr));
      errList.appendChild(h('li', null, btn, ': ', h('span', { class: 'msg' }, e.message || ''),
        e.keyword ? h('span', { class: 'kw' }, ` (${e.keyword})`) : null));
    }
    errList.hidden = false;
  }

  // The errors go between the label and the text, where they are seen without scrolling
  // past a long document.
  const el = h('div', { class: 'editor' },
    h('label', { for: id }, label), syntax, errList, ta);
  // The first check runs after the page has wired onValidity's targets.
  queueMicrotask(check);
  return {
    el,
    textarea: ta,
    valid: () => state.ok,
    value: () => (state.ok ? state.value : undefined),
    text: () => ta.value,
    setText(t) {
      ta.value = t;
      clean = t;
      check();
    },
    dirty: () => ta.value !== clean,
    markClean() {
      clean = ta.value;
    },
    showErrors,
    clearErrors: () => showErrors([]),
    select,
  };
}

// The JSON Pointer a compile error names: "... at /properties/a/minimum: ..." (jsonschema.c
// writes "at <pointer>: " or "at the root: "), or a "pointer" / "path" field when the body
// has one. null when none is found.
export function pointerOfMessage(body, message) {
  if (body && typeof body.pointer === 'string') return body.pointer;
  if (body && typeof body.path === 'string') return body.path;
  const m = /at (\/[^:\s]*)/.exec(message || '');
  if (m) return m[1];
  if (/at the root/.test(message || '')) return '';
  return null;
}
