// The URL holds each view's state: `#/page/arg?name=value…`, so a view can
// be shared and the back button works. Also the small DOM helpers, the
// messages every page shows and the time-range quick picks.

import { ApiError, fmtTime, nowNs } from './api.js';

/** The current route: `{ page, arg, params }` from `location.hash`. */
export function currentRoute() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = hash.split('?');
  const [page, ...rest] = path.split('/');
  return { page: page || 'search', arg: decodeURIComponent(rest.join('/')), params: new URLSearchParams(query) };
}

/** `#/page/arg?params` for a link. */
export function href(page, arg, params) {
  const query = params instanceof URLSearchParams ? params : new URLSearchParams(params || {});
  for (const [k, v] of [...query]) if (v === '') query.delete(k);
  const q = query.toString();
  return `#/${page}${arg ? `/${encodeURIComponent(arg)}` : ''}${q ? `?${q}` : ''}`;
}

export function go(page, arg, params) {
  location.hash = href(page, arg, params);
}

export const TRACE_ID = /^[0-9a-fA-F]{32}$/;

/**
 * Creates an element: `h('a', { href: '#', class: 'x', onclick: f }, 'text', child…)`.
 * Text is always set as text, never parsed as HTML.
 */
export function h(tag, attrs, ...children) {
  const svg = ['svg', 'g', 'circle', 'line', 'path', 'rect', 'text', 'title', 'marker', 'defs', 'polyline'].includes(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** A local date and time that never wraps inside (`.ts` is `nowrap`). */
export function timestamp(ns) {
  return h('time', { class: 'ts', datetime: new Date(ns / 1e6).toISOString() }, fmtTime(ns));
}

/** A message box: `kind` is 'error', 'empty' or 'info'. */
export function message(kind, title, ...body) {
  return h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('strong', {}, title), ...body);
}

/** The message for a failed API call. */
export function errorMessage(error, what) {
  if (error instanceof ApiError && error.status === 0) {
    return message('error', 'The backend cannot be reached', `${error.message} Is otelite serve still running?`);
  }
  if (error instanceof ApiError) {
    return message('error', `Could not load ${what}`, `The backend answered ${error.status}: ${error.message}`);
  }
  return message('error', `Could not show ${what}`, String(error && error.message ? error.message : error));
}

/** The message shown wherever a page finds the database has no spans at all. */
export function emptyDatabase() {
  return message('empty', 'No spans stored yet',
    'This otelite database is empty. Point an OpenTelemetry SDK at the OTLP listener ',
    '(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 by default) and its traces show up here.');
}

export const RANGES = [['15m', 15 * 60e9], ['1h', 3600e9], ['6h', 6 * 3600e9], ['24h', 24 * 3600e9], ['7d', 7 * 24 * 3600e9], ['all', null]];

/** `{ start, end }` in unix ns for the `range` parameter (`start`/`end` win when given). */
export function windowOf(params, fallback) {
  const start = Number(params.get('start')) || undefined;
  const end = Number(params.get('end')) || undefined;
  if (start || end) return { start, end, label: 'custom' };
  const label = params.get('range') || fallback;
  const span = (RANGES.find(([name]) => name === label) || RANGES[RANGES.length - 1])[1];
  const now = nowNs();
  return span ? { start: now - span, end: now, label } : { start: undefined, end: undefined, label: 'all' };
}

/** The quick-pick links for a page whose other parameters stay as they are. */
export function rangePicker(page, params, active) {
  return h('div', { class: 'range' }, h('span', { class: 'muted' }, 'Window:'),
    RANGES.map(([name]) => {
      const next = new URLSearchParams(params);
      next.set('range', name);
      next.delete('start');
      next.delete('end');
      return h('a', { href: href(page, '', next), class: name === active ? 'active' : '' }, name === 'all' ? 'all time' : `last ${name}`);
    }));
}
