// A project's configs: prefix search, pages of `limit` keys (next_after cursors), and live
// updates from the project watch while the list is open.

import { get, qs, paths } from './api.js';
import { h, append, field, table, timeEl, guard } from './dom.js';
import { loadProject, projectHeader, canWrite } from './project_nav.js';
import { startWatch, headRevision } from './watch.js';

const PAGE = 20;

export async function render({ main, signal, params }) {
  const [pid] = params;
  const project = await loadProject(pid, signal);
  const prefix = h('input', { id: 'config-prefix', type: 'search', autocomplete: 'off',
    placeholder: 'e.g. app.db' });
  const listEl = h('div', { id: 'config-list', 'aria-live': 'polite' });
  const pager = h('div', { class: 'pager' });
  const live = h('span', { class: 'live', 'data-test': 'live-state' }, '');
  // The cursors of the pages seen, so that "Previous" can go back: cursors[i] opens page i.
  let cursors = [null];
  let pageNo = 0;

  async function load() {
    const after = cursors[pageNo];
    const ans = await get(paths.configs(pid) + qs({ prefix: prefix.value.trim(), limit: PAGE, after }), { signal });
    const base = '#/p/' + encodeURIComponent(pid) + '/c/';
    const rows = ans.items.map((c) => h('tr', { 'data-test': 'config-row', 'data-key': c.key },
      h('td', null, h('a', { href: base + encodeURIComponent(c.key), 'data-test': 'config-link' }, c.key)),
      h('td', { class: 'num', 'data-test': 'config-version' }, String(c.version)),
      h('td', null, timeEl(c.updated_at)),
      h('td', { class: 'preview' }, preview(c.content))));
    listEl.replaceChildren(rows.length ? table(['Key', 'Version', 'Updated', 'Content'], rows, { 'data-test': 'configs' })
      : h('p', { class: 'muted', 'data-test': 'no-configs' }, prefix.value ? 'No config starts with this prefix.' : 'No configs yet.'));
    cursors = cursors.slice(0, pageNo + 1);
    if (ans.next_after !== null && ans.next_after !== undefined) cursors.push(ans.next_after);
    pager.replaceChildren(
      h('button', { type: 'button', id: 'configs-prev', disabled: pageNo === 0,
        onclick: () => guard(() => { pageNo--; return load(); }) }, '← Previous'),
      h('span', { class: 'muted' }, ' page ' + (pageNo + 1) + ' '),
      h('button', { type: 'button', id: 'configs-next', disabled: cursors.length <= pageNo + 1,
        onclick: () => guard(() => { pageNo++; return load(); }) }, 'Next →'));
  }

  const search = h('form', { class: 'row search', role: 'search' },
    field('Key prefix', prefix),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'config-search' }, 'Search')));
  search.addEventListener('submit', (ev) => {
    ev.preventDefault();
    cursors = [null];
    pageNo = 0;
    guard(load);
  });

  append(main, [projectHeader(project, 'configs'),
    h('div', { class: 'toolbar' },
      canWrite(project.role)
        ? h('a', { class: 'button primary', href: '#/p/' + encodeURIComponent(pid) + '/new', id: 'new-config' }, 'New config')
        : null,
      live),
    search, listEl, pager]);
  // The head first, then the list: a change after the head is then never missed.
  const from = await headRevision(pid, signal);
  await load();
  startWatch({ project: pid, from, signal,
    onChanges: () => guard(load),
    onState: (s) => { live.textContent = s === 'live' ? '● live' : s; } });
}

// A one-line preview of a config's content, cut at 80 characters.
function preview(content) {
  const s = JSON.stringify(content);
  return s.length > 80 ? s.slice(0, 79) + '…' : s;
}
