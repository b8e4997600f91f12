// The API client: JSON in and out, the session cookie plus the CSRF header on unsafe
// methods (double submit, see server/identity.py), one refresh-and-retry on 401, and
// RFC 9457 problem+json turned into an ApiError carrying `detail` and field `errors`.

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `request failed (${status})`);
    this.status = status;
    this.detail = this.message;
    this.errors = problem?.errors || [];
    this.problem = problem;
  }
}

export function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return '';
}

export function csrfHeaders() {
  const token = cookie('rh_csrf');
  return token ? { 'X-CSRF-Token': token } : {};
}

let refreshing = null;

// Trades the refresh cookie for a new access cookie. Concurrent 401s share one refresh,
// since the refresh token rotates and a second use of the old one would be refused.
export function refreshSession() {
  if (!cookie('rh_csrf')) return Promise.resolve(false);
  if (!refreshing) {
    refreshing = fetch('/api/auth/refresh', {
      method: 'POST', credentials: 'same-origin', headers: csrfHeaders(),
    }).then((resp) => resp.ok).catch(() => false).finally(() => { refreshing = null; });
  }
  return refreshing;
}

async function toError(resp) {
  let problem = null;
  try {
    const type = resp.headers.get('Content-Type') || '';
    if (type.includes('json')) problem = await resp.json();
    else problem = { detail: (await resp.text()).slice(0, 200) || resp.statusText };
  } catch {
    problem = { detail: resp.statusText };
  }
  return new ApiError(resp.status, problem);
}

export async function api(path, { method = 'GET', body, headers = {}, retry = true, keepalive } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers }, keepalive };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  if (!SAFE.has(method)) Object.assign(init.headers, csrfHeaders());
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, { detail: `network error: ${err.message}` });
  }
  if (resp.status === 401 && retry && !path.startsWith('/api/auth/') && await refreshSession()) {
    return api(path, { method, body, headers, retry: false, keepalive });
  }
  if (!resp.ok) throw await toError(resp);
  if (resp.status === 204) return null;
  const type = resp.headers.get('Content-Type') || '';
  return type.includes('json') ? resp.json() : resp.text();
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

// Lists answer either {items, next_cursor} or a bare array; pages use this shape.
export function items(page) {
  if (Array.isArray(page)) return { items: page, next: null };
  return { items: page?.items || page?.videos || [], next: page?.next_cursor || page?.cursor || null };
}

// --- the signed-in user -------------------------------------------------------------

const listeners = new Set();
export const session = { user: null, ready: false };

export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setUser(user) {
  session.user = user;
  session.ready = true;
  for (const fn of listeners) fn(user);
}

export async function loadUser() {
  if (!cookie('rh_csrf')) {
    setUser(null);
    return null;
  }
  try {
    setUser(await api('/api/users/me'));
  } catch {
    setUser(null);
  }
  return session.user;
}

export async function signIn(username, password) {
  await api('/api/auth/login', { method: 'POST', body: { username, password } });
  return loadUser();
}

export async function signUp(username, password, email) {
  const body = { username, password };
  if (email) body.email = email;
  await api('/api/users', { method: 'POST', body });
  return signIn(username, password);
}

export async function signOut() {
  try {
    await api('/api/auth/logout', { method: 'POST' });
  } finally {
    setUser(null);
  }
}

// Access tokens live 15 minutes; refresh a little before, so that a long watch or upload
// never meets a 401 in the middle (WebSocket reconnects, tus PATCHes).
setInterval(() => {
  if (session.user) refreshSession();
}, 10 * 60 * 1000);
