// Live updates: the project watch long poll (GET /v1/projects/{id}/watch, docs/api.md).
//
// startWatch() reads the project's head revision first, so that a change written after it
// is not missed, then polls from there, passing next_after_revision back each time. It stops
// when the page's AbortSignal fires (the user left the page). On errors it backs off from 1 s
// to 30 s and keeps going; a session that expired (401) ends it, since polling cannot fix it.

import { get, qs, paths, isAbort } from './api.js';

const POLL_TIMEOUT_S = 25; // below the node's 30 s default and any proxy's idle cut
const MAX_POLLS = 20000; // a bound on one page's polls: ~6 days of 25 s timeouts
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

// The project's head revision (0 for a project without revisions).
export async function headRevision(project, signal) {
  const head = await get(paths.project(project) + '/head', { signal });
  return head && typeof head.revision === 'number' ? head.revision : 0;
}

// startWatch({project, key?, prefix?, from?, signal, onChanges, onState}) → Promise that
// ends when the watch stops. onChanges(changes) gets each non-empty answer's revisions;
// onState(text) a short status ("live", "reconnecting in 4 s", ...).
export async function startWatch({ project, key, prefix, from, signal, onChanges, onState = () => {} }) {
  let after = from;
  let backoff = BACKOFF_MIN_MS;
  for (let polls = 0; polls < MAX_POLLS && !signal.aborted; polls++) {
    try {
      if (after === undefined || after === null) after = await headRevision(project, signal);
      const url = paths.project(project) + '/watch' +
        qs({ after_revision: after, timeout: POLL_TIMEOUT_S, key, prefix });
      onState('live');
      const ans = await get(url, { signal });
      backoff = BACKOFF_MIN_MS;
      if (ans && typeof ans.next_after_revision === 'number') after = ans.next_after_revision;
      if (ans && Array.isArray(ans.changes) && ans.changes.length > 0 && !signal.aborted) {
        await onChanges(ans.changes);
      }
    } catch (err) {
      if (isAbort(err) || signal.aborted) return;
      if (err.status === 401 || err.status === 403 || err.status === 404) {
        onState('stopped: ' + err.message);
        return;
      }
      onState(`reconnecting in ${Math.round(backoff / 1000)} s (${err.message})`);
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    }
  }
  if (!signal.aborted) onState('stopped: reload the page to follow changes again');
}
