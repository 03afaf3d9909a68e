// The JSON Schema catalog: list, create, view, edit (PUT), delete. A schema that does not
// compile is answered 422 invalid_schema whose message names the JSON Pointer of the fault:
// it is listed under the editor and selected in the text.

import { get, post, put, del, qs, paths } from './api.js';
import { h, append, field, table, timeEl, guard, showStatus, confirmDialog, pretty } from './dom.js';
import { jsonEditor, pointerOfMessage } from './editor.js';

export async function renderList({ main, signal }) {
  const listEl = h('div', { id: 'schema-list' });
  const more = h('button', { type: 'button', id: 'schemas-more', hidden: true }, 'More schemas');
  let after = null;
  const rows = [];
  async function load() {
    const ans = await get('/v1/schemas' + qs({ limit: 100, after }), { signal });
    rows.push(...ans.items.map((s) => h('tr', { 'data-test': 'schema-row', 'data-schema-id': s.id },
      h('td', null, h('a', { href: '#/schemas/' + encodeURIComponent(s.id), 'data-test': 'schema-link' }, s.name)),
      h('td', null, h('code', null, s.id)),
      h('td', null, h('code', { title: s.schema_hash || '' }, (s.schema_hash || '').slice(0, 12))),
      h('td', null, timeEl(s.updated_at)))));
    after = ans.next_after;
    more.hidden = after === null || after === undefined;
    listEl.replaceChildren(rows.length ? table(['Name', 'Id', 'Hash', 'Updated'], rows, { 'data-test': 'schemas' })
      : h('p', { class: 'muted' }, 'No schemas yet.'));
  }
  more.addEventListener('click', () => guard(load));
  append(main, [h('h1', null, 'JSON Schemas'),
    h('p', { class: 'muted' }, 'An instance-wide catalog: every logged-in user can read a schema and bind configs to it, so a schema must hold no secret.'),
    h('div', { class: 'toolbar' }, h('a', { class: 'button primary', href: '#/schemas/new', id: 'new-schema' }, 'New schema')),
    listEl, more]);
  await load();
}

// The form shared by "new" and "edit": name, schema editor and the two options of
// docs/jsonschema.md: format_assertion (stored with the schema) and strict (a check of this
// upload only, so it starts unticked every time); save(body) does the request.
function schemaForm({ id, name = '', text, formatAssertion = false, editable, saveLabel, save }) {
  const nameIn = h('input', { id: id + '-name', required: true, maxlength: '200', value: name, readOnly: !editable, autocomplete: 'off' });
  const submit = h('button', { type: 'submit', class: 'primary', id: id + '-save', hidden: !editable }, saveLabel);
  const editor = jsonEditor({ id: id + '-content', label: 'Schema (JSON)', text, readOnly: !editable,
    onValidity: (ok) => { submit.disabled = !ok; } });
  const assertIn = h('input', { id: id + '-format-assertion', type: 'checkbox', checked: formatAssertion, disabled: !editable });
  const strictIn = h('input', { id: id + '-strict', type: 'checkbox', disabled: !editable });
  const options = h('fieldset', { class: 'options' }, h('legend', null, 'Options'),
    h('div', { class: 'check' }, assertIn, h('label', { for: assertIn.id },
      'Assert "format": refuse writes whose strings do not match their format (otherwise an annotation)')),
    editable ? h('div', { class: 'check' }, strictIn, h('label', { for: strictIn.id },
      'Strict: refuse keywords this draft does not know (otherwise ignored)')) : null);
  const form = h('form', { class: 'card', id }, field('Name', nameIn), editor.el, options, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guard(async () => {
      editor.clearErrors();
      try {
        const body = { name: nameIn.value.trim(), schema_content: editor.value(), format_assertion: assertIn.checked };
        if (strictIn.checked) body.strict = true;
        await save(body);
      } catch (err) {
        // A compile error (422 invalid_schema, or a 400 naming the field): at its pointer.
        const ptr = err.status === 422 || err.status === 400 ? pointerOfMessage(err.body, err.message) : null;
        if (ptr !== null && err.body.field !== 'name') {
          editor.showErrors([{ path: ptr, message: err.message }], 'The schema does not compile:');
          editor.select(ptr);
        }
        throw err;
      }
    });
  });
  return { form, editor };
}

export async function renderNew({ main, navigate }) {
  const { form } = schemaForm({ id: 'schema-form', text: pretty({ type: 'object', properties: {}, required: [] }),
    editable: true, saveLabel: 'Create schema',
    save: async (body) => {
      const s = await post('/v1/schemas', body);
      showStatus('Schema ' + s.name + ' created.', { carry: true });
      navigate('#/schemas/' + encodeURIComponent(s.id));
    } });
  append(main, [h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/schemas' }, 'Schemas'), ' / new'),
    h('h1', null, 'New schema'), form]);
}

export async function renderOne({ main, signal, params, me, navigate }) {
  const [id] = params;
  const s = await get(paths.schema(id), { signal });
  // Only the schema's creator or an instance admin may change it.
  const editable = me.is_admin || s.created_by_user_id === me.id;
  const meta = h('dl', { class: 'meta' },
    h('dt', null, 'Id'), h('dd', null, h('code', null, s.id)),
    h('dt', null, 'Hash'), h('dd', null, h('code', { 'data-test': 'schema-hash' }, s.schema_hash)),
    h('dt', null, 'Updated'), h('dd', null, timeEl(s.updated_at)));
  const { form } = schemaForm({ id: 'schema-form', name: s.name, text: pretty(s.schema_content),
    formatAssertion: s.format_assertion === true, editable,
    saveLabel: 'Save schema',
    save: async (body) => {
      const n = await put(paths.schema(id), body);
      meta.querySelector('[data-test="schema-hash"]').textContent = n.schema_hash;
      showStatus('Schema saved; configs written from now on are validated against it.');
    } });
  const remove = editable ? h('button', { type: 'button', class: 'danger', id: 'schema-delete', onclick: () => guard(async () => {
    const ok = await confirmDialog({ title: 'Delete schema ' + s.name + '?', danger: true, confirm: 'Delete schema',
      body: [h('p', null, 'A schema still bound to a config cannot be deleted.')] });
    if (!ok) return;
    await del(paths.schema(id));
    showStatus('Schema deleted.', { carry: true });
    navigate('#/schemas');
  }) }, 'Delete') : null;
  append(main, [h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/schemas' }, 'Schemas'), ' / ', s.name),
    h('h1', null, 'Schema ', h('span', { 'data-test': 'schema-name' }, s.name)), meta,
    editable ? null : h('p', { class: 'muted' }, 'Only its creator or an instance admin can change this schema.'),
    form, h('div', { class: 'toolbar' }, remove)]);
}
