// One config: view it, edit it (compare-and-swap on its version), resolve a conflict, follow
// changes made elsewhere, delete it; and the form that creates a new one.

import { get, post, put, del, qs, paths } from './api.js';
import { h, append, field, timeEl, actorEl, guard, showError, showStatus, confirmDialog, pretty } from './dom.js';
import { loadProject, projectHeader, canWrite } from './project_nav.js';
import { jsonEditor } from './editor.js';
import { renderDiff } from './diff.js';
import { startWatch, headRevision } from './watch.js';

const KEY_RE = /^[A-Za-z0-9_][A-Za-z0-9._:-]{0,255}$/;

// A <select> of the schema catalog (first 200), "(none)" first. value "" means none.
async function schemaSelect(id, current, signal) {
  const sel = h('select', { id });
  sel.appendChild(h('option', { value: '' }, '(no schema)'));
  const ans = await get('/v1/schemas' + qs({ limit: 200 }), { signal });
  let seen = false;
  for (const s of ans.items) {
    sel.appendChild(h('option', { value: s.id, selected: s.id === current }, s.name + ' (' + s.id.slice(0, 8) + ')'));
    if (s.id === current) seen = true;
  }
  if (current && !seen) sel.appendChild(h('option', { value: current, selected: true }, current));
  sel.value = current || '';
  return sel;
}

// Shows a 422 schema violation at its pointers; true when err was one.
function showViolation(editor, err) {
  if (err.status !== 422 || !Array.isArray(err.body.errors)) return false;
  editor.showErrors(err.body.errors, 'The content does not match the schema:');
  showError(err);
  const first = err.body.errors[0];
  if (first) editor.select(typeof first.path === 'string' ? first.path : '');
  return true;
}

export async function render({ main, signal, params, navigate }) {
  const [pid, key] = params;
  const project = await loadProject(pid, signal);
  const writer = canWrite(project.role);
  const url = paths.config(pid, key);
  let cfg = null; // the version on screen

  const meta = h('dl', { class: 'meta', 'data-test': 'config-meta' });
  const liveState = h('span', { class: 'live', 'data-test': 'live-state' });
  const notice = h('div', { class: 'notice', id: 'live-notice', 'data-test': 'live-notice', hidden: true });
  const conflictBox = h('section', { class: 'card conflict', id: 'conflict', 'data-test': 'conflict', hidden: true,
    'aria-labelledby': 'conflict-title' });
  const viewer = h('pre', { class: 'json', id: 'config-content', 'data-test': 'config-content', tabindex: '0' });
  const save = h('button', { type: 'button', class: 'primary', id: 'config-save', 'data-test': 'save' }, 'Save');
  const editor = writer ? jsonEditor({ id: 'config-editor', onValidity: (ok) => { save.disabled = !ok; } }) : null;
  const schemaSel = writer ? await schemaSelect('config-schema', null, signal) : null;

  function showMeta() {
    const schema = cfg.schema_id
      ? h('a', { href: '#/schemas/' + encodeURIComponent(cfg.schema_id), 'data-test': 'config-schema-id' }, cfg.schema_id)
      : h('span', { class: 'muted' }, 'none');
    meta.replaceChildren(
      h('dt', null, 'Version'), h('dd', { id: 'config-version', 'data-test': 'config-version' }, String(cfg.version)),
      h('dt', null, 'Schema'), h('dd', null, schema),
      h('dt', null, 'Updated'), h('dd', null, timeEl(cfg.updated_at)),
      h('dt', null, 'By'), h('dd', null, actorEl(cfg.updated_by)),
      h('dt', null, 'Revision'), h('dd', null, String(cfg.revision)));
  }

  async function load() {
    cfg = await get(url, { signal });
    showMeta();
    notice.hidden = true;
    if (editor) {
      editor.setText(pretty(cfg.content));
      editor.clearErrors();
      schemaSel.value = cfg.schema_id || '';
    } else {
      viewer.textContent = pretty(cfg.content);
    }
  }

  // The write in flight, if any: a watch answer about our own write can arrive before the
  // PUT's answer, and must then not pass for a change made elsewhere.
  let inflight = null;

  // PUT the editor's content expecting `expected`; a 409 opens the conflict panel.
  function write(expected) {
    inflight = doWrite(expected).finally(() => { inflight = null; });
    return inflight;
  }

  async function doWrite(expected) {
    if (!editor.valid()) throw new Error('The content is not valid JSON: fix it before saving.');
    const body = { content: editor.value(), expected_version: expected };
    const sel = schemaSel.value || null;
    if (sel !== (cfg.schema_id || null)) body.schema_id = sel;
    save.disabled = true;
    try {
      const ans = await put(url, body);
      conflictBox.hidden = true;
      editor.markClean();
      await load();
      showStatus('Saved version ' + ans.version + '.');
    } catch (err) {
      if (err.status === 409 && typeof err.body.current_version === 'number') await conflict(err.body.current_version);
      else if (!showViolation(editor, err)) throw err;
    } finally {
      save.disabled = !editor.valid();
    }
  }

  // Someone else wrote version n since this page loaded: show theirs against ours.
  async function conflict(n) {
    showError(null);
    let theirs = null;
    try {
      theirs = await get(url, { signal });
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    // Theirs may be newer still than the version the 409 named: show, and build on, the one
    // fetched.
    if (theirs) n = theirs.version;
    const mine = editor.text();
    const theirText = theirs ? pretty(theirs.content) : '';
    const apply = h('button', { type: 'button', class: 'primary', id: 'conflict-apply', 'data-test': 'conflict-apply' },
      'Apply mine on top of version ' + n);
    const discard = h('button', { type: 'button', id: 'conflict-discard', 'data-test': 'conflict-discard' }, 'Discard mine');
    apply.addEventListener('click', () => guard(() => write(n)));
    discard.addEventListener('click', () => guard(async () => {
      conflictBox.hidden = true;
      editor.markClean();
      await load();
      showStatus('Your edit was discarded; showing version ' + cfg.version + '.');
    }));
    conflictBox.replaceChildren(
      h('h2', { id: 'conflict-title' }, 'Conflict: version ' + n + ' was written by someone else'),
      h('p', { 'data-test': 'conflict-text' }, `You edited version ${cfg.version}, but ${theirs
        ? `version ${n} was written meanwhile (by ${theirs.updated_by || 'someone'}, ${new Date(theirs.updated_at).toLocaleString()})`
        : `the config was deleted meanwhile (version ${n})`}. Nothing of yours was saved. Their version against yours:`),
      renderDiff(theirText, mine, { oldLabel: 'version ' + n + ' (theirs)', newLabel: 'yours' }),
      h('div', { class: 'actions' }, discard, apply));
    conflictBox.hidden = false;
    apply.focus();
  }

  // A change from the watch: reload when the user has no edit in progress, else say so.
  async function changed(changes) {
    if (inflight) await inflight.catch(() => {});
    const mineKey = changes.filter((c) => c.key === key);
    const last = mineKey[mineKey.length - 1];
    if (!last || (cfg && last.version <= cfg.version)) return;
    if (editor && editor.dirty()) {
      notice.replaceChildren(
        h('span', { 'data-test': 'live-notice-text' }, last.op === 'delete'
          ? `This config was deleted elsewhere (version ${last.version}).`
          : `Version ${last.version} was written elsewhere while you were editing.`),
        ' ',
        h('button', { type: 'button', id: 'live-load', onclick: () => guard(async () => { editor.markClean(); await load(); }) },
          'Load it (discards your edit)'));
      notice.hidden = false;
      return;
    }
    if (last.op === 'delete') {
      notice.replaceChildren(h('span', null, `This config was deleted elsewhere (version ${last.version}).`));
      notice.hidden = false;
      return;
    }
    await load();
    showStatus('Version ' + cfg.version + ' arrived.');
  }

  const base = '#/p/' + encodeURIComponent(pid);
  const tools = h('div', { class: 'toolbar' },
    h('a', { class: 'button', href: base + '/c/' + encodeURIComponent(key) + '/history', id: 'config-history' }, 'History'),
    writer ? h('button', { type: 'button', class: 'danger', id: 'config-delete', 'data-test': 'delete',
      onclick: () => guard(async () => {
        const ok = await confirmDialog({ title: 'Delete ' + key + '?', danger: true, confirm: 'Delete config',
          body: [h('p', null, `Version ${cfg.version} stays in the history; the key can be written again later.`)] });
        if (!ok) return;
        await del(url + qs({ expected_version: cfg.version }));
        showStatus(key + ' deleted.', { carry: true });
        navigate(base);
      }) }, 'Delete') : null,
    liveState);
  append(main, [projectHeader(project, 'configs', [h('span', { 'data-test': 'crumb-key' }, key)]),
    h('h2', { class: 'key', 'data-test': 'config-key' }, key), tools, meta, notice, conflictBox]);
  if (editor) {
    save.addEventListener('click', () => guard(() => write(cfg.version)));
    append(main, [field('Schema binding', schemaSel), editor.el, h('div', { class: 'actions' }, save)]);
  } else {
    append(main, [h('h3', null, 'Content'), viewer]);
  }
  const from = await headRevision(pid, signal);
  await load();
  startWatch({ project: pid, key, from, signal, onChanges: changed,
    onState: (s) => { liveState.textContent = s === 'live' ? '● live' : s; } });
}

// The form for a new config (editors and admins).
export async function renderNew({ main, signal, params, navigate }) {
  const [pid] = params;
  const project = await loadProject(pid, signal);
  append(main, [projectHeader(project, 'configs', [h('span', null, 'new config')])]);
  if (!canWrite(project.role)) {
    append(main, [h('p', { class: 'notice' }, 'Your role (' + project.role + ') cannot create configs.')]);
    return;
  }
  const key = h('input', { id: 'new-config-key', required: true, autocomplete: 'off' });
  const create = h('button', { type: 'submit', class: 'primary', id: 'new-config-submit' }, 'Create');
  const editor = jsonEditor({ id: 'new-config-editor', text: '{\n  \n}', onValidity: (ok) => { create.disabled = !ok; } });
  const schemaSel = await schemaSelect('new-config-schema', null, signal);
  const form = h('form', { class: 'card', id: 'new-config' },
    field('Key', key, 'Letters, digits and . _ : - (not first: . : -), up to 256 characters.'),
    field('Schema binding', schemaSel), editor.el, h('div', { class: 'actions' }, create));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guard(async () => {
      if (!KEY_RE.test(key.value)) throw new Error('The key must be 1 to 256 of A-Z a-z 0-9 . _ : - and not start with . : or -.');
      const body = { key: key.value, content: editor.value() };
      if (schemaSel.value) body.schema_id = schemaSel.value;
      try {
        await post(paths.configs(pid), body);
      } catch (err) {
        if (showViolation(editor, err)) return;
        if (err.status === 409) {
          throw new Error(`${key.value} exists already (version ${err.body.current_version}): open it to edit it.`);
        }
        throw err;
      }
      showStatus(key.value + ' created.', { carry: true });
      navigate('#/p/' + encodeURIComponent(pid) + '/c/' + encodeURIComponent(key.value));
    });
  });
  append(main, [form]);
  key.focus();
}
