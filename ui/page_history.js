// A config's history: every version (pages of 50), a diff between any two, and rollback to a
// version after a confirmation that shows what will change (current → target).

import { get, post, qs, paths } from './api.js';
import { h, append, field, table, timeEl, actorEl, guard, showError, showStatus, confirmDialog, pretty } from './dom.js';
import { loadProject, projectHeader, canWrite } from './project_nav.js';
import { renderDiff } from './diff.js';

const PAGE = 50;

export async function render({ main, signal, params }) {
  const [pid, key] = params;
  const project = await loadProject(pid, signal);
  const writer = canWrite(project.role);
  const url = paths.config(pid, key);
  const revs = new Map(); // version → revision
  let nextAfter = null;

  const rowsEl = h('div', { id: 'history-list' });
  const more = h('button', { type: 'button', id: 'history-more', hidden: true }, 'Older… more versions');
  const from = h('select', { id: 'history-from' });
  const to = h('select', { id: 'history-to' });
  const diffEl = h('div', { id: 'history-diff', 'aria-live': 'polite' });

  const textOf = (r) => (r.op === 'delete' ? '' : pretty(r.content));

  function compare() {
    const a = revs.get(Number(from.value));
    const b = revs.get(Number(to.value));
    if (!a || !b) return;
    diffEl.replaceChildren(renderDiff(textOf(a), textOf(b),
      { oldLabel: 'version ' + a.version, newLabel: 'version ' + b.version }));
  }

  async function current() {
    try {
      return await get(url, { signal });
    } catch (err) {
      if (err.status === 404) return null; // deleted: its tombstone is the last version
      throw err;
    }
  }

  async function rollback(target) {
    const cur = await current();
    const curVersion = cur ? cur.version : Math.max(...revs.keys());
    const ok = await confirmDialog({
      title: `Roll ${key} back to version ${target.version}?`, confirm: 'Roll back',
      body: [h('p', null, `This writes a new version holding version ${target.version}'s content. `
          + 'What changes, from the current version to it:'),
        renderDiff(cur ? pretty(cur.content) : '', textOf(target),
          { oldLabel: cur ? 'current (version ' + cur.version + ')' : 'deleted', newLabel: 'version ' + target.version })],
    });
    if (!ok) return;
    try {
      const ans = await post(url + '/rollback', { target_version: target.version, expected_version: curVersion });
      showStatus(`Rolled back: version ${ans.version} holds version ${target.version}'s content.`);
    } catch (err) {
      if (err.status === 409) {
        showError(`Version ${err.body.current_version} was written meanwhile; nothing was rolled back. Review the history and try again.`);
      } else {
        throw err;
      }
    }
    await reload();
  }

  function draw() {
    const list = [...revs.values()].sort((a, b) => b.version - a.version);
    const rows = list.map((r) => h('tr', { 'data-test': 'history-row', 'data-version': String(r.version) },
      h('td', { class: 'num' }, String(r.version)),
      h('td', null, h('span', { class: 'badge op-' + r.op }, r.op),
        r.op === 'rollback' && r.source_version ? ' of ' + r.source_version : ''),
      h('td', { class: 'nowrap' }, timeEl(r.created_at)),
      h('td', null, actorEl(r.actor)),
      h('td', { class: 'preview' }, r.op === 'delete' ? '—' : JSON.stringify(r.content).slice(0, 60)),
      h('td', null, writer && r.op !== 'delete' && r.version !== list[0].version
        ? h('button', { type: 'button', class: 'small', 'data-test': 'rollback', 'aria-label': 'Roll back to version ' + r.version,
          onclick: () => guard(() => rollback(r)) }, 'Roll back')
        : null)));
    rowsEl.replaceChildren(table(['Version', 'Operation', 'When', 'By', 'Content', ''], rows, { 'data-test': 'history' }));
    for (const sel of [from, to]) {
      const keep = sel.value;
      sel.replaceChildren(...list.map((r) => h('option', { value: String(r.version) }, 'version ' + r.version + ' (' + r.op + ')')));
      if (keep && revs.has(Number(keep))) sel.value = keep;
    }
    more.hidden = nextAfter === null || nextAfter === undefined;
  }

  async function loadPage() {
    const ans = await get(url + '/revisions' + qs({ after_version: nextAfter, limit: PAGE }), { signal });
    for (const r of ans.items) revs.set(r.version, r);
    nextAfter = ans.next_after_version;
  }

  // Versions come oldest first: the newest needs every page before it. Bounded to 200 pages
  // (10,000 versions); older ones stay reachable with "more".
  async function reload() {
    revs.clear();
    nextAfter = null;
    for (let i = 0; i < 200; i++) {
      await loadPage();
      if (nextAfter === null || nextAfter === undefined) break;
    }
    draw();
    const list = [...revs.keys()].sort((a, b) => a - b);
    if (list.length >= 1) {
      to.value = String(list[list.length - 1]);
      from.value = String(list[Math.max(0, list.length - 2)]);
      compare();
    }
  }

  more.addEventListener('click', () => guard(async () => { await loadPage(); draw(); }));
  const cmp = h('form', { class: 'row compare', id: 'history-compare-form' },
    field('From', from), field('To', to),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'history-compare' }, 'Compare')));
  cmp.addEventListener('submit', (ev) => {
    ev.preventDefault();
    compare();
  });
  const base = '#/p/' + encodeURIComponent(pid) + '/c/' + encodeURIComponent(key);
  append(main, [projectHeader(project, 'configs', [h('a', { href: base }, key), 'history']),
    h('h2', { class: 'key' }, 'History of ', h('span', { 'data-test': 'config-key' }, key)),
    rowsEl, more, h('h3', null, 'Compare two versions'), cmp, diffEl]);
  await reload();
}
