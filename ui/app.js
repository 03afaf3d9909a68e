// The console's entry point: the session, the navigation and the hash router.
//
// Routes are URL hashes (#/projects, #/p/ID/c/KEY, ...), so that every page has an address
// the browser's back button and bookmarks keep, and the server serves one static page. Each
// page module exports render(ctx); ctx.signal aborts when the user leaves the page, which
// stops the page's long polls and pending requests.

import { get, post, setCsrf, setUnauthorizedHook } from './api.js';
import { h, clear, showError, showStatus, clearStaleStatus, guard } from './dom.js';
import * as login from './page_login.js';
import * as projects from './page_projects.js';
import * as configs from './page_configs.js';
import * as config from './page_config.js';
import * as history from './page_history.js';
import * as members from './page_members.js';
import * as keys from './page_keys.js';
import * as audit from './page_audit.js';
import * as schemas from './page_schemas.js';
import * as cluster from './page_cluster.js';
import * as users from './page_users.js';

// [pattern, render, needs instance admin]
const ROUTES = [
  [/^\/projects$/, projects.render],
  [/^\/p\/([^/]+)$/, configs.render],
  [/^\/p\/([^/]+)\/new$/, config.renderNew],
  [/^\/p\/([^/]+)\/c\/([^/]+)$/, config.render],
  [/^\/p\/([^/]+)\/c\/([^/]+)\/history$/, history.render],
  [/^\/p\/([^/]+)\/members$/, members.render],
  [/^\/p\/([^/]+)\/keys$/, keys.render],
  [/^\/p\/([^/]+)\/audit$/, audit.render],
  [/^\/schemas$/, schemas.renderList],
  [/^\/schemas\/new$/, schemas.renderNew],
  [/^\/schemas\/([^/]+)$/, schemas.renderOne],
  [/^\/cluster$/, cluster.render, true],
  [/^\/users$/, users.render, true],
];

const session = { me: null };
let current = null; // the AbortController of the page on screen
let afterLogin = '#/projects';

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function setNav() {
  const me = session.me;
  document.getElementById('nav').hidden = !me;
  document.getElementById('nav-toggle').hidden = !me;
  document.getElementById('who').textContent = me ? me.email : '';
  // Cluster and users are instance-admin pages: others do not see the entries at all.
  document.getElementById('nav-cluster').hidden = !(me && me.is_admin);
  document.getElementById('nav-users').hidden = !(me && me.is_admin);
  const path = location.hash.replace(/^#/, '');
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href').replace(/^#/, '');
    const active = path === target || (target === '/projects' && path.startsWith('/p/')) ||
      (target !== '/projects' && path.startsWith(target + '/'));
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// Called by the login page once the cookie session exists.
export async function loggedIn(me) {
  session.me = me;
  setCsrf(me.csrf_token);
  setNav();
  const target = afterLogin;
  afterLogin = '#/projects';
  navigate(target);
}

async function logout() {
  await guard(async () => {
    await post('/v1/auth/logout', undefined, { quiet401: true }).catch((err) => {
      // An expired session is logged out already.
      if (err.status !== 401) throw err;
    });
    session.me = null;
    setCsrf(null);
    showStatus('Logged out.', { carry: true });
    navigate('#/login');
  });
}

function showLogin() {
  session.me = null;
  setCsrf(null);
  setNav();
  if (location.hash !== '#/login') {
    afterLogin = location.hash && location.hash !== '#/login' ? location.hash : '#/projects';
    location.hash = '#/login';
  } else {
    route();
  }
}

async function route() {
  if (current) current.abort();
  const ctl = new AbortController();
  current = ctl;
  const main = document.getElementById('main');
  clear(main);
  clearStaleStatus();
  document.getElementById('nav').classList.remove('open');
  document.getElementById('nav-toggle').setAttribute('aria-expanded', 'false');
  const path = location.hash.replace(/^#/, '') || '/projects';
  setNav();
  if (path === '/login') {
    if (session.me) return navigate('#/projects');
    return login.render({ main, signal: ctl.signal, loggedIn });
  }
  if (!session.me) return showLogin();
  for (const [re, render, adminOnly] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    if (adminOnly && !session.me.is_admin) {
      main.appendChild(h('p', { class: 'notice' }, 'This page is for instance admins.'));
      return undefined;
    }
    const params = m.slice(1).map((s) => decodeURIComponent(s));
    const ctx = { main, signal: ctl.signal, params, me: session.me, navigate };
    showError(null);
    await guard(() => render(ctx));
    main.focus({ preventScroll: true });
    return undefined;
  }
  main.appendChild(h('p', { class: 'notice' }, 'No such page. ', h('a', { href: '#/projects' }, 'Go to the projects.')));
  return undefined;
}

async function start() {
  document.getElementById('logout').addEventListener('click', logout);
  const toggle = document.getElementById('nav-toggle');
  toggle.addEventListener('click', () => {
    const nav = document.getElementById('nav');
    const open = !nav.classList.contains('open');
    nav.classList.toggle('open', open);
    toggle.setAttribute('aria-expanded', String(open));
  });
  // A 401 on any call means the session is gone (expired, logged out elsewhere).
  setUnauthorizedHook(() => {
    if (session.me) {
      showError('Your session has ended: log in again.');
      showLogin();
    }
  });
  window.addEventListener('hashchange', route);
  // A reload keeps the HttpOnly cookie but not the CSRF token: /v1/users/me gives it back.
  try {
    const me = await get('/v1/users/me', { quiet401: true });
    session.me = me;
    setCsrf(me.csrf_token);
  } catch (err) {
    if (err.status !== 401) showError(err);
    session.me = null;
  }
  setNav();
  if (!session.me && location.hash !== '#/login') return showLogin();
  return route();
}

start();
