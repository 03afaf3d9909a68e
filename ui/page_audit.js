// A project's audit: verify its hash chain (GET .../audit/verify) and export its revisions
// as a JSON-lines file (pages of GET .../revisions, joined into a Blob the browser downloads).

import { get, qs, paths } from './api.js';
import { h, append, table, guard, showStatus } from './dom.js';
import { loadProject, projectHeader } from './project_nav.js';

const EXPORT_PAGE = 1000;
const EXPORT_MAX_PAGES = 5000; // 5 million revisions: beyond that use `conclave audit export`

export async function render({ main, signal, params }) {
  const [pid] = params;
  const project = await loadProject(pid, signal);
  const result = h('div', { id: 'audit-result', 'aria-live': 'polite' });
  const verify = h('button', { type: 'button', class: 'primary', id: 'audit-verify' }, 'Verify the history');
  const exportBtn = h('button', { type: 'button', id: 'audit-export' }, 'Export revisions (JSON lines)');
  const progress = h('span', { class: 'muted', id: 'audit-progress' });

  verify.addEventListener('click', () => guard(async () => {
    verify.disabled = true;
    result.replaceChildren(h('p', { class: 'muted' }, 'Verifying…'));
    try {
      const v = await get(paths.project(pid) + '/audit/verify', { signal });
      result.replaceChildren(...verdict(v));
    } finally {
      verify.disabled = false;
    }
  }));

  exportBtn.addEventListener('click', () => guard(async () => {
    exportBtn.disabled = true;
    try {
      const lines = [];
      let after = null;
      let done = false;
      for (let i = 0; i < EXPORT_MAX_PAGES && !done; i++) {
        const ans = await get(paths.project(pid) + '/revisions' + qs({ after_revision: after, limit: EXPORT_PAGE }), { signal });
        for (const r of ans.items) lines.push(JSON.stringify(r) + '\n');
        after = ans.next_after_revision;
        done = after === null || after === undefined;
        progress.textContent = ` ${lines.length} of ${ans.revisions} revisions…`;
      }
      if (!done) throw new Error('the export stopped after ' + lines.length + ' revisions: use `conclave audit export` for more');
      download(new Blob(lines, { type: 'application/x-ndjson' }), `conclave-${pid}-revisions.jsonl`);
      progress.textContent = ` ${lines.length} revisions exported.`;
      showStatus('Exported ' + lines.length + ' revisions.');
    } finally {
      exportBtn.disabled = false;
    }
  }));

  append(main, [projectHeader(project, 'audit'),
    h('p', null, 'Verification recomputes every revision\'s hash and chain, checks versions and the ',
      'configs against the revisions, and that PostgreSQL holds what the cluster committed.'),
    h('div', { class: 'toolbar' }, verify, exportBtn, progress), result]);
}

// The verify answer as elements: "clean" with the counts, or the list of problems.
function verdict(v) {
  const counts = h('p', { 'data-test': 'audit-counts' },
    `${v.revisions_checked} revisions and ${v.keys_checked} keys checked`,
    v.chain_head ? '; chain head ' : '', v.chain_head ? h('code', { title: String(v.chain_head) }, String(v.chain_head).slice(0, 16) + '…') : '', '.');
  if (v.ok) {
    return [h('p', { class: 'ok', id: 'audit-clean', 'data-test': 'audit-clean' }, '✔ Clean: no problem found.'), counts];
  }
  const rows = (v.problems || []).map((p) => [String(p.revision ?? ''), p.key || '', p.problem || '']);
  return [h('p', { class: 'bad', id: 'audit-problems', 'data-test': 'audit-problems' },
    `✘ ${v.problems_total} problem${v.problems_total === 1 ? '' : 's'} found` +
    (rows.length < v.problems_total ? ` (the first ${rows.length} below)` : '') + '.'),
  counts, table(['Revision', 'Key', 'Problem'], rows)];
}

// Saves blob as a file through a temporary object URL.
function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
