// The caller's projects with their role in each; create one; delete one (project admins).

import { get, post, del, qs, paths } from './api.js';
import { h, append, field, table, timeEl, guard, showStatus, confirmDialog, copyButton } from './dom.js';
import { roleBadge, canAdmin } from './project_nav.js';

export async function render({ main, signal }) {
  const list = h('div', { id: 'project-list' });
  const more = h('button', { type: 'button', id: 'projects-more', hidden: true }, 'More projects');
  let after = null;

  async function loadPage(reset) {
    if (reset) {
      after = null;
      list.replaceChildren();
    }
    const page = await get('/v1/projects' + qs({ limit: 50, after }), { signal });
    const rows = page.items.map((p) => h('tr', { 'data-test': 'project-row', 'data-project': p.id },
      h('td', null, h('a', { href: '#/p/' + encodeURIComponent(p.id), 'data-test': 'project-link' }, p.id)),
      h('td', { 'data-test': 'project-name' }, p.name),
      h('td', null, roleBadge(p.role)),
      h('td', null, timeEl(p.created_at)),
      h('td', null, canAdmin(p.role)
        ? h('button', { type: 'button', class: 'danger small', 'data-test': 'project-delete',
          'aria-label': 'Delete project ' + p.id, onclick: () => guard(() => remove(p)) }, 'Delete')
        : null)));
    if (page.items.length === 0 && !after) list.appendChild(h('p', { class: 'muted' }, 'No projects yet.'));
    else list.appendChild(table(['Project', 'Name', 'Your role', 'Created', ''], rows, { 'data-test': 'projects' }));
    after = page.next_after;
    more.hidden = after === null || after === undefined;
  }

  async function remove(p) {
    const ok = await confirmDialog({ title: 'Delete project ' + p.id + '?', danger: true, confirm: 'Delete project',
      body: [h('p', null, 'Its API keys stop working at once. Its history is kept, but the id ',
        h('code', null, p.id), ' can never be used again.')] });
    if (!ok) return;
    await del(paths.project(p.id));
    showStatus('Project ' + p.id + ' deleted.');
    await loadPage(true);
  }

  // Creating a project answers its first API key, shown this once.
  const id = h('input', { id: 'new-project-id', required: true, autocomplete: 'off' });
  const name = h('input', { id: 'new-project-name', required: true, autocomplete: 'off' });
  const created = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'new-project' },
    h('h2', null, 'New project'),
    h('div', { class: 'row' },
      field('Id (a-z, 0-9, inner -)', id),
      field('Name', name)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'new-project-submit' }, 'Create project')),
    created);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guard(async () => {
      const p = await post('/v1/projects', { id: id.value.trim(), name: name.value.trim() });
      created.replaceChildren(keyOnce(p.api_key), h('p', null, h('a', { href: '#/p/' + encodeURIComponent(p.id) }, 'Open ' + p.id)));
      id.value = '';
      name.value = '';
      showStatus('Project ' + p.id + ' created.');
      await loadPage(true);
    });
  });

  append(main, [h('h1', null, 'Projects'), list, more, form]);
  more.addEventListener('click', () => guard(() => loadPage(false)));
  await loadPage(true);
}

// A new API key, shown once, with a copy button.
export function keyOnce(key) {
  if (!key || !key.key) return null;
  const out = h('output', { class: 'secret', 'data-test': 'new-key' }, key.key);
  return h('div', { class: 'notice', 'data-test': 'key-once' },
    h('p', null, h('strong', null, 'Copy this API key now: '), 'it is shown only this once.'),
    h('p', { class: 'secret-row' }, out, ' ', copyButton(key.key, 'Copy the new API key')));
}
