// Users (instance admins): list and create.

import { get, post, qs } from './api.js';
import { h, append, field, table, timeEl, guard, showStatus } from './dom.js';

export async function render({ main, signal }) {
  const listEl = h('div', { id: 'user-list' });
  async function load() {
    const rows = [];
    let after = null;
    for (let i = 0; i < 20; i++) {
      const ans = await get('/v1/users' + qs({ limit: 500, after }), { signal });
      rows.push(...ans.items);
      after = ans.next_after;
      if (after === null || after === undefined) break;
    }
    listEl.replaceChildren(table(['Email', 'Instance admin', 'Created', 'Id'], rows.map((u) => h('tr', { 'data-test': 'user-row' },
      h('td', null, u.email), h('td', null, u.is_admin ? 'yes' : 'no'), h('td', null, timeEl(u.created_at)),
      h('td', null, h('code', null, u.id)))), { 'data-test': 'users' }));
  }
  const email = h('input', { id: 'user-email', type: 'email', required: true, autocomplete: 'off' });
  const password = h('input', { id: 'user-password', type: 'password', required: true, minlength: '10', autocomplete: 'new-password' });
  const admin = h('input', { id: 'user-admin', type: 'checkbox' });
  const form = h('form', { class: 'card', id: 'user-form' }, h('h2', null, 'New user'),
    h('div', { class: 'row' }, field('Email', email), field('Password (10 characters or more)', password)),
    h('div', { class: 'check' }, admin, h('label', { for: 'user-admin' }, 'Instance admin')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'user-submit' }, 'Create user')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guard(async () => {
      const u = await post('/v1/users', { email: email.value.trim(), password: password.value, is_admin: admin.checked });
      showStatus('User ' + u.email + ' created.');
      email.value = '';
      password.value = '';
      admin.checked = false;
      await load();
    });
  });
  append(main, [h('h1', null, 'Users'), listEl, form]);
  await load();
}
