// The cluster (instance admins): this node's raft view from GET /v1/cluster?health=true
// (members, roles, leader, term, indexes, and each member's own /health, which this node asks
// for: the page itself may only talk to its own origin), and a leadership transfer.

import { get, post } from './api.js';
import { h, append, field, table, guard, showError, showStatus, confirmDialog } from './dom.js';

export async function render({ main, signal }) {
  const body = h('div', { id: 'cluster-body' });
  const refresh = h('button', { type: 'button', id: 'cluster-refresh' }, 'Refresh');

  async function load() {
    const [c, health] = await Promise.all([
      get('/v1/cluster?health=true', { signal }),
      get('/health', { signal }).catch((err) => ({ status: 'error: ' + err.message })),
    ]);
    const leaderId = c.leader ? c.leader.id : null;
    const facts = h('dl', { class: 'meta', 'data-test': 'cluster-facts' },
      h('dt', null, 'This node'), h('dd', { 'data-test': 'cluster-node' }, String(c.node_id) + ' (' + c.state + (c.ready ? ', ready' : ', not ready') + ')'),
      h('dt', null, 'Leader'), h('dd', { id: 'cluster-leader', 'data-test': 'cluster-leader' },
        c.leader ? 'node ' + c.leader.id + ' at ' + c.leader.address : 'none (an election is running?)'),
      h('dt', null, 'Term'), h('dd', { 'data-test': 'cluster-term' }, String(c.term)),
      h('dt', null, 'Commit index'), h('dd', null, String(c.commit_index)),
      h('dt', null, 'Applied index'), h('dd', null, String(c.applied_index)),
      h('dt', null, 'Last index'), h('dd', null, String(c.last_index)),
      h('dt', null, 'State hash'), h('dd', null, h('code', { title: c.state_hash || '' }, (c.state_hash || '').slice(0, 16) + '…')),
      h('dt', null, 'Health of this node'), h('dd', { 'data-test': 'cluster-health' }, healthText(health)));
    const target = h('select', { id: 'transfer-target' },
      h('option', { value: '' }, 'the most up-to-date voter'),
      (c.members || []).filter((m) => m.id !== leaderId).map((m) => h('option', { value: String(m.id) }, 'node ' + m.id)));
    const transfer = h('button', { type: 'button', class: 'danger', id: 'cluster-transfer' }, 'Transfer leadership');
    transfer.addEventListener('click', () => guard(async () => {
      const to = target.value ? Number(target.value) : null;
      const ok = await confirmDialog({ title: 'Transfer leadership?', confirm: 'Transfer',
        body: [h('p', null, `Node ${leaderId} hands leadership to ${to ? 'node ' + to : 'the most up-to-date voter'}. `
          + 'Writes pause for a moment (about an election timeout).')] });
      if (!ok) return;
      try {
        await post('/v1/cluster/transfer', to ? { id: to } : {});
        showStatus('Leadership transferred.');
      } catch (err) {
        // Transfers run on the leader; this page talks to this node only (connect-src 'self').
        if (err.code === 'not_leader') {
          showError(`This node is not the leader: open the console on node ${err.body.leader_id ?? leaderId} to transfer.`);
          return;
        }
        throw err;
      }
      await load();
    }));
    body.replaceChildren(facts,
      h('h2', null, 'Members'),
      table(['Node', 'Raft address', 'Role', 'Leader', 'Health'], (c.members || []).map((m) => h('tr', { 'data-test': 'cluster-member', 'data-node': String(m.id) },
        h('td', null, String(m.id)), h('td', null, m.address || ''), h('td', null, m.role || ''),
        h('td', null, m.leader ? h('span', { class: 'badge role-admin', 'data-test': 'is-leader' }, 'leader') : ''),
        h('td', { 'data-test': 'member-health' }, memberHealth(m.health)))), { 'data-test': 'cluster-members' }),
      h('h2', null, 'Leadership'),
      h('div', { class: 'row' }, field('Hand leadership to', target), h('div', { class: 'actions' }, transfer)));
  }
  refresh.addEventListener('click', () => guard(load));
  append(main, [h('h1', null, 'Cluster'), h('div', { class: 'toolbar' }, refresh), body]);
  await load();
}

function healthText(hl) {
  if (!hl || !hl.raft) return String((hl && hl.status) || 'unknown');
  const r = hl.raft;
  return `${hl.status}: ${r.state}${r.ready ? ' (ready)' : ''}, term ${r.term}, leader ${r.leader_id}, commit ${r.commit_index}, applied ${r.applied_index}`;
}

// One member's health as this node saw it: its own raft state and indexes, or why it could not
// be asked (refused, timed out, no known address).
function memberHealth(hl) {
  if (!hl) return 'not asked';
  if (!hl.reachable) return h('span', { class: 'bad', 'data-test': 'unreachable' }, 'unreachable: ' + (hl.error || 'no answer'));
  return `${hl.state}${hl.ready ? ' (ready)' : ''}, term ${hl.term}, applied ${hl.applied_index}`;
}
