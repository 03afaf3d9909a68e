// A project's members (project admins): list, grant by email, change a role, remove.

import { get, post, del, qs, paths, enc } from './api.js';
import { h, append, field, table, timeEl, guard, showStatus, confirmDialog } from './dom.js';
import { loadProject, projectHeader, canAdmin } from './project_nav.js';

const LEVELS = ['viewer', 'editor', 'admin'];

function levelSelect(id, value, label) {
  return h('select', { id, 'aria-label': label },
    LEVELS.map((l) => h('option', { value: l, selected: l === value }, l)));
}

export async function render({ main, signal, params }) {
  const [pid] = params;
  const project = await loadProject(pid, signal);
  append(main, [projectHeader(project, 'members')]);
  if (!canAdmin(project.role)) {
    append(main, [h('p', { class: 'notice' }, 'Only the project\'s admins manage its members.')]);
    return;
  }
  const listEl = h('div', { id: 'member-list' });
  const rolesUrl = paths.project(pid) + '/roles';

  async function load() {
    const rows = [];
    let after = null;
    // Bounded: 20 pages of 500 members.
    for (let i = 0; i < 20; i++) {
      const ans = await get(rolesUrl + qs({ limit: 500, after }), { signal });
      rows.push(...ans.items);
      after = ans.next_after;
      if (after === null || after === undefined) break;
    }
    listEl.replaceChildren(table(['Email', 'Role', 'Since', ''], rows.map((r) => {
      const sel = levelSelect('role-' + r.user_id, r.role_level, 'Role of ' + r.email);
      sel.addEventListener('change', () => guard(async () => {
        await post(rolesUrl, { user_id: r.user_id, role_level: sel.value });
        showStatus(r.email + ' is now ' + sel.value + '.');
        await load();
      }));
      const remove = h('button', { type: 'button', class: 'danger small', 'data-test': 'member-remove',
        'aria-label': 'Remove ' + r.email }, 'Remove');
      remove.addEventListener('click', () => guard(async () => {
        const ok = await confirmDialog({ title: 'Remove ' + r.email + '?', danger: true, confirm: 'Remove',
          body: [h('p', null, 'They lose access to ' + pid + ' on every node within a second.')] });
        if (!ok) return;
        await del(rolesUrl + '/' + enc(r.user_id));
        showStatus(r.email + ' removed.');
        await load();
      }));
      return h('tr', { 'data-test': 'member-row', 'data-email': r.email },
        h('td', null, r.email), h('td', null, sel), h('td', null, timeEl(r.created_at)), h('td', null, remove));
    }), { 'data-test': 'members' }));
  }

  const email = h('input', { id: 'grant-email', type: 'email', required: true, autocomplete: 'off' });
  const level = levelSelect('grant-role', 'viewer');
  const form = h('form', { class: 'card', id: 'grant-form' }, h('h2', null, 'Grant a role'),
    h('div', { class: 'row' }, field('User email', email), field('Role', level)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'grant-submit' }, 'Grant')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guard(async () => {
      await post(rolesUrl, { email: email.value.trim(), role_level: level.value });
      showStatus(email.value.trim() + ' is now ' + level.value + '.');
      email.value = '';
      await load();
    });
  });
  append(main, [listEl, form]);
  await load();
}
