// Trace page: a header with the trace's figures, the waterfall (see
// waterfall.js) and a detail panel for the selected span. The selected span
// and the collapsed rows live in the URL (`?span=<id>&collapsed=<id>.<id>`),
// so a reload or a shared link shows the same view.

import { api, fmtDuration, fmtValue } from './api.js';
import { errorMessage, h, href, message, timestamp } from './router.js';
import { Waterfall } from './waterfall.js';

export async function render(main, route, stillCurrent) {
  const id = route.arg;
  main.append(h('p', { class: 'muted' }, `Loading trace ${id}…`));
  let body;
  try {
    body = await api.trace(id);
  } catch (error) {
    if (!stillCurrent()) return;
    main.replaceChildren(error.status === 404
      ? message('empty', 'Trace not found', `No span of trace ${id} is stored. It may not have arrived yet, `,
        'or it was never sent to this otelite. ', h('a', { href: '#/search' }, 'Search traces'), '.')
      : errorMessage(error, `trace ${id}`));
    return;
  }
  if (!stillCurrent()) return;
  show(main, route, body, stillCurrent);
}

/**
 * Draws the spans read so far. A trace past the server's
 * `max_spans_per_answer` comes in pages: a note says how many spans are
 * shown and a button reads the next page into the same view.
 */
function show(main, route, body, stillCurrent) {
  const model = buildModel(body.spans, body.durationNanos);
  const detail = h('aside', { class: 'card detail' }, h('p', { class: 'muted' }, 'Select a span to see its details.'));
  const state = stateFromUrl(route.params, model);
  const waterfall = new Waterfall(model, state, (span) => showDetail(detail, span, model),
    () => saveState(main, route.arg, waterfall));
  if (state.selected) showDetail(detail, model.byId.get(state.selected), model);
  main.replaceChildren(
    header(body.traceId, model),
    partial(main, route, body, stillCurrent) || '',
    h('div', { class: 'tools' },
      h('button', { class: 'plain', onclick: () => waterfall.setAllCollapsed(true) }, 'Collapse all'),
      h('button', { class: 'plain', onclick: () => waterfall.setAllCollapsed(false) }, 'Expand all'),
      h('span', { class: 'legend' }, h('i', {}), 'span'),
      h('span', { class: 'legend' }, h('i', { class: 'err' }), 'error'),
      h('span', { class: 'legend' }, h('i', { class: 'crit' }), 'critical path')),
    h('div', { class: 'layout-trace' }, waterfall.element, detail));
  waterfall.mount();
}

/** The "showing N of M spans" note with its "Load more" button; null for a whole trace. */
function partial(main, route, body, stillCurrent) {
  if (!body.nextCursor) return null;
  const note = h('p', { class: 'truncated' },
    `Showing the first ${body.spans.length} of ${body.spanCount} spans (the server answers a large trace in pages). `);
  const more = h('button', { class: 'plain load-more' }, 'Load more spans');
  more.onclick = async () => {
    more.disabled = true;
    try {
      const next = await api.trace(route.arg, body.nextCursor);
      if (!stillCurrent()) return;
      show(main, route, { ...body, spans: body.spans.concat(next.spans), nextCursor: next.nextCursor }, stillCurrent);
    } catch (error) {
      if (!stillCurrent()) return;
      note.append(errorMessage(error, `the next spans of trace ${route.arg}`));
      more.disabled = false;
    }
  };
  note.append(more);
  return note;
}

/** The view's state from the URL, keeping only ids that name spans of this trace. */
function stateFromUrl(params, model) {
  const selected = model.byId.has(params.get('span')) ? params.get('span') : null;
  const collapsed = (params.get('collapsed') || '').split(STATE_SEPARATOR)
    .filter((id) => model.byId.get(id)?.children.length);
  return { selected, collapsed };
}

// Span ids are hex, so a dot separates them without being escaped in the URL.
const STATE_SEPARATOR = '.';

/**
 * Writes the view's state into the URL in place: no history entry per
 * click, and no `hashchange`, so the page is not drawn again.
 */
function saveState(main, traceId, waterfall) {
  const params = new URLSearchParams();
  if (waterfall.selected) params.set('span', waterfall.selected);
  if (waterfall.collapsed.size) params.set('collapsed', [...waterfall.collapsed].join(STATE_SEPARATOR));
  history.replaceState(history.state, '', href('trace', traceId, params));
  main.dataset.route = location.hash;
}

/**
 * Spans in tree order with depth, children, and the trace's bounds. Spans
 * whose parent was not received are shown as extra roots, flagged.
 * `exactDuration` is the server's `durationNanos`, when it sent one.
 */
export function buildModel(raw, exactDuration) {
  const spans = raw.map((s) => ({
    raw: s,
    id: s.spanId,
    parent: s.parentSpanId,
    start: s.startTimeUnixNano,
    end: Math.max(s.endTimeUnixNano, s.startTimeUnixNano),
    // Exact from the server; the timestamps above are doubles here.
    duration: s.durationNanos ?? Math.max(s.endTimeUnixNano - s.startTimeUnixNano, 0),
    error: s.status.code === 'error',
    children: [],
    orphan: false,
  }));
  const byId = new Map(spans.map((s) => [s.id, s]));
  const roots = [];
  for (const s of spans) {
    const parent = s.parent && byId.get(s.parent);
    if (parent && parent !== s) parent.children.push(s);
    else {
      s.orphan = Boolean(s.parent);
      roots.push(s);
    }
  }
  const byStart = (a, b) => a.start - b.start || a.end - b.end;
  roots.sort(byStart);
  for (const s of spans) s.children.sort(byStart);
  // Loops, not Math.min(...spread): a spread of 100 000 arguments overflows the stack.
  let start = Infinity, end = -Infinity;
  for (const s of spans) {
    if (s.start < start) start = s.start;
    if (s.end > end) end = s.end;
  }
  // Timestamps read as doubles are 256 ns apart: the server's exact
  // duration keeps a 100 ms trace at 100 ms on the axis.
  const duration = Number.isFinite(exactDuration) ? exactDuration : end - start;
  const model = { spans, byId, roots, start, end, duration: Math.max(duration, 1) };
  model.critical = criticalPath(model);
  return model;
}

/**
 * The spans on the critical path: from the root that ends last, walk back
 * from its end through the child that finished last before that point,
 * then the child that finished before that child started, and so on, into
 * each chosen child the same way. Iterative, so 10 000 nested spans are fine.
 */
function criticalPath(model) {
  const onPath = new Set();
  const last = model.roots.reduce((a, b) => (b.end > a.end ? b : a));
  const stack = [last];
  while (stack.length) {
    const span = stack.pop();
    onPath.add(span.id);
    let cursor = span.end;
    const kids = [...span.children].sort((a, b) => b.end - a.end);
    for (const kid of kids) {
      if (kid.end <= cursor || cursor === span.end) {
        if (kid.start >= cursor) continue;
        stack.push(kid);
        cursor = kid.start;
      }
    }
  }
  return onPath;
}

function header(traceId, model) {
  const root = model.roots[0].raw;
  const services = new Set(model.spans.map((s) => s.raw.resource.serviceName));
  const errors = model.spans.filter((s) => s.error).length;
  const orphans = model.roots.length - 1;
  return h('div', { class: 'trace-head' },
    h('h1', {}, `${root.resource.serviceName}: ${root.name}`),
    h('code', { class: 'muted', 'data-trace-id': traceId }, traceId),
    h('div', { class: 'stats' },
      h('span', {}, `${fmtDuration(model.duration)}`),
      h('span', { class: 'span-count' }, `${model.spans.length} spans`),
      h('span', {}, `${services.size} service${services.size === 1 ? '' : 's'}`),
      errors ? h('span', { class: 'badge error' }, `${errors} error${errors === 1 ? '' : 's'}`) : null,
      orphans > 0 ? h('span', { class: 'badge', title: 'spans whose parent was not received' }, `${orphans} without parent`) : null,
      timestamp(model.start)));
}

function table(pairs) {
  if (pairs.length === 0) return h('p', { class: 'muted' }, 'none');
  return h('table', {}, pairs.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))));
}

const attrs = (list) => table(list.map((kv) => [kv.key, fmtValue(kv.value)]));

function showDetail(panel, span, model) {
  const s = span.raw;
  const rel = (ns) => `+${fmtDuration(ns - model.start)}`;
  panel.replaceChildren(h('div', { class: 'detail-body', 'data-span-id': s.spanId },
    h('h2', {}, s.name),
    table([
      ['service', s.resource.serviceName],
      ['kind', s.kind],
      ['status', s.status.message ? `${s.status.code}: ${s.status.message}` : s.status.code],
      ['duration', fmtDuration(span.duration)],
      ['start', [`${rel(span.start)} (`, timestamp(span.start), ')']],
      ['span id', h('code', {}, s.spanId)],
      ['parent', s.parentSpanId ? h('code', {}, s.parentSpanId + (span.orphan ? ' (not received)' : '')) : '(root)'],
      ['critical path', model.critical.has(span.id) ? 'yes' : 'no'],
    ]),
    h('h3', {}, 'Attributes'), attrs(s.attributes),
    h('h3', {}, `Events (${s.events.length})`),
    s.events.length === 0 ? h('p', { class: 'muted' }, 'none') : s.events.map((e) => h('div', { class: 'event' },
      h('div', {}, h('strong', {}, e.name), ' ', h('span', { class: 'muted' },
        `${rel(e.timeUnixNano)} in the trace, +${fmtDuration(e.timeUnixNano - span.start)} in the span`)),
      attrs(e.attributes))),
    h('h3', {}, `Links (${s.links.length})`),
    s.links.length === 0 ? h('p', { class: 'muted' }, 'none') : s.links.map((l) => h('div', { class: 'event' },
      h('a', { href: href('trace', l.traceId) }, h('code', {}, `${l.traceId} / ${l.spanId}`)), attrs(l.attributes))),
    h('h3', {}, 'Resource'), attrs([{ key: 'service.name', value: { string: s.resource.serviceName } },
      ...s.resource.attributes.filter((kv) => kv.key !== 'service.name')]),
    h('h3', {}, 'Scope'), table([['name', s.scope.name || '(none)'], ['version', s.scope.version || '(none)'],
      ...s.scope.attributes.map((kv) => [kv.key, fmtValue(kv.value)])])));
}
