// Rates page: for all services and each one, the spans counted at each
// pipeline stage as a funnel (N and R = N / N_total), and the counts over
// time for one of them, so a drop shows where and when spans were lost. An
// OpenTelemetry Collector between apps and otelite shows as the collector
// stage of the all-services funnel (the backend lists it there only). Under
// each funnel, the upstream loss estimated from orphans (labelled estimate).

import { api, fmtTime, nowNs } from './api.js';
import { emptyDatabase, errorMessage, h, href, message, rangePicker, windowOf } from './router.js';

const COLORS = { total: '#24415f', collect: '#2f6db5', transmit: '#4aa3df', collector: '#7a5fb5', process: '#3c9d5d', analyze: '#a0a52b', store: '#e08a00' };
const BUCKETS = 12;
const MINUTE = 60e9; // the backend keeps stage counts per minute

export async function render(main, route, stillCurrent) {
  const params = route.params;
  const window = windowOf(params, '1h');
  const focus = params.get('service') || '';
  main.append(h('h1', {}, 'Stage rates'), rangePicker('rates', params, window.label));
  let report;
  try {
    report = await api.rates({ start: window.start, end: window.end });
  } catch (error) {
    if (stillCurrent()) main.append(errorMessage(error, 'the stage rates'));
    return;
  }
  if (!stillCurrent()) return;
  if (report.services.length === 0) {
    const services = await api.services().catch(() => null);
    if (!stillCurrent()) return;
    main.append(services && services.length === 0 ? emptyDatabase()
      : message('empty', 'No spans counted in this window', 'Pick a wider window above.'));
    return;
  }
  const funnels = h('div', { class: 'funnels' },
    funnelCard('All services', report.all, '', params),
    report.services.map((r) => funnelCard(r.service, r, r.service, params)));
  const over = h('div', { class: 'card over-time' }, h('p', { class: 'muted' }, 'Loading counts over time…'));
  main.append(funnels, over);
  await overTime(over, params, window, focus, report, stillCurrent);
}

function funnelCard(title, rates, service, params) {
  const focused = new URLSearchParams(params);
  if (service) focused.set('service', service); else focused.delete('service');
  const byName = Object.fromEntries(rates.stages.map((s) => [s.stage, s]));
  let previous = null;
  const rows = rates.stages.map((s) => {
    const known = s.n !== null;
    // The backend says what each stage lost and why; older servers only the counts.
    const gap = known && previous !== null && s.n < previous ? previous - s.n : 0;
    const lost = s.lost ?? gap;
    const why = Object.entries(s.reasons || {}).map(([reason, n]) => `${reason} ${n.toLocaleString('en')}`).join(', ');
    // Spans keep/drop rules dropped: chosen, not lost, so apart and in their own colour.
    const dropped = s.dropped || [];
    if (known) previous = s.n;
    return h('tr', { class: `${known ? '' : 'unknown'}${lost ? ' loss' : ''}${dropped.length ? ' policy' : ''}`, 'data-stage': s.stage, 'data-n': known ? s.n : '' },
      h('td', { class: 'stage' }, s.stage),
      h('td', { class: 'bar' }, known && s.rate !== null ? h('div', { style: { width: `${Math.min(100, s.rate * 100)}%` } }) : null),
      h('td', { class: 'n' }, known ? s.n.toLocaleString('en') : 'unknown',
        lost ? h('div', { class: 'lost' }, `−${lost.toLocaleString('en')} lost`,
          why ? h('span', { class: 'why', 'data-reasons': why }, ` (${why})`) : null) : null,
        dropped.map((d) => h('div', { class: 'dropped', 'data-rule': d.rule, 'data-n': d.n },
          `dropped by policy \`${d.rule}\`: `,
          d.share === null ? d.n.toLocaleString('en') : `${percent(d.share)} % (${d.n.toLocaleString('en')})`))),
      h('td', { class: 'r' }, s.rate === null ? '–' : `${(s.rate * 100).toFixed(s.rate === 1 ? 0 : 2)} %`));
  });
  return h('div', { class: 'card funnel-card', 'data-service': service },
    h('h2', {}, service ? h('a', { href: href('search', '', { service }) }, title) : title,
      ' ', h('a', { class: 'muted', style: { fontSize: '12px', fontWeight: 'normal' }, href: href('rates', '', focused) }, 'over time ↓')),
    h('table', { class: 'funnel' }, rows),
    upstreamEstimate(rates.upstreamLossEstimate),
    h('p', { class: 'muted' }, `Rates relative to ${byName[rates.baseline] ? rates.baseline : 'total'}.`, rates.note ? ` ${rates.note}` : ''));
}

// Spans lost before otelite, from stored spans whose parent never came: an
// estimate (a lower bound), apart from the counted funnel. Older servers say nothing.
function upstreamEstimate(e) {
  if (!e) return null;
  const attrs = { class: `estimate${e.orphans ? ' loss' : ' muted'}`, 'data-lower-bound': e.lowerBound, 'data-orphans': e.orphans };
  if (!e.orphans) return h('p', attrs, `Upstream loss (estimate): none seen — no stored span's parent is missing ${e.graceSeconds} s after it arrived.`);
  const spans = (n) => `${n.toLocaleString('en')} span${n === 1 ? '' : 's'}`;
  return h('p', attrs, `Upstream loss (estimate): at least ${spans(e.lowerBound)} lost before otelite — `
    + `${spans(e.orphans)} stored name a parent still missing ${e.graceSeconds} s after they arrived.`);
}

/** A share as a percentage: whole when it is, one decimal, or one significant digit when tiny. */
function percent(share) {
  const p = share * 100;
  if (p > 0 && p < 0.1) return p.toPrecision(1);
  return p.toFixed(p % 1 ? 1 : 0);
}

/** Counts per stage in BUCKETS slices of the window (each at least a minute). */
async function overTime(card, params, window, focus, report, stillCurrent) {
  const end = window.end || nowNs();
  const start = window.start || end - 24 * 3600e9;
  const step = Math.max(MINUTE, Math.ceil((end - start) / BUCKETS / MINUTE) * MINUTE);
  const first = Math.floor(start / MINUTE) * MINUTE;
  const slices = [];
  for (let t = first; t < end; t += step) slices.push([t, t + step - 1]);
  let answers;
  try {
    answers = await Promise.all(slices.map(([s, e]) => api.rates({ start: s, end: e, service: focus || undefined })));
  } catch (error) {
    if (stillCurrent()) card.replaceChildren(errorMessage(error, 'the rates over time'));
    return;
  }
  if (!stillCurrent()) return;
  const pick = (r) => (focus ? r.services.find((x) => x.service === focus) : r.all);
  const whole = (focus ? report.services.find((x) => x.service === focus) : report.all)?.stages
    || Object.keys(COLORS).filter((stage) => stage !== 'collector').map((stage) => ({ stage, n: 0 }));
  const stages = whole.map((s) => s.stage);
  // A slice where nothing was counted draws as 0 for the stages the window knows.
  const nothing = Object.fromEntries(whole.map((s) => [s.stage, s.n === null ? null : 0]));
  const series = answers.map((r) => {
    const rates = pick(r);
    return rates ? Object.fromEntries(rates.stages.map((s) => [s.stage, s.n])) : nothing;
  });
  // A slice is banded for what the backend calls lost, so spans a rule
  // dropped do not band it (older servers say nothing: the gap decides).
  const lossy = answers.map((r) => {
    const stages = pick(r)?.stages || [];
    return stages.some((s) => s.dropped?.length) ? stages.some((s) => s.lost > 0) : null;
  });
  const choose = h('select', {
    onchange: (e) => {
      const p = new URLSearchParams(params);
      if (e.target.value) p.set('service', e.target.value); else p.delete('service');
      location.hash = href('rates', '', p);
    },
  }, h('option', { value: '' }, 'all services'), report.services.map((r) => h('option', { value: r.service, selected: r.service === focus }, r.service)));
  card.replaceChildren(h('div', {},
    h('h2', {}, 'Spans per stage over time for ', choose),
    window.start ? null : h('p', { class: 'muted' }, 'All time is charted over the last 24 hours.'),
    chart(slices, series, stages, lossy),
    h('div', { class: 'chart-legend' }, stages.map((s) => h('span', {}, h('i', { style: { background: COLORS[s] } }), s)),
      h('span', {}, h('i', { style: { background: '#fde3e3', height: '10px' } }), 'a slice where a stage counted fewer spans than the one before'))));
}

function chart(slices, series, stages, known = []) {
  const W = 900, H = 220, L = 50, R = 12, T = 10, B = 24;
  const max = Math.max(1, ...series.flatMap((row) => stages.map((s) => row[s] || 0)));
  const cw = (W - L - R) / slices.length;
  const x = (i) => L + cw * (i + 0.5);
  const y = (n) => H - B - (n / max) * (H - T - B);
  const lossy = series.map((row, slice) => {
    if (typeof known[slice] === 'boolean') return known[slice];
    const counted = stages.map((s) => row[s]).filter((n) => n !== null && n !== undefined);
    return counted.some((n, i) => i > 0 && n < counted[i - 1]);
  });
  return h('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'spans per stage over time' },
    lossy.map((bad, i) => (bad ? h('rect', { class: 'lossband', x: L + cw * i, y: T, width: cw, height: H - T - B, 'data-slice': i }) : null)),
    h('g', { class: 'axis' },
      h('line', { x1: L, y1: H - B, x2: W - R, y2: H - B }),
      h('line', { x1: L, y1: T, x2: L, y2: H - B }),
      [0, 0.5, 1].map((f) => h('text', { x: L - 4, y: y(f * max) + 3, 'text-anchor': 'end' }, Math.round(f * max).toLocaleString('en'))),
      [0, Math.floor(slices.length / 2), slices.length - 1].map((i) => h('text', { x: x(i), y: H - 8, 'text-anchor': 'middle' },
        fmtTime(slices[i][0]).slice(11, 16)))),
    stages.map((stage) => {
      const points = series.map((row, i) => (row[stage] === null || row[stage] === undefined ? null : `${x(i).toFixed(1)},${y(row[stage]).toFixed(1)}`)).filter(Boolean);
      return points.length ? h('polyline', { class: 'line', points: points.join(' '), stroke: COLORS[stage] || '#888', 'data-stage': stage }) : null;
    }));
}
