// The fetch wrapper: every call to the node's HTTP API goes through request() below.
//
// The session lives in an HttpOnly cookie the browser sends by itself (same origin); the page
// never sees the session token. Every non-GET request carries the CSRF token the login (or
// GET /v1/users/me) answered, kept only in this module's variable: not in localStorage, so a
// script on another page of the origin cannot read it back later.

let csrfToken = null;
let onUnauthorized = null;

export function setCsrf(token) {
  csrfToken = typeof token === 'string' && token !== '' ? token : null;
}

// hook() runs when a call that needs a session is answered 401 (the session expired or was
// revoked elsewhere): the app shows the login form.
export function setUnauthorizedHook(hook) {
  onUnauthorized = hook;
}

// An error answer of the API ({"error": CODE, "message": TEXT, ...}) or a network failure
// (status 0). body keeps the extra fields (current_version, errors, field, ...).
export class ApiError extends Error {
  constructor(status, code, message, body, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body || {};
    this.retryAfter = retryAfter;
  }
}

// The error's code and message, whichever of the two shapes the server used:
// {"error": "conflict", "message": "..."} (docs/api.md) or {"error": {"code", "message"}}.
function errorOf(status, data, text) {
  if (data && typeof data === 'object') {
    const e = data.error;
    if (e && typeof e === 'object') {
      return { code: String(e.code || 'error'), message: String(e.message || ''), extra: { ...data, ...e } };
    }
    if (typeof e === 'string') {
      return { code: e, message: String(data.message || ''), extra: data };
    }
  }
  return { code: 'http_' + status, message: (text || '').slice(0, 300), extra: {} };
}

export function isAbort(err) {
  return err && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

// request(method, path, {body, signal, quiet401}) → the parsed JSON answer (null for 204).
// Throws ApiError for any non-2xx answer, or the AbortError when signal aborted it.
export async function request(method, path, opts = {}) {
  const headers = { Accept: 'application/json' };
  let payload;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(opts.body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) {
    headers['X-CSRF-Token'] = csrfToken;
  }
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: payload,
      signal: opts.signal,
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch (err) {
    if (isAbort(err)) throw err;
    throw new ApiError(0, 'network', 'the node did not answer (' + err.message + '); is it running?', {});
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = null;
    }
  }
  if (res.ok) return data;
  const e = errorOf(res.status, data, text);
  let message = e.message || res.statusText || 'request failed';
  const retryAfter = res.headers.get('Retry-After');
  if (res.status === 429 && retryAfter) {
    message += ' (try again in ' + retryAfter + ' s)';
  }
  const err = new ApiError(res.status, e.code, message, e.extra, retryAfter);
  if (res.status === 401 && !opts.quiet401 && onUnauthorized) onUnauthorized(err);
  throw err;
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts = {}) => request('POST', path, { ...opts, body });
export const put = (path, body, opts = {}) => request('PUT', path, { ...opts, body });
export const del = (path, opts) => request('DELETE', path, opts);

export const enc = encodeURIComponent;

// qs({a: 1, b: null}) → "?a=1": parameters that are null, undefined or "" are left out.
export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') continue;
    parts.push(enc(k) + '=' + enc(String(v)));
  }
  return parts.length ? '?' + parts.join('&') : '';
}

// Paths used by several pages, so that a URL is spelled in one place.
export const paths = {
  project: (p) => '/v1/projects/' + enc(p),
  configs: (p) => '/v1/projects/' + enc(p) + '/configs',
  config: (p, k) => '/v1/projects/' + enc(p) + '/configs/' + enc(k),
  schema: (id) => '/v1/schemas/' + enc(id),
};
