// The one HTTP client of both apps: JSON in and out, the session cookie, the CSRF header on every
// request (the server wants it on reads too, cookies ride along on cross-site links), and errors turned into ApiError with the server's {error, status, code} kept.

let csrfToken = null;

/** Remember the CSRF token the server gave with login or /api/v3/me. */
export function setCsrf(token) { csrfToken = token || null; }
export function getCsrf() { return csrfToken; }

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.error || body.message)) || `Request failed (${status})`);
    this.status = status;
    this.code = body && body.code;
    this.body = body;
  }
}


/**
 * request('GET', '/api/v3/me') → parsed JSON (or null for 204).
 * opts: {body (object → JSON, FormData/Blob as is), token (Bearer instead of the cookie), anonymous,
 *        params (query object; objects JSON-encoded), signal, raw (return the Response)}
 */
export async function request(method, path, opts = {}) {
  const headers = { Accept: 'application/json' };
  let body = opts.body;
  if (body !== undefined && !(body instanceof FormData) && !(body instanceof Blob)) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(body);
  }
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (csrfToken && !opts.token && !opts.anonymous) headers['X-CSRF-Token'] = csrfToken;
  const url = withParams(path, opts.params);
  const res = await fetch(url, {
    method, headers, body, signal: opts.signal,
    credentials: opts.anonymous || opts.token ? 'omit' : 'same-origin',
  });
  if (opts.raw) return res;
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: text.slice(0, 200) }; }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export function withParams(path, params) {
  if (!params) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    q.set(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  const s = q.toString();
  return s ? path + (path.includes('?') ? '&' : '?') + s : path;
}

/** Absolute URLs from the server (TileJSON, tiles) are used by path+query on this origin. Plain
 * string surgery, not URL(): that would percent-encode a template's {z}/{x}/{y}. */
export function sameOrigin(url) {
  return String(url).replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '');
}

export const api = {
  get: (p, o) => request('GET', p, o),
  post: (p, b, o = {}) => request('POST', p, { ...o, body: b }),
  patch: (p, b, o = {}) => request('PATCH', p, { ...o, body: b }),
  put: (p, b, o = {}) => request('PUT', p, { ...o, body: b }),
  del: (p, o) => request('DELETE', p, o),
};
