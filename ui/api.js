// The console's only way to the relay: the documented admin API, authenticated by the
// HttpOnly session cookie (sent by the browser) plus the CSRF token on every POST.
let csrf = '';

/** An admin API refusal: {error, message} with its status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

function toLogin() {
  location.href = '/ui/login';
  return new ApiError(401, 'unauthorized', 'log in again');
}

async function check(r) {
  if (r.status === 401) throw toLogin();
  if (r.ok) return r;
  let body = {};
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  throw new ApiError(r.status, body.error || 'error', body.message || r.statusText);
}

/** Loads the session's CSRF token; sends the browser to the login page without one. */
export async function init() {
  const r = await check(await fetch('/ui/session', { cache: 'no-store' }));
  csrf = (await r.json()).csrf;
}

/** GET a JSON document. */
export async function get(path) {
  return (await check(await fetch(path, { cache: 'no-store' }))).json();
}

/** GET raw bytes (an event body), exactly as stored. */
export async function bytes(path) {
  const r = await check(await fetch(path, { cache: 'no-store' }));
  return new Uint8Array(await r.arrayBuffer());
}

/** POST JSON (or nothing) with the CSRF token. */
export async function post(path, body) {
  const init = { method: 'POST', headers: { 'X-CSRF-Token': csrf } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return (await check(await fetch(path, init))).json();
}

/** Ends the session and shows the login page. */
export async function logout() {
  try { await post('/ui/logout'); } finally { location.href = '/ui/login'; }
}

/** Path of a channel's admin routes. */
export function chan(c, rest = '') {
  return `/v1/channels/${encodeURIComponent(c)}${rest}`;
}
