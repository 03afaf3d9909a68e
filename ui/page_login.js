// The login form: POST /v1/auth/login with "session": "cookie", so that the node sets the
// HttpOnly session cookie and answers only the CSRF token to the page.

import { get, post, setCsrf } from './api.js';
import { h, field, showError } from './dom.js';

export function render({ main, loggedIn }) {
  const email = h('input', { id: 'login-email', type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { id: 'login-submit', type: 'submit', class: 'primary' }, 'Log in');
  const form = h('form', { class: 'card narrow', id: 'login-form', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Log in to conclave'),
    field('Email', email),
    field('Password', password),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    showError(null);
    try {
      const ans = await post('/v1/auth/login',
        { email: email.value.trim(), password: password.value, session: 'cookie' }, { quiet401: true });
      setCsrf(ans.csrf_token);
      // is_admin (for the navigation) comes from /v1/users/me; its csrf_token is the same.
      const me = await get('/v1/users/me', { quiet401: true });
      if (!me.csrf_token) me.csrf_token = ans.csrf_token;
      password.value = '';
      await loggedIn(me);
    } catch (err) {
      // 401: wrong email or password; 429: locked after failed logins (Retry-After is in
      // the message); either way the server's message says what to do.
      showError(err.status === 401 ? 'Wrong email or password.' : err);
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  main.appendChild(form);
  email.focus();
}
