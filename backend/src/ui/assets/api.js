// The JSON API (see /api/openapi.json) and the formatting every page shares.
// Times are unix nanoseconds as JS numbers: their precision (about 256 ns
// today) is far below what a pixel of any timeline can show.

/** An API failure: `status` 0 means the backend could not be reached. */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// The query token (`serve --query-token`), when the backend asks for one:
// kept in sessionStorage, so it lasts as long as the tab and never reaches
// the URL, history or a log, and sent as `Authorization: Bearer` on every
// API call.
const TOKEN_KEY = 'otelite.queryToken';

/** The token this tab signed in with, or null. */
export function queryToken() {
  try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}

/** Keeps `token` for this tab; a blank one signs out. */
export function setQueryToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lasts until the page is left */ }
}

/**
 * Fired on `window` when the backend answers 401: `detail.refused` is true
 * when a token was sent (it is wrong, and forgotten), false when none was.
 */
export const UNAUTHORIZED = 'otelite:unauthorized';

/** GETs `path` with `params` (arrays repeat the name; empty values are left out). */
export async function getJson(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const one of [].concat(value)) {
      if (one !== undefined && one !== null && one !== '') query.append(name, String(one));
    }
  }
  const url = query.toString() ? `${path}?${query}` : path;
  const token = queryToken();
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, { headers });
  } catch (e) {
    throw new ApiError(`Cannot reach the otelite backend (${e.message}).`, 0);
  }
  if (response.status === 401) {
    if (token && queryToken() === token) setQueryToken(null);
    window.dispatchEvent(new CustomEvent(UNAUTHORIZED, { detail: { refused: Boolean(token) } }));
  }
  const text = await response.text();
  let body = null;
  try { body = JSON.parse(text); } catch { /* reported below */ }
  if (!response.ok) {
    const why = body && body.error ? body.error : text.slice(0, 200) || response.statusText;
    throw new ApiError(why, response.status);
  }
  if (body === null) throw new ApiError(`${path} answered something that is not JSON`, response.status);
  return body;
}

export const api = {
  services: () => getJson('/api/otelite/services').then((b) => b.services),
  // Jaeger's v1 route: otelite answers it from the same store.
  operations: (service) =>
    getJson(`/api/services/${encodeURIComponent(service)}/operations`).then((b) => b.data || []),
  search: (params) => getJson('/api/otelite/search', params),
  // One page of a trace; `cursor` (the last page's `nextCursor`) for the next.
  trace: (id, cursor) => getJson(`/api/otelite/traces/${encodeURIComponent(id)}`, { cursor }),
  dependencies: (start, end) =>
    getJson('/api/otelite/dependencies', { start, end }).then((b) => b.dependencies),
  rates: (params) => getJson('/api/rates', params),
};

const UNITS = [['h', 3600e9], ['m', 60e9], ['s', 1e9], ['ms', 1e6], ['µs', 1e3], ['ns', 1]];

/** 1234567 → "1.23ms". */
export function fmtDuration(ns) {
  if (!Number.isFinite(ns)) return '–';
  if (ns === 0) return '0';
  for (const [unit, size] of UNITS) {
    if (Math.abs(ns) >= size) {
      const v = ns / size;
      return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)}${unit}`;
    }
  }
  return `${ns}ns`;
}

/** "10ms", "1.5s", "250us" → nanoseconds; undefined for blank; NaN when unreadable. */
export function parseDuration(text) {
  const t = (text || '').trim();
  if (!t) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)$/.exec(t);
  if (!m) return NaN;
  const size = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2]];
  return Math.round(Number(m[1]) * size);
}

/** Unix ns → local "2026-11-25 21:45:12.345". */
export function fmtTime(ns) {
  const d = new Date(ns / 1e6);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Unix ns → "3 min ago". */
export function fmtAgo(ns) {
  const s = (Date.now() - ns / 1e6) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** A model AnyValue (`{"string": "x"}`, `{"int": 3}`, …) as text. */
export function fmtValue(value) {
  if (value === 'empty' || value === null || value === undefined) return '(empty)';
  const [kind, inner] = Object.entries(value)[0] || ['empty', null];
  switch (kind) {
    case 'string': return inner;
    case 'bytes': return `0x${inner}`;
    case 'array': return `[${inner.map(fmtValue).join(', ')}]`;
    case 'kvList': return `{${inner.map((kv) => `${kv.key}: ${fmtValue(kv.value)}`).join(', ')}}`;
    default: return String(inner);
  }
}

/**
 * Compares names the way people read them: `batch 2` before `batch 10`
 * (digits by value), then case-insensitively.
 */
export const byName = new Intl.Collator('en', { numeric: true }).compare;

/** Now as unix ns. */
export function nowNs() {
  return Date.now() * 1e6;
}
