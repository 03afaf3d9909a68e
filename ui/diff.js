// Line diff (Myers' O((N+M)·D) algorithm) and its rendering.
//
// Bounded on purpose: a browser tab must not freeze on a huge config. Beyond MAX_LINES lines
// on either side, or MAX_EDITS differing lines, diffLines() throws DiffTooLarge, whose
// message the page shows instead of a diff.

import { h } from './dom.js';

export const MAX_LINES = 5000;
export const MAX_EDITS = 2000;

export class DiffTooLarge extends Error {
  constructor(message) {
    super(message);
    this.name = 'DiffTooLarge';
  }
}

// diffLines(oldText, newText) → [{op: ' ' | '-' | '+', text, a, b}] where a and b are the
// 1-based line numbers in the old and the new text (null on the side a line is absent from).
export function diffLines(oldText, newText) {
  const a = oldText === '' ? [] : oldText.split('\n');
  const b = newText === '' ? [] : newText.split('\n');
  if (a.length > MAX_LINES || b.length > MAX_LINES) {
    throw new DiffTooLarge(`not diffed: ${Math.max(a.length, b.length)} lines is more than the ` +
      `${MAX_LINES} lines this page compares; compare the versions with the CLI instead`);
  }
  // The common head and tail need no search; only the middle goes through Myers.
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre &&
         a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const mid = myers(a.slice(pre, a.length - suf), b.slice(pre, b.length - suf));
  const ops = [];
  for (let i = 0; i < pre; i++) ops.push({ op: ' ', text: a[i] });
  ops.push(...mid);
  for (let i = a.length - suf; i < a.length; i++) ops.push({ op: ' ', text: a[i] });
  let ai = 1;
  let bi = 1;
  for (const o of ops) {
    o.a = o.op === '+' ? null : ai++;
    o.b = o.op === '-' ? null : bi++;
  }
  return ops;
}

// Myers' greedy shortest edit script. The trace keeps, for each d, only the diagonals
// -(d+1)..d+1 of V, so memory is O(D²) rather than O(D·(N+M)).
function myers(a, b) {
  const n = a.length;
  const m = b.length;
  if (n === 0) return b.map((t) => ({ op: '+', text: t }));
  if (m === 0) return a.map((t) => ({ op: '-', text: t }));
  const max = n + m;
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace = [];
  const limit = Math.min(max, MAX_EDITS);
  for (let d = 0; d <= limit; d++) {
    trace.push(v.slice(off - d - 1, off + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x;
      if (k === -d || (k !== d && v[off + k - 1] < v[off + k + 1])) x = v[off + k + 1];
      else x = v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) return backtrack(trace, a, b, d);
    }
  }
  throw new DiffTooLarge(`not diffed: the two texts differ in more than ${MAX_EDITS} lines`);
}

function backtrack(trace, a, b, dEnd) {
  const out = [];
  let x = a.length;
  let y = b.length;
  for (let d = dEnd; d > 0; d--) {
    const vv = trace[d];
    const at = (k) => vv[k + d + 1];
    const k = x - y;
    const prevK = (k === -d || (k !== d && at(k - 1) < at(k + 1))) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      out.push({ op: ' ', text: a[x - 1] });
      x--;
      y--;
    }
    if (prevK === k + 1) out.push({ op: '+', text: b[y - 1] });
    else out.push({ op: '-', text: a[x - 1] });
    x = prevX;
    y = prevY;
  }
  while (x > 0 && y > 0) {
    out.push({ op: ' ', text: a[x - 1] });
    x--;
    y--;
  }
  return out.reverse();
}

// renderDiff(oldText, newText, {oldLabel, newLabel}) → an element: a table of the lines
// (removed ones marked "-", added "+"), or the reason it was not diffed.
export function renderDiff(oldText, newText, labels = {}) {
  let ops;
  try {
    ops = diffLines(oldText, newText);
  } catch (err) {
    if (err instanceof DiffTooLarge) return h('p', { class: 'notice', 'data-test': 'diff-too-large' }, err.message);
    throw err;
  }
  const changed = ops.filter((o) => o.op !== ' ').length;
  const caption = h('caption', null,
    h('span', { class: 'del-label' }, '− ' + (labels.oldLabel || 'old')), ' → ',
    h('span', { class: 'add-label' }, '+ ' + (labels.newLabel || 'new')),
    changed === 0 ? ' (identical)' : ` (${changed} line${changed === 1 ? '' : 's'} changed)`);
  const rows = ops.map((o) => h('tr', { class: o.op === '+' ? 'add' : o.op === '-' ? 'del' : 'same' },
    h('td', { class: 'ln' }, o.a === null ? '' : String(o.a)),
    h('td', { class: 'ln' }, o.b === null ? '' : String(o.b)),
    h('td', { class: 'mark', 'aria-label': o.op === '+' ? 'added' : o.op === '-' ? 'removed' : 'unchanged' },
      o.op === ' ' ? '' : o.op),
    h('td', { class: 'code' }, o.text)));
  return h('div', { class: 'diff-wrap', 'data-test': 'diff' }, h('table', { class: 'diff' }, caption, h('tbody', null, rows)));
}
