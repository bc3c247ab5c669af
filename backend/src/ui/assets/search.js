// Search page: filters on the left (all kept in the URL), on the right a
// scatter of duration over start time and the matching traces, newest first.

import { api, byName, fmtAgo, fmtDuration, fmtTime, parseDuration } from './api.js';
import { emptyDatabase, errorMessage, go, h, href, message, RANGES, windowOf } from './router.js';

const PAGE_SIZE = 20;

export async function render(main, route, stillCurrent) {
  const params = route.params;
  const side = h('aside', { class: 'card filters' });
  const results = h('section', { class: 'search-results' }, h('p', { class: 'muted' }, 'Searching…'));
  main.append(h('div', { class: 'layout-search' }, side, results));

  const query = searchQuery(params);
  const [services, page] = await Promise.allSettled([api.services(), query.error ? null : api.search(query.api)]);
  if (!stillCurrent()) return;
  side.append(...filters(params, services.status === 'fulfilled' ? services.value : []));
  results.replaceChildren();
  if (services.status === 'fulfilled' && services.value.length === 0) {
    results.append(emptyDatabase());
    return;
  }
  if (query.error) {
    results.append(message('error', 'Check the filters', query.error));
    return;
  }
  if (page.status === 'rejected') {
    results.append(errorMessage(page.reason, 'the search'));
    return;
  }
  showResults(results, page.value, query.api);
}

/** The API parameters for the URL's filters, or the reason they are invalid. */
function searchQuery(params) {
  const window = windowOf(params, 'all');
  const minDurationNanos = parseDuration(params.get('minDuration'));
  const maxDurationNanos = parseDuration(params.get('maxDuration'));
  if (Number.isNaN(minDurationNanos) || Number.isNaN(maxDurationNanos)) {
    return { error: 'Durations are written like 250us, 10ms, 1.5s or 2m.' };
  }
  const attribute = params.getAll('attr').filter(Boolean);
  const bad = attribute.find((a) => !/^[^=]+=/.test(a));
  if (bad) return { error: `Attribute filter "${bad}" must be key=value.` };
  return {
    api: {
      service: params.get('service'),
      operation: params.get('operation'),
      attribute,
      error: params.get('error') === '1' ? 'true' : undefined,
      minDurationNanos,
      maxDurationNanos,
      start: window.start,
      end: window.end,
      limit: PAGE_SIZE,
    },
  };
}

function filters(params, services) {
  const service = params.get('service') || '';
  const operation = h('select', { name: 'operation' }, h('option', { value: '' }, 'all operations'));
  const loadOperations = async (name) => {
    operation.replaceChildren(h('option', { value: '' }, 'all operations'));
    if (!name) return;
    try {
      for (const op of (await api.operations(name)).sort(byName)) {
        operation.append(h('option', { value: op, selected: op === params.get('operation') }, op));
      }
    } catch { /* the operation list is a convenience; the search still works without it */ }
  };
  loadOperations(service);
  const serviceSelect = h('select', { name: 'service', onchange: (e) => loadOperations(e.target.value) },
    h('option', { value: '' }, 'all services'),
    [...services].sort(byName).map((s) => h('option', { value: s, selected: s === service }, s)));
  const range = h('select', { name: 'range' },
    RANGES.map(([name]) => h('option', { value: name, selected: name === (params.get('range') || 'all') },
      name === 'all' ? 'all time' : `last ${name}`)));
  const form = h('form', { onsubmit: submit },
    h('label', {}, 'Service', serviceSelect),
    h('label', {}, 'Operation', operation),
    h('label', {}, 'Attributes (key=value, one per line)',
      h('textarea', { name: 'attr', placeholder: 'http.request.method=POST' }, params.getAll('attr').join('\n'))),
    h('div', { class: 'row2' },
      h('label', {}, 'Min duration', h('input', { name: 'minDuration', placeholder: '10ms', value: params.get('minDuration') || '' })),
      h('label', {}, 'Max duration', h('input', { name: 'maxDuration', placeholder: '2s', value: params.get('maxDuration') || '' }))),
    h('label', {}, 'Time range', range),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'error', checked: params.get('error') === '1' }), ' errors only'),
    h('button', { type: 'submit' }, 'Find traces'));
  return [h('h1', {}, 'Search'), form];
}

function submit(event) {
  event.preventDefault();
  const f = event.target.elements;
  const next = new URLSearchParams();
  for (const name of ['service', 'operation', 'minDuration', 'maxDuration', 'range']) {
    if (f[name].value.trim()) next.set(name, f[name].value.trim());
  }
  for (const line of f.attr.value.split('\n')) if (line.trim()) next.append('attr', line.trim());
  if (f.error.checked) next.set('error', '1');
  go('search', '', next);
}

function showResults(results, page, apiParams) {
  const traces = page.traces;
  if (traces.length === 0) {
    results.append(message('empty', 'No traces match', 'Widen the time range or remove a filter.'));
    return;
  }
  const list = h('ul', { class: 'results' });
  const count = h('span', {});
  const chart = h('div', { class: 'card' });
  results.append(chart, h('h2', {}, count), list);
  const shown = [];
  const add = (more, cursor) => {
    shown.push(...more);
    count.textContent = `${shown.length} trace${shown.length === 1 ? '' : 's'}${cursor ? ' (more below)' : ''}`;
    const longest = Math.max(...shown.map((t) => t.durationNanos), 1);
    list.replaceChildren(...shown.map((t) => resultRow(t, longest)));
    chart.replaceChildren(scatter(shown));
    results.querySelector('.more')?.remove();
    if (cursor) {
      results.append(h('button', {
        class: 'plain more',
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            const next = await api.search({ ...apiParams, cursor });
            add(next.traces, next.nextCursor);
          } catch (error) {
            e.target.replaceWith(errorMessage(error, 'the next page'));
          }
        },
      }, 'Load more'));
    }
  };
  add(traces, page.nextCursor);
}

function resultRow(t, longest) {
  const title = t.rootName ? `${t.rootService}: ${t.rootName}` : '(root span not received)';
  return h('li', {},
    h('a', { class: `result${t.errorCount ? ' has-error' : ''}`, href: href('trace', t.traceId), 'data-trace-id': t.traceId },
      h('div', { class: 'result-head' },
        h('span', { class: 'result-title' }, title),
        h('code', { class: 'muted' }, t.traceId.slice(0, 12)),
        h('span', { class: 'dur' }, fmtDuration(t.durationNanos))),
      h('div', { class: 'durbar' }, h('div', { style: { width: `${(100 * t.durationNanos) / longest}%` } })),
      h('div', { class: 'chips' },
        t.services.map((s) => h('span', { class: `chip${s.errorCount ? ' error' : ''}` }, `${s.name} (${s.spanCount})`))),
      h('div', { class: 'result-foot' },
        h('span', { class: 'spans' }, `${t.spanCount} span${t.spanCount === 1 ? '' : 's'}`),
        t.errorCount ? h('span', { class: 'badge error' }, `${t.errorCount} error${t.errorCount === 1 ? '' : 's'}`) : null,
        t.orphanSpanCount ? h('span', { class: 'badge' }, `${t.orphanSpanCount} orphan`) : null,
        h('span', { title: fmtTime(t.startTimeUnixNano) }, fmtAgo(t.startTimeUnixNano)))));
}

/** Duration over start time, one dot per trace (bigger with more spans), like Jaeger's. */
function scatter(traces) {
  const W = 800, H = 180, L = 56, R = 12, T = 10, B = 24;
  const starts = traces.map((t) => t.startTimeUnixNano);
  let [t0, t1] = [Math.min(...starts), Math.max(...starts)];
  if (t1 - t0 < 1e9) { t0 -= 5e8; t1 += 5e8; }
  const dMax = Math.max(...traces.map((t) => t.durationNanos), 1) * 1.1;
  const x = (ns) => L + ((ns - t0) / (t1 - t0)) * (W - L - R);
  const y = (d) => H - B - (d / dMax) * (H - T - B);
  const ticks = [0, 0.5, 1];
  return h('svg', { class: 'scatter', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'duration over time' },
    h('g', { class: 'axis' },
      h('line', { x1: L, y1: H - B, x2: W - R, y2: H - B }),
      h('line', { x1: L, y1: T, x2: L, y2: H - B }),
      ticks.map((f) => h('text', { x: L - 4, y: y(f * dMax) + 3, 'text-anchor': 'end' }, fmtDuration(f * dMax))),
      ticks.map((f) => h('text', { x: L + f * (W - L - R), y: H - 8, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' },
        fmtTime(t0 + f * (t1 - t0)).slice(11, 19)))),
    traces.map((t) => h('circle', {
      cx: x(t.startTimeUnixNano).toFixed(1),
      cy: y(t.durationNanos).toFixed(1),
      r: Math.min(10, 3 + Math.sqrt(t.spanCount)).toFixed(1),
      class: t.errorCount ? 'error' : '',
      'data-trace-id': t.traceId,
      onclick: () => go('trace', t.traceId),
    }, h('title', {}, `${t.rootName || t.traceId}: ${fmtDuration(t.durationNanos)}, ${t.spanCount} spans`))));
}
