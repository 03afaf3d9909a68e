// A project's API keys (project admins): create (scope, optional config prefix; the key is
// shown once), list, revoke.

import { get, post, del, qs, paths, enc } from './api.js';
import { h, append, field, table, timeEl, guard, showStatus, confirmDialog } from './dom.js';
import { loadProject, projectHeader, canAdmin } from './project_nav.js';
import { keyOnce } from './page_projects.js';

export async function render({ main, signal, params }) {
  const [pid] = params;
  const project = await loadProject(pid, signal);
  append(main, [projectHeader(project, 'keys')]);
  if (!canAdmin(project.role)) {
    append(main, [h('p', { class: 'notice' }, 'Only the project\'s admins manage its API keys.')]);
    return;
  }
  const keysUrl = paths.project(pid) + '/api-keys';
  const listEl = h('div', { id: 'key-list' });
  const shown = h('div', { 'aria-live': 'polite', id: 'key-shown' });

  async function load() {
    const rows = [];
    let after = null;
    for (let i = 0; i < 20; i++) {
      const ans = await get(keysUrl + qs({ limit: 500, after }), { signal });
      rows.push(...ans.items);
      after = ans.next_after;
      if (after === null || after === undefined) break;
    }
    listEl.replaceChildren(rows.length === 0 ? h('p', { class: 'muted' }, 'No API keys.') : table(
      ['Name', 'Prefix', 'Scope', 'Config prefix', 'Created', 'Revoked', ''],
      rows.map((k) => h('tr', { 'data-test': 'key-row', 'data-key-id': k.id, class: k.revoked_at ? 'revoked' : null },
        h('td', null, k.name || ''), h('td', null, h('code', null, k.prefix)), h('td', null, k.scope || 'read-write'),
        h('td', null, k.config_prefix ? h('code', null, k.config_prefix) : h('span', { class: 'muted' }, 'whole project')),
        h('td', null, timeEl(k.created_at)), h('td', null, k.revoked_at ? timeEl(k.revoked_at) : ''),
        h('td', null, k.revoked_at ? null : h('button', { type: 'button', class: 'danger small', 'data-test': 'key-revoke',
          'aria-label': 'Revoke key ' + k.prefix,
          onclick: () => guard(async () => {
            const ok = await confirmDialog({ title: 'Revoke key ' + k.prefix + '?', danger: true, confirm: 'Revoke',
              body: [h('p', null, 'Whatever uses it stops working on every node within a second.')] });
            if (!ok) return;
            await del(keysUrl + '/' + enc(k.id));
            showStatus('Key ' + k.prefix + ' revoked.');
            await load();
          }) }, 'Revoke')))), { 'data-test': 'keys' }));
  }

  const name = h('input', { id: 'key-name', autocomplete: 'off', maxlength: '200' });
  const scope = h('select', { id: 'key-scope' },
    h('option', { value: 'read' }, 'read (viewer)'), h('option', { value: 'read-write' }, 'read-write (editor)'));
  const prefix = h('input', { id: 'key-prefix', autocomplete: 'off', placeholder: 'e.g. app.' });
  const form = h('form', { class: 'card', id: 'key-form' }, h('h2', null, 'New API key'),
    h('div', { class: 'row' }, field('Name', name), field('Scope', scope),
      field('Config prefix (optional)', prefix, 'Limits the key to the configs whose keys start with it.')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'key-submit' }, 'Create key')), shown);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guard(async () => {
      const body = { scope: scope.value };
      if (name.value.trim()) body.name = name.value.trim();
      if (prefix.value.trim()) body.config_prefix = prefix.value.trim();
      const k = await post(keysUrl, body);
      shown.replaceChildren(keyOnce(k));
      name.value = '';
      prefix.value = '';
      await load();
    });
  });
  append(main, [listEl, form]);
  await load();
}
