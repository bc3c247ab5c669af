// Service graph page: services as boxes in layers (callers left of the
// services they call), calls as arrows labelled with call and error counts,
// over a chosen window; the same edges as a table below.

import { api } from './api.js';
import { emptyDatabase, errorMessage, go, h, message, rangePicker, windowOf } from './router.js';

const NODE_W = 170, NODE_H = 34, COL_GAP = 110, ROW_GAP = 30, PAD = 20;

export async function render(main, route, stillCurrent) {
  const params = route.params;
  const window = windowOf(params, 'all');
  main.append(h('h1', {}, 'Service graph'), rangePicker('graph', params, window.label));
  let edges, services;
  try {
    [edges, services] = await Promise.all([api.dependencies(window.start, window.end), api.services()]);
  } catch (error) {
    if (stillCurrent()) main.append(errorMessage(error, 'the service graph'));
    return;
  }
  if (!stillCurrent()) return;
  if (services.length === 0) {
    main.append(emptyDatabase());
    return;
  }
  if (edges.length === 0) {
    main.append(message('empty', 'No calls between services in this window',
      'Calls appear when a span of one service is the parent of a span of another. Pick a wider window above.'));
  }
  // Services with spans but no calls still show, unless the window hides every call.
  const names = [...new Set([...(edges.length ? services : []), ...edges.flatMap((e) => [e.parent, e.child])])].sort();
  if (names.length) main.append(drawGraph(names, edges));
  if (edges.length) main.append(edgeTable(edges));
}

/** Layer of each service: the longest chain of callers above it (cycles cut). */
function layers(names, edges) {
  const layer = new Map(names.map((n) => [n, 0]));
  for (let round = 0; round < names.length; round++) {
    let changed = false;
    for (const e of edges) {
      if (e.parent === e.child) continue;
      const want = layer.get(e.parent) + 1;
      if (want > layer.get(e.child) && want < names.length) {
        layer.set(e.child, want);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return layer;
}

function drawGraph(names, edges) {
  const layer = layers(names, edges);
  const columns = [];
  for (const n of names) (columns[layer.get(n)] ||= []).push(n);
  const pos = new Map();
  columns.forEach((col, c) => col.forEach((n, r) => pos.set(n, {
    x: PAD + c * (NODE_W + COL_GAP),
    y: PAD + r * (NODE_H + ROW_GAP),
  })));
  const W = PAD * 2 + columns.length * NODE_W + (columns.length - 1) * COL_GAP;
  const H = PAD * 2 + Math.max(...columns.map((c) => c.length)) * (NODE_H + ROW_GAP) - ROW_GAP + 20;
  return h('svg', { class: 'graph', viewBox: `0 0 ${W} ${H}`, style: { maxWidth: `${W}px` }, role: 'img', 'aria-label': 'service graph' },
    h('defs', {}, ['plain', 'error'].map((kind) => h('marker', {
      id: `arrow-${kind}`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse',
    }, h('path', { d: 'M0,0 L10,5 L0,10 z', fill: kind === 'error' ? '#c62828' : '#8a97a8' })))),
    edges.map((e) => edge(e, pos.get(e.parent), pos.get(e.child))),
    names.map((n) => {
      const p = pos.get(n);
      // A click searches the service's traces (an SVG <a> would need its own namespace).
      return h('g', { class: 'node', 'data-service': n, onclick: () => go('search', '', { service: n }) },
        h('rect', { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6 }),
        h('text', { x: p.x + NODE_W / 2, y: p.y + NODE_H / 2 + 4, 'text-anchor': 'middle' }, n.length > 22 ? `${n.slice(0, 21)}…` : n),
        h('title', {}, `${n}: click to search its traces`));
    }));
}

function edge(e, from, to) {
  const label = `${e.callCount} call${e.callCount === 1 ? '' : 's'}${e.errorCount ? ` · ${e.errorCount} error${e.errorCount === 1 ? '' : 's'}` : ''}`;
  const kind = e.errorCount ? 'error' : 'plain';
  let d, lx, ly;
  if (e.parent === e.child) {
    // A service calling itself: a loop above its box.
    const x = from.x + NODE_W / 2, y = from.y;
    d = `M${x - 20},${y} C${x - 40},${y - 40} ${x + 40},${y - 40} ${x + 20},${y}`;
    [lx, ly] = [x, y - 34];
  } else {
    const forward = to.x > from.x;
    const x1 = forward ? from.x + NODE_W : from.x + NODE_W / 2;
    const y1 = forward ? from.y + NODE_H / 2 : from.y + NODE_H;
    const x2 = forward ? to.x : to.x + NODE_W / 2;
    const y2 = forward ? to.y + NODE_H / 2 : to.y;
    const mx = (x1 + x2) / 2;
    d = forward ? `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` : `M${x1},${y1} C${x1 + 60},${(y1 + y2) / 2} ${x2 + 60},${(y1 + y2) / 2} ${x2},${y2}`;
    [lx, ly] = [mx, (y1 + y2) / 2 - 6];
  }
  return h('g', { class: `edge${e.errorCount ? ' error' : ''}`, 'data-parent': e.parent, 'data-child': e.child },
    h('path', { d, 'marker-end': `url(#arrow-${kind})` }),
    h('text', { x: lx, y: ly, 'text-anchor': 'middle' }, label));
}

function edgeTable(edges) {
  return h('table', { class: 'list edges' },
    h('tr', {}, h('th', {}, 'caller'), h('th', {}, 'callee'), h('th', {}, 'calls'), h('th', {}, 'errors')),
    edges.map((e) => h('tr', { 'data-parent': e.parent, 'data-child': e.child },
      h('td', {}, e.parent), h('td', {}, e.child),
      h('td', { class: 'num calls' }, e.callCount), h('td', { class: 'num errors' }, e.errorCount))));
}
