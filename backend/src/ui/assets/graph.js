// Service graph page: the calls between services over a chosen window, as a
// layered drawing (callers left of the services they call) and as a table.
// dagre (vendored in dagre.min.js) lays it out: a call that skips layers is
// routed through the gaps between boxes, and each label is placed as a node
// of its own beside its edge, so labels overlap neither boxes nor each
// other. Lines then run level through each layer and turn only in the
// empty gaps between layers, so no line crosses a box or a label.

import { graphlib, layout } from './dagre.min.js';
import { api, byName } from './api.js';
import { emptyDatabase, errorMessage, go, h, message, rangePicker, windowOf } from './router.js';

const NODE_H = 34, NODE_PAD_X = 14, NAME_MAX = 22, LABEL_H = 16, PORT_INSET = 6;
const EDGE_MIN_W = 1.5, EDGE_MAX_W = 7;

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
  const names = [...new Set([...(edges.length ? services : []), ...edges.flatMap((e) => [e.parent, e.child])])].sort(byName);
  if (names.length) main.append(h('div', { class: 'graph-scroll' }, drawGraph(names, edges)));
  if (edges.length) main.append(h('div', { class: 'table-scroll' }, edgeTable(edges)));
}

/** Text width in px for the SVG's font, so boxes and label slots fit their text. */
function measurer() {
  const context = document.createElement('canvas').getContext('2d');
  const family = getComputedStyle(document.documentElement).fontFamily;
  return (text, size) => {
    context.font = `${size}px ${family}`;
    return Math.ceil(context.measureText(text).width);
  };
}

const shortName = (n) => (n.length > NAME_MAX ? `${n.slice(0, NAME_MAX - 1)}…` : n);

function callLabel(e) {
  const calls = `${e.callCount} call${e.callCount === 1 ? '' : 's'}`;
  return e.errorCount ? `${calls} · ${e.errorCount} error${e.errorCount === 1 ? '' : 's'}` : calls;
}

/** Stroke width on a log scale of calls: 1 call thin, the busiest edge thickest. */
function edgeWidth(calls, most) {
  if (most <= 1) return EDGE_MIN_W;
  return EDGE_MIN_W + ((EDGE_MAX_W - EDGE_MIN_W) * Math.log(Math.max(calls, 1))) / Math.log(most);
}

/** Positions from dagre: node centres, edge polylines and label centres. */
function place(names, edges) {
  const width = measurer();
  const g = new graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 90, edgesep: 14, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  // One width for every box, so a layer's boxes end where the layer ends.
  const boxWidth = Math.max(...names.map((n) => width(shortName(n), 13))) + 2 * NODE_PAD_X;
  for (const n of names) g.setNode(n, { width: boxWidth, height: NODE_H });
  for (const e of edges) {
    g.setEdge(e.parent, e.child, { width: width(callLabel(e), 11) + 8, height: LABEL_H, labelpos: 'l', labeloffset: 4 });
  }
  layout(g);
  return g;
}

/** Half the width of each layer, by its centre x: its widest box or label. */
function layerHalfWidths(g) {
  const half = new Map();
  const widen = (x, w) => half.set(Math.round(x), Math.max(half.get(Math.round(x)) || 0, w / 2));
  for (const n of g.nodes()) widen(g.node(n).x, g.node(n).width);
  for (const e of g.edges()) {
    const label = g.edge(e);
    if (Number.isFinite(label.x)) widen(label.x, label.width);
  }
  return half;
}

/**
 * The line of one call: out of the caller's side, level across every layer
 * it passes (each of dagre's bends widened to the layer's full width), and
 * into the callee's side; it turns only in the gaps between layers.
 */
function route(points, from, to, half) {
  const dir = Math.sign(to.x - from.x) || 1;
  const port = (box, side, y) => ({
    x: box.x + side * (box.width / 2),
    y: Math.min(Math.max(y, box.y - box.height / 2 + PORT_INSET), box.y + box.height / 2 - PORT_INSET),
  });
  const line = [port(from, dir, points[0].y)];
  for (const p of points.slice(1, -1)) {
    const w = half.get(Math.round(p.x)) || 0;
    line.push({ x: p.x - dir * w, y: p.y }, { x: p.x + dir * w, y: p.y });
  }
  line.push(port(to, -dir, points[points.length - 1].y));
  return line;
}

function drawGraph(names, edges) {
  const g = place(names, edges);
  const { width: W, height: H } = g.graph();
  const most = Math.max(...edges.map((e) => e.callCount), 1);
  const half = layerHalfWidths(g);
  const line = (e) => (e.parent === e.child ? g.edge(e.parent, e.child).points
    : route(g.edge(e.parent, e.child).points, g.node(e.parent), g.node(e.child), half));
  return h('svg', { class: 'graph', width: Math.ceil(W), height: Math.ceil(H), viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'service graph' },
    h('defs', {}, ['plain', 'error'].map((kind) => h('marker', {
      // In user space, so a thick edge keeps a normal-sized arrowhead.
      id: `arrow-${kind}`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 10, markerHeight: 10,
      markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse',
    }, h('path', { d: 'M0,0 L10,5 L0,10 z', class: `arrowhead ${kind}` })))),
    edges.map((e) => edge(e, line(e), edgeWidth(e.callCount, most))),
    // Labels over every line, so a line that passes close by never covers one.
    edges.map((e) => edgeLabel(e, g.edge(e.parent, e.child))),
    names.map((n) => node(n, g.node(n))));
}

function node(name, at) {
  const x = at.x - at.width / 2, y = at.y - at.height / 2;
  // A click searches the service's traces (an SVG <a> would need its own namespace).
  return h('g', { class: 'node', 'data-service': name, onclick: () => go('search', '', { service: name }) },
    h('rect', { x, y, width: at.width, height: at.height, rx: 6 }),
    h('text', { x: at.x, y: at.y + 4.5, 'text-anchor': 'middle' }, shortName(name)),
    h('title', {}, `${name}: click to search its traces`));
}

function edge(e, points, strokeWidth) {
  const kind = e.errorCount ? 'error' : 'plain';
  // Straight segments: a smoothed curve could cut a box's corner.
  const d = points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
  return h('g', { class: `edge${e.errorCount ? ' error' : ''}`, 'data-parent': e.parent, 'data-child': e.child },
    h('path', { d, style: { strokeWidth: `${strokeWidth.toFixed(2)}px` }, 'marker-end': `url(#arrow-${kind})` }),
    h('title', {}, `${e.parent} → ${e.child}: ${callLabel(e)}`));
}

function edgeLabel(e, laid) {
  return h('text', {
    class: `edge-label${e.errorCount ? ' error' : ''}`, 'data-parent': e.parent, 'data-child': e.child,
    x: laid.x, y: laid.y + 4, 'text-anchor': 'middle',
  }, callLabel(e));
}

function edgeTable(edges) {
  return h('table', { class: 'list edges' },
    h('tr', {}, h('th', {}, 'caller'), h('th', {}, 'callee'), h('th', {}, 'calls'), h('th', {}, 'errors')),
    edges.map((e) => h('tr', { 'data-parent': e.parent, 'data-child': e.child },
      h('td', {}, e.parent), h('td', {}, e.child),
      h('td', { class: 'num calls' }, e.callCount), h('td', { class: 'num errors' }, e.errorCount))));
}
