// What every page of one project shares: loading the project (with the caller's role), the
// breadcrumb and the tabs, and the role checks that decide which controls are shown.
//
// The controls a role may not use are not rendered at all (a viewer sees no Save, Delete,
// Rollback or New button); the API refuses such requests anyway.

import { get, paths } from './api.js';
import { h } from './dom.js';

export const canWrite = (role) => role === 'editor' || role === 'admin';
export const canAdmin = (role) => role === 'admin';

export async function loadProject(id, signal) {
  return get(paths.project(id), { signal });
}

// header(project, active, extra) → the project's title, role badge and tabs.
export function projectHeader(project, active, crumbs = []) {
  const base = '#/p/' + encodeURIComponent(project.id);
  const tabs = [['configs', 'Configs', base]];
  if (canAdmin(project.role)) {
    tabs.push(['members', 'Members', base + '/members']);
    tabs.push(['keys', 'API keys', base + '/keys']);
  }
  tabs.push(['audit', 'Audit', base + '/audit']);
  return h('div', { class: 'page-head' },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: '#/projects' }, 'Projects'), ' / ',
      h('a', { href: base, 'data-test': 'crumb-project' }, project.id),
      crumbs.map((c) => [' / ', c])),
    h('h1', null, h('span', { 'data-test': 'project-name' }, project.name || project.id), ' ',
      roleBadge(project.role)),
    h('nav', { class: 'tabs', 'aria-label': 'Project sections' },
      tabs.map(([id, text, href]) => h('a', { href, 'data-test': 'tab-' + id,
        'aria-current': id === active ? 'page' : null }, text))));
}

export function roleBadge(role) {
  return h('span', { class: 'badge role-' + role, 'data-test': 'role' }, role || '?');
}
