// The waterfall: one row per visible span (the tree, with collapsed
// subtrees hidden), a bar per span placed to scale on the trace's time axis.
// Only the rows in view (plus a margin) exist in the DOM, so a trace of tens
// of thousands of spans scrolls as lightly as one of ten. The selected span
// and the collapsed rows are its state: given at the start, reported on change.

import { fmtDuration } from './api.js';
import { h } from './router.js';

const ROW = 24; // px; matches --row in style.css
const OVERSCAN = 20; // rows drawn beyond each edge of the view
const INDENT = 14; // px per tree level
const MAX_INDENT_LEVELS = 30; // deeper trees stop indenting (the depth is in the tooltip)
const MAX_AXIS_PARTS = 4; // the axis shows at most 0, ¼, ½, ¾ and the whole
const TICK_GAP = 4; // px kept free between two axis labels

export class Waterfall {
  /**
   * `state`: `{ selected, collapsed }` to start from (span ids of this trace);
   * `onSelect(span)` when a row is chosen; `onChange()` after any change of state.
   */
  constructor(model, state, onSelect, onChange) {
    this.model = model;
    this.onSelect = onSelect;
    this.onChange = onChange;
    this.collapsed = new Set(state.collapsed);
    this.selected = state.selected;
    this.spacer = h('div', { class: 'wf-spacer' });
    this.scroll = h('div', { class: 'wf-scroll', onscroll: () => this.schedule() }, this.spacer);
    this.ticks = h('div', { class: 'wf-ticks' });
    const axis = h('div', { class: 'wf-axis' }, h('div', { class: 'wf-label' }, 'Service: operation'), this.ticks);
    this.element = h('div', { class: 'waterfall', 'data-span-count': model.spans.length }, axis, this.scroll);
    this.drawn = { from: -1, to: -1 };
    this.layout();
  }

  /** Draws the first rows and keeps the view in step with the window's size. */
  mount() {
    this.reveal(this.selected);
    this.draw(true);
    this.drawAxis();
    new ResizeObserver(() => {
      this.draw(true);
      this.drawAxis();
    }).observe(this.scroll);
  }

  /**
   * The time axis from 0 to the trace's duration, in as many equal parts as
   * leave its labels apart at the current width (measured, not guessed:
   * the labels' widths depend on the durations and the font).
   */
  drawAxis() {
    const d = this.model.duration;
    for (let parts = MAX_AXIS_PARTS; parts >= 1; parts--) {
      const ticks = [];
      for (let i = 0; i <= parts; i++) {
        ticks.push(h('div', {
          class: `wf-tick${i === parts ? ' last' : ''}`,
          style: { left: `${(100 * i) / parts}%` },
        }, fmtDuration((i / parts) * d)));
      }
      this.ticks.replaceChildren(...ticks);
      const boxes = ticks.map((t) => t.getBoundingClientRect());
      if (boxes.every((b, i) => i === 0 || b.left >= boxes[i - 1].right + TICK_GAP)) return;
    }
  }

  /** Scrolls the row of span `id` into the middle of the view, if it is shown. */
  reveal(id) {
    const index = this.rows.findIndex((r) => r.span.id === id);
    if (index < 0) return;
    const height = this.scroll.clientHeight || 600;
    this.scroll.scrollTop = Math.max(0, index * ROW - height / 2);
  }

  /** The visible rows, depth-first, skipping collapsed subtrees. */
  layout() {
    const rows = [];
    const stack = [...this.model.roots].reverse().map((span) => [span, 0]);
    while (stack.length) {
      const [span, depth] = stack.pop();
      rows.push({ span, depth });
      if (!this.collapsed.has(span.id)) {
        for (let i = span.children.length - 1; i >= 0; i--) stack.push([span.children[i], depth + 1]);
      }
    }
    this.rows = rows;
    this.spacer.style.height = `${rows.length * ROW}px`;
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.draw(false);
    });
  }

  draw(force) {
    const height = this.scroll.clientHeight || 600;
    // After a collapse the browser may not have clamped scrollTop to the
    // shorter list yet; clamp it here so the rows still in view are drawn.
    const top = Math.min(this.scroll.scrollTop, Math.max(0, this.rows.length * ROW - height));
    const from = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const to = Math.min(this.rows.length, Math.ceil((top + height) / ROW) + OVERSCAN);
    if (!force && from === this.drawn.from && to === this.drawn.to) return;
    this.drawn = { from, to };
    const rows = [];
    for (let i = from; i < to; i++) rows.push(this.row(this.rows[i], i));
    this.spacer.replaceChildren(...rows);
  }

  row({ span, depth }, index) {
    const m = this.model;
    const s = span.raw;
    const left = ((span.start - m.start) / m.duration) * 100;
    const width = ((span.end - span.start) / m.duration) * 100;
    const critical = m.critical.has(span.id);
    const hasKids = span.children.length > 0;
    const toggle = h('button', {
      class: 'wf-toggle',
      'aria-label': hasKids ? 'collapse or expand' : null,
      onclick: (e) => {
        e.stopPropagation();
        if (hasKids) this.toggle(span.id);
      },
    }, hasKids ? (this.collapsed.has(span.id) ? '▸' : '▾') : '');
    const label = h('div', {
      class: 'wf-label',
      title: `${s.resource.serviceName}: ${s.name} (depth ${depth})`,
      style: { paddingLeft: `${4 + Math.min(depth, MAX_INDENT_LEVELS) * INDENT}px` },
    }, toggle, span.error ? h('span', { class: 'wf-err', title: 'error' }, '!') : null,
    h('span', { class: 'wf-service' }, s.resource.serviceName), s.name);
    const bar = h('div', {
      class: `wf-bar${span.error ? ' error' : ''}${critical ? ' critical' : ''}`,
      style: { left: `${left}%`, width: `${width}%` },
    });
    // The duration label sits inside a long bar, else right of the bar, or
    // left of it near the end of the axis.
    const place = width > 20 ? ['wf-dur inside', { left: `${left}%` }]
      : left + width > 80 ? ['wf-dur', { right: `${100 - left}%` }]
        : ['wf-dur', { left: `${left + width}%` }];
    const text = h('span', { class: place[0], style: place[1] }, fmtDuration(span.duration));
    return h('div', {
      class: `wf-row${this.selected === span.id ? ' selected' : ''}`,
      style: { top: `${index * ROW}px` },
      'data-span-id': span.id,
      'data-critical': critical ? 'true' : 'false',
      'data-error': span.error ? 'true' : 'false',
      onclick: () => this.select(span),
    }, label, h('div', { class: 'wf-track' }, bar, text));
  }

  select(span) {
    this.selected = span.id;
    for (const el of this.spacer.querySelectorAll('.wf-row.selected')) el.classList.remove('selected');
    this.spacer.querySelector(`[data-span-id="${span.id}"]`)?.classList.add('selected');
    this.onSelect(span);
    this.onChange();
  }

  toggle(id) {
    if (this.collapsed.has(id)) this.collapsed.delete(id);
    else this.collapsed.add(id);
    this.layout();
    this.draw(true);
    this.onChange();
  }

  setAllCollapsed(collapsed) {
    this.collapsed = new Set(collapsed ? this.model.spans.filter((s) => s.children.length).map((s) => s.id) : []);
    this.layout();
    this.draw(true);
    this.onChange();
  }
}
