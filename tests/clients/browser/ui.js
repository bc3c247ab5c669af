// Drives Debian's Chromium through otelite's web UI with playwright-core and
// checks each page against what the Rust test seeded (tests/ui.rs). Usage:
//   node ui.js expectations.json
// Prints one JSON line `{"ok":true,"screenshots":[…],"figures":{…}}` at the
// end; any failed check throws, prints the reason and exits non-zero.
'use strict';

const path = require('path');
const { readExpectations, check, launch } = require('./chromium');

const expect = readExpectations();
const PX = 1.0; // tolerance for bar positions and widths, in CSS pixels


async function main() {
  const browser = await launch(expect.chromium, { width: 1400, height: 900 });
  const shots = [];
  const figures = {};
  try {
    const page = browser.pages()[0] || await browser.newPage();
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));

    // Opens a view and waits until its page says it is drawn.
    const open = async (base, hash) => {
      errors.length = 0;
      if (page.url().startsWith(base)) await page.evaluate((h) => { location.hash = h; }, hash);
      else await page.goto(`${base}/${hash}`);
      await page.waitForSelector(`main[data-route="${hash}"][data-state="ready"]`, { timeout: 30000 });
    };
    // Fails on console errors except the ones this view is expected to cause.
    const noConsoleErrors = (view, allowed = []) => {
      const bad = errors.filter((e) => !allowed.some((re) => re.test(e)));
      check(bad.length === 0, `${view}: console errors`, bad);
    };
    const shot = async (name) => {
      const file = path.join(expect.screenshots, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      shots.push(file);
    };
    const text = (selector) => page.$eval(selector, (el) => el.textContent);

    await searchPage(page, open, noConsoleErrors, shot, text);
    await tracePage(page, open, noConsoleErrors, shot, text, figures);
    await bigTrace(page, open, noConsoleErrors, shot, figures);
    await ratesPage(page, open, noConsoleErrors, shot);
    await graphPage(page, open, noConsoleErrors, shot);
    await graphLayout(page, open, noConsoleErrors, shot);
    await traceStateInUrl(page, open, noConsoleErrors);
    await operationsInNaturalOrder(page, open, noConsoleErrors);
    await narrowScreens(page, open, noConsoleErrors, shot);
    await messages(page, open, noConsoleErrors, shot, text);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify({ ok: true, screenshots: shots, figures }));
}

async function searchPage(page, open, noConsoleErrors, shot, text) {
  const { checkout, health } = expect.traces;
  await open(expect.base, '#/search');
  const ids = await page.$$eval('.result[data-trace-id]', (els) => els.map((e) => e.dataset.traceId));
  for (const t of [checkout, health]) check(ids.includes(t.id), `search lists trace ${t.id}`, ids);
  const title = await text(`.result[data-trace-id="${checkout.id}"] .result-title`);
  check(title === `frontend: ${checkout.root}`, 'search shows the root of the checkout trace', title);
  const foot = await text(`.result[data-trace-id="${checkout.id}"] .result-foot`);
  check(foot.includes(`${checkout.spans.length} spans`) && foot.includes('2 errors'), 'span and error counts', foot);
  const chips = await page.$$eval(`.result[data-trace-id="${checkout.id}"] .chip`, (els) => els.map((e) => e.textContent));
  check(chips.join() === 'frontend (4),payments (2)', 'services with their span counts', chips);
  const dots = await page.$$eval('svg.scatter circle', (els) => els.map((e) => e.dataset.traceId));
  check(dots.includes(checkout.id) && dots.includes(health.id), 'a scatter dot per trace', dots);
  noConsoleErrors('search');
  await shot('search');

  // Filters live in the URL: only the checkout trace has an error in payments.
  await open(expect.base, '#/search?service=payments&error=1');
  const filtered = await page.$$eval('.result[data-trace-id]', (els) => els.map((e) => e.dataset.traceId));
  check(filtered.length === 1 && filtered[0] === checkout.id, 'service + error filter', filtered);
  await page.waitForSelector('select[name=operation] option[value="POST /charge"]', { state: 'attached' });
  noConsoleErrors('search with filters');

  // The filter form writes the URL; the operation list follows the service.
  await open(expect.base, '#/search');
  await page.selectOption('select[name=service]', 'frontend');
  await page.waitForSelector(`select[name=operation] option[value="${checkout.root}"]`, { state: 'attached' });
  await page.selectOption('select[name=operation]', health.root);
  await page.click('form button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('operation='));
  const hash = await page.evaluate(() => location.hash);
  await page.waitForSelector(`main[data-route="${hash}"][data-state="ready"]`);
  const byOperation = await page.$$eval('.result[data-trace-id]', (els) => els.map((e) => e.dataset.traceId));
  check(byOperation.length === 1 && byOperation[0] === health.id, 'operation filter from the form', { hash, byOperation });
  noConsoleErrors('search form');
}

async function tracePage(page, open, noConsoleErrors, shot, text, figures) {
  const { checkout } = expect.traces;
  // A trace id typed into the header opens the trace from any page.
  await open(expect.base, '#/rates');
  await page.fill('#trace-jump input', checkout.id.toUpperCase());
  await page.click('#trace-jump button');
  const hash = `#/trace/${checkout.id}`;
  await page.waitForSelector(`main[data-route="${hash}"][data-state="ready"]`, { timeout: 30000 });
  check((await text('.trace-head h1')) === `frontend: ${checkout.root}`, 'trace title');

  const rows = await page.$$eval('.wf-row', (els) => els.map((row) => {
    const track = row.querySelector('.wf-track').getBoundingClientRect();
    const bar = row.querySelector('.wf-bar').getBoundingClientRect();
    return {
      id: row.dataset.spanId,
      name: row.querySelector('.wf-label').textContent,
      left: bar.left - track.left,
      width: bar.width,
      track: track.width,
      critical: row.dataset.critical === 'true',
      error: row.dataset.error === 'true',
      duration: row.querySelector('.wf-dur').textContent,
    };
  }));
  check(rows.length === checkout.spans.length, 'one waterfall row per span', rows.map((r) => r.name));
  const order = rows.map((r) => r.id);
  check(JSON.stringify(order) === JSON.stringify(checkout.spans.map((s) => s.id)), 'rows in tree order',
    { got: rows.map((r) => r.name), want: checkout.spans.map((s) => s.name) });
  let worst = 0;
  for (const span of checkout.spans) {
    const row = rows.find((r) => r.id === span.id);
    const left = (span.offsetNs / checkout.durationNs) * row.track;
    const width = (span.durationNs / checkout.durationNs) * row.track;
    worst = Math.max(worst, Math.abs(row.left - left), Math.abs(row.width - width));
    check(Math.abs(row.left - left) <= PX && Math.abs(row.width - width) <= PX,
      `bar of ${span.name} to scale`, { want: { left, width }, got: row });
    check(row.critical === span.critical, `critical path mark of ${span.name}`, row);
    check(row.error === span.error, `error mark of ${span.name}`, row);
    check(row.name.includes(span.name) && row.name.includes(span.service), `label of ${span.name}`, row.name);
  }
  figures.worstBarErrorPx = Number(worst.toFixed(3));
  // The root lasts as long as the trace: its label is exact too, whatever
  // the start time does to the timestamps as doubles (100.0ms was possible).
  const root = rows.find((r) => r.id === checkout.spans[0].id);
  check(root.duration === checkout.durationText, 'the root span\'s duration label', root);
  const axis = await page.$$eval('.wf-tick', (els) => els.map((e) => e.textContent));
  check(axis[0] === '0' && axis[axis.length - 1] === checkout.durationText, 'time axis from 0 to the duration', axis);

  // The detail panel of the failed span: status, attributes, event, resource, scope.
  const charge = checkout.spans.find((s) => s.name === 'charge');
  await page.click(`.wf-row[data-span-id="${charge.id}"]`);
  const detail = await text('.detail');
  for (const want of ['charge', 'error: payment declined', 'payment.amount', '42.5', 'retry', 'attempt',
    '+20.0ms in the span', 'deployment.environment.name', 'e2e', 'otelite-e2e-ui', charge.id]) {
    check(detail.includes(want), `detail panel shows ${want}`, detail);
  }
  // Collapsing the charge span hides its two descendants.
  await page.click(`.wf-row[data-span-id="${charge.id}"] .wf-toggle`);
  check((await page.$$('.wf-row')).length === checkout.spans.length - 2, 'collapse hides the subtree');
  noConsoleErrors('trace');
  await page.click(`.wf-row[data-span-id="${charge.id}"] .wf-toggle`);
  await page.click(`.wf-row[data-span-id="${charge.id}"]`);
  await shot('trace');
}

async function bigTrace(page, open, noConsoleErrors, shot, figures) {
  const { big } = expect.traces;
  const began = Date.now();
  await open(expect.base, `#/trace/${big.id}`);
  figures.bigTraceOpenMs = Date.now() - began; // reported, never asserted
  const first = await page.$eval('.waterfall', (el) => Number(el.dataset.spanCount));
  check(first === big.firstPage, 'a trace past max_spans_per_answer opens with its first page', first);
  check((await page.$('.truncated')) !== null, 'a note says the trace is shown in part');
  await page.click('text=Load more spans');
  await page.waitForFunction((n) => Number(document.querySelector('.waterfall')?.dataset.spanCount) === n,
    big.spanCount, { timeout: 30000 });
  check((await page.$('.truncated')) === null, 'no note once every span is loaded');
  const count = await page.$eval('.waterfall', (el) => Number(el.dataset.spanCount));
  check(count === big.spanCount, 'the big trace has all its spans', count);
  const drawn = (await page.$$('.wf-row')).length;
  check(drawn > 10 && drawn < 200, 'only the rows in view are in the DOM', drawn);
  figures.bigTraceRowsInDom = drawn;
  await page.$eval('.wf-scroll', (el) => { el.scrollTop = el.scrollHeight; });
  await page.waitForSelector(`.wf-row[data-span-id="${big.lastSpanId}"]`, { timeout: 10000 });
  check((await page.$$('.wf-row')).length < 200, 'still few rows after scrolling to the end');
  await page.click('text=Collapse all');
  // A redraw may follow on the next frame (the scroll event of the shorter list).
  const collapsed = await page.waitForFunction(() => document.querySelectorAll('.wf-row').length === 1, null, { timeout: 5000 })
    .then(() => 1, async () => (await page.$$('.wf-row')).length);
  check(collapsed === 1, 'collapse all leaves the root', collapsed);
  await page.click('text=Expand all');
  noConsoleErrors('big trace');
  await shot('trace-10k');
}

async function ratesPage(page, open, noConsoleErrors, shot) {
  await open(expect.base, '#/rates');
  await page.waitForSelector('.over-time svg.chart');
  for (const [service, stored] of Object.entries(expect.stored)) {
    const n = await page.$eval(`.funnel-card[data-service="${service}"] tr[data-stage="store"]`, (el) => el.dataset.n);
    check(Number(n) === stored, `store count of ${service}`, n);
    const stages = await page.$$eval(`.funnel-card[data-service="${service}"] tr[data-stage]`, (els) => els.map((e) => e.dataset.stage));
    check(stages.join() === 'total,collect,transmit,process,analyze,store', `the stages of ${service}`, stages);
  }
  const all = await page.$eval('.funnel-card[data-service=""] tr[data-stage="store"]', (el) => el.dataset.n);
  const sum = Object.values(expect.stored).reduce((a, b) => a + b, 0);
  check(Number(all) === sum, 'store count of all services', all);
  const lines = await page.$$eval('.over-time polyline', (els) => els.map((e) => e.dataset.stage));
  check(lines.includes('store'), 'a line per stage over time', lines);
  // The spans the SDK dropped show as a loss at collect, and nowhere else.
  const losses = await page.$$eval('.funnel-card[data-service="lossy"] tr.loss', (els) =>
    els.map((e) => [e.dataset.stage, e.querySelector('.lost').textContent]));
  // With its reason, as the SDK's counter named it.
  check(losses.length === 1 && losses[0][0] === 'collect'
    && losses[0][1] === `−${expect.lossAtCollect} lost (queue_full ${expect.lossAtCollect})`,
    'the loss at collect is marked with its reason', losses);
  // Spans a rule dropped: labelled with the rule and their share, not a
  // loss, in a colour of their own.
  const drop = expect.policyDrop;
  const dropped = await page.$$eval(`.funnel-card[data-service="${drop.service}"] .dropped`, (els) =>
    els.map((e) => ({
      stage: e.closest('tr').dataset.stage,
      rule: e.dataset.rule,
      text: e.textContent,
      loss: e.closest('tr').classList.contains('loss'),
      colour: getComputedStyle(e).color,
    })));
  check(dropped.length === 1 && dropped[0].stage === drop.stage && dropped[0].rule === drop.rule
    && dropped[0].text === drop.text && !dropped[0].loss,
    'the policy drop is labelled with its rule, not as a loss', dropped);
  const lostColour = await page.$eval('.funnel-card[data-service="lossy"] .lost', (e) => getComputedStyle(e).color);
  check(dropped.length === 1 && dropped[0].colour !== lostColour, 'policy drops in another colour than losses',
    [dropped[0]?.colour, lostColour]);
  const noisyLosses = await page.$$(`.funnel-card[data-service="${drop.service}"] .lost`);
  check(noisyLosses.length === 0, 'the drop is not shown as lost');
  // The lossy service's spans name one remote parent that never came: the
  // upstream loss estimate under its funnel, labelled as an estimate.
  const estimate = await page.$eval('.funnel-card[data-service="lossy"] .estimate', (e) =>
    ({ lowerBound: Number(e.dataset.lowerBound), orphans: Number(e.dataset.orphans), text: e.textContent }));
  check(estimate.lowerBound === 1 && estimate.orphans === expect.stored.lossy
    && estimate.text.startsWith('Upstream loss (estimate): at least 1 span lost before otelite'),
    'the upstream loss estimate, labelled', estimate);
  noConsoleErrors('rates');
  await shot('rates');

  // Over time for the lossy service alone: the slice with the loss is banded.
  await page.click('.funnel-card[data-service="lossy"] h2 a.muted');
  await page.waitForSelector('main[data-route="#/rates?service=lossy"][data-state="ready"]');
  await page.waitForSelector('.over-time svg.chart');
  check((await page.$$('.over-time rect.lossband')).length >= 1, 'a loss band over time');
  check((await page.$eval('.over-time select', (s) => s.value)) === 'lossy', 'the chart is for the chosen service');
  noConsoleErrors('rates for one service');
  await shot('rates-lossy');
}

async function graphPage(page, open, noConsoleErrors, shot) {
  await open(expect.base, '#/graph');
  for (const e of expect.edges) {
    const sel = `table.edges tr[data-parent="${e.parent}"][data-child="${e.child}"]`;
    const row = await page.$eval(sel, (tr) => [tr.querySelector('.calls').textContent, tr.querySelector('.errors').textContent]);
    check(row[0] === String(e.callCount) && row[1] === String(e.errorCount), `edge ${e.parent} → ${e.child}`, row);
    check(await page.$(`svg.graph g.edge[data-parent="${e.parent}"][data-child="${e.child}"] path`), `arrow ${e.parent} → ${e.child}`);
  }
  const nodes = await page.$$eval('svg.graph g.node', (els) => els.map((e) => {
    const box = e.querySelector('rect').getBoundingClientRect();
    return { service: e.dataset.service, text: e.querySelector('text').textContent, drawn: box.width > 50 && box.height > 10 };
  }));
  check(nodes.map((n) => n.service).join() === Object.keys(expect.stored).sort().join(), 'a node per service, callers or not', nodes);
  check(nodes.every((n) => n.drawn && n.text === n.service), 'each node drawn with its name', nodes);
  noConsoleErrors('graph');
  await shot('graph');
  await page.click('svg.graph g.node[data-service="payments"]');
  await page.waitForSelector('main[data-route="#/search?service=payments"][data-state="ready"]');
}

// A graph that provoked the hand-made layout: every edge leaves its caller's
// box and reaches its callee's, crosses no other box, is as wide as its
// call count ranks it, and no label overlaps another label, a box or a line.
async function graphLayout(page, open, noConsoleErrors, shot) {
  await open(expect.graph.base, '#/graph');
  const drawn = await page.$eval('svg.graph', (svg) => {
    const rect = (el) => { const r = el.getBoundingClientRect(); return { left: r.left, top: r.top, right: r.right, bottom: r.bottom }; };
    const label = (g) => svg.querySelector(`text[data-parent="${g.dataset.parent}"][data-child="${g.dataset.child}"]`);
    const boxes = Object.fromEntries([...svg.querySelectorAll('g.node')].map((g) => [g.dataset.service, rect(g.querySelector('rect'))]));
    const edges = [...svg.querySelectorAll('g.edge')].map((g) => {
      const path = g.querySelector('path');
      const matrix = path.getScreenCTM();
      const length = path.getTotalLength();
      const points = [];
      for (let at = 0; at <= length; at += 2) {
        const p = new DOMPoint(path.getPointAtLength(at).x, path.getPointAtLength(at).y).matrixTransform(matrix);
        points.push([p.x, p.y]);
      }
      const end = path.getPointAtLength(length);
      const last = new DOMPoint(end.x, end.y).matrixTransform(matrix);
      points.push([last.x, last.y]);
      return {
        parent: g.dataset.parent,
        child: g.dataset.child,
        points,
        width: parseFloat(getComputedStyle(path).strokeWidth),
        label: label(g).textContent,
        labelBox: rect(label(g)),
      };
    });
    return { boxes, edges };
  });
  const inside = ([x, y], b, margin) => x > b.left + margin && x < b.right - margin && y > b.top + margin && y < b.bottom - margin;
  const near = ([x, y], b) => x >= b.left - 3 && x <= b.right + 3 && y >= b.top - 3 && y <= b.bottom + 3;
  const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const { edges } = expect.graph;
  const services = new Set(edges.flatMap((e) => [e.parent, e.child]));
  check(Object.keys(drawn.boxes).sort().join() === [...services].sort().join(), 'a box per service', Object.keys(drawn.boxes));
  check(drawn.edges.length === edges.length, 'an arrow per edge', drawn.edges.length);
  for (const want of edges) {
    const e = drawn.edges.find((d) => d.parent === want.parent && d.child === want.child);
    const name = `${want.parent} → ${want.child}`;
    check(e, `arrow ${name}`);
    check(e.label.includes(`${want.callCount} calls`) && e.label.includes(want.errorCount ? `${want.errorCount} error` : ''),
      `label of ${name}`, e.label);
    check(near(e.points[0], drawn.boxes[want.parent]), `${name} leaves ${want.parent}'s box`, { at: e.points[0], box: drawn.boxes[want.parent] });
    check(near(e.points[e.points.length - 1], drawn.boxes[want.child]), `${name} reaches ${want.child}'s box`,
      { at: e.points[e.points.length - 1], box: drawn.boxes[want.child] });
    for (const [service, box] of Object.entries(drawn.boxes)) {
      if (service === want.parent || service === want.child) continue;
      const hit = e.points.find((p) => inside(p, box, 1));
      check(!hit, `${name} crosses no other box`, { crosses: service, at: hit, box });
    }
    for (const [service, box] of Object.entries(drawn.boxes)) {
      check(!overlap(e.labelBox, box), `label of ${name} off the boxes`, { label: e.label, box: service });
    }
    for (const other of drawn.edges) {
      const line = `${other.parent} → ${other.child}`;
      const hit = other.points.find((p) => inside(p, e.labelBox, 1));
      check(!hit, `label of ${name} not crossed by the line ${line}`, { label: e.label, at: hit });
      if (other === e) continue;
      check(!overlap(e.labelBox, other.labelBox), `labels of ${name} and ${line} apart`, [e.label, other.label]);
    }
  }
  const byCalls = [...edges].sort((a, b) => b.callCount - a.callCount);
  const widthOf = (w) => drawn.edges.find((d) => d.parent === w.parent && d.child === w.child).width;
  check(widthOf(byCalls[0]) > widthOf(byCalls[byCalls.length - 1]), 'the busiest edge is drawn wider than the quietest',
    [widthOf(byCalls[0]), widthOf(byCalls[byCalls.length - 1])]);
  noConsoleErrors('graph layout');
  await shot('graph-layout');
}

// The selected span and collapsed rows are in the URL and survive a reload.
async function traceStateInUrl(page, open, noConsoleErrors) {
  const { checkout } = expect.traces;
  const named = (name) => checkout.spans.find((s) => s.name === name);
  await open(expect.base, `#/trace/${checkout.id}`);
  await page.click(`.wf-row[data-span-id="${named('load-cart').id}"]`);
  await page.click(`.wf-row[data-span-id="${named('charge').id}"] .wf-toggle`);
  await page.reload();
  await page.waitForSelector('main[data-page="trace"][data-state="ready"]', { timeout: 30000 });
  const rows = await page.$$eval('.wf-row', (els) => els.map((e) => e.dataset.spanId));
  const hidden = [named('POST /charge').id, named('db.query').id];
  check(rows.length === checkout.spans.length - 2 && !rows.some((id) => hidden.includes(id)),
    'the collapsed subtree stays collapsed after a reload', rows);
  const selected = await page.$$eval('.wf-row.selected', (els) => els.map((e) => e.dataset.spanId));
  check(selected.join() === named('load-cart').id, 'the selected span stays selected after a reload', selected);
  const detail = await page.$eval('.detail-body', (el) => el.dataset.spanId).catch(() => null);
  check(detail === named('load-cart').id, 'the detail panel shows the selected span after a reload', detail);
  noConsoleErrors('trace state after reload');
}

// `batch 2` before `batch 10`: numbers in names sort by value.
async function operationsInNaturalOrder(page, open, noConsoleErrors) {
  await open(expect.base, '#/search?service=batch-job');
  await page.waitForSelector('select[name=operation] option[value="batch 10"]', { state: 'attached' });
  const ops = await page.$$eval('select[name=operation] option', (els) => els.map((e) => e.value).filter(Boolean));
  const before = [['batch 2', 'batch 10'], ['batch 9', 'batch 10'], ['batch 10', 'batch 98'], ['item 1.2', 'item 1.10'],
    ['item 2.0', 'item 10.0'], ['batch 98', 'item 0.0']];
  for (const [a, b] of before) {
    check(ops.includes(a) && ops.includes(b) && ops.indexOf(a) < ops.indexOf(b), `operation ${a} listed before ${b}`, ops.slice(0, 12));
  }
  noConsoleErrors('operations');
}

// From 400 px up: no page scrolls sideways, the waterfall's bars have room,
// its axis labels stay apart, and no timestamp is broken across lines.
async function narrowScreens(page, open, noConsoleErrors, shot) {
  const { checkout } = expect.traces;
  const root = checkout.spans[0];
  const charge = checkout.spans.find((s) => s.name === 'charge');
  const sideways = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  for (const width of [400, 420, 768]) {
    await page.setViewportSize({ width, height: 800 });
    for (const view of ['#/search', '#/rates', '#/graph']) {
      await open(expect.base, view);
      check(await sideways() <= 0, `${view} at ${width} px does not scroll sideways`, await sideways());
    }
    await open(expect.base, '#/search?range=7d');
    const results = await page.$eval('.search-results', (el) => el.getBoundingClientRect().width);
    check(results >= width * 0.6, `search results have room at ${width} px`, results);
    await open(expect.base, `#/trace/${checkout.id}`);
    await page.click(`.wf-row[data-span-id="${charge.id}"]`);
    check(await sideways() <= 0, `the trace at ${width} px does not scroll sideways`, await sideways());
    const bar = await page.$eval(`.wf-row[data-span-id="${root.id}"] .wf-bar`, (el) => el.getBoundingClientRect().width);
    check(bar >= 150, `the root's bar has room at ${width} px`, bar);
    const ticks = await page.$$eval('.wf-tick', (els) => els.map((el) => {
      const range = document.createRange();
      range.selectNodeContents(el);
      const r = range.getBoundingClientRect();
      return { text: el.textContent, left: r.left, right: r.right };
    }));
    const axis = await page.$eval('.wf-ticks', (el) => { const r = el.getBoundingClientRect(); return { left: r.left, right: r.right }; });
    ticks.sort((a, b) => a.left - b.left);
    check(ticks.length >= 2, `at least two axis labels at ${width} px`, ticks);
    check(ticks.every((t, i) => i === 0 || t.left >= ticks[i - 1].right + 4), `axis labels apart at ${width} px`, ticks);
    check(ticks.every((t) => t.left >= axis.left - 1 && t.right <= axis.right + 1), `axis labels within the axis at ${width} px`, { ticks, axis });
    const broken = await page.evaluate(() => {
      const stamp = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}/g;
      const found = [];
      const walk = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
      for (let node = walk.nextNode(); node; node = walk.nextNode()) {
        for (const m of node.textContent.matchAll(stamp)) {
          const range = document.createRange();
          range.setStart(node, m.index);
          range.setEnd(node, m.index + m[0].length);
          const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
          found.push({ text: m[0], lines: lines.size });
        }
      }
      return found;
    });
    check(broken.length >= 2, `timestamps shown on the trace page at ${width} px`, broken);
    check(broken.every((t) => t.lines === 1), `no timestamp broken across lines at ${width} px`, broken);
    noConsoleErrors(`trace at ${width} px`);
    await shot(`trace-${width}px`);
  }
  await page.setViewportSize({ width: 1400, height: 900 });
}

async function messages(page, open, noConsoleErrors, shot, text) {
  const notFound = /Failed to load resource.*404/;
  await open(expect.base, `#/trace/${expect.unknownTraceId}`);
  check((await text('.message')).includes('Trace not found'), 'unknown trace message');
  noConsoleErrors('unknown trace', [notFound]);
  await shot('trace-not-found');

  await open(expect.base, '#/trace/not-a-trace-id');
  const bad = await text('.message.error');
  check(bad.includes('400') && bad.includes('32 hex digits'), 'a backend error is shown with its reason', bad);
  noConsoleErrors('bad trace id', [/Failed to load resource.*400/]);

  // The backend gone: every API call fails in the network layer.
  await page.route('**/api/**', (route) => route.abort());
  await open(expect.base, '#/graph');
  check((await text('.message.error')).includes('cannot be reached'), 'an unreachable backend is named as such');
  noConsoleErrors('backend unreachable', [/Failed to load resource/]);
  await shot('backend-unreachable');
  await page.unroute('**/api/**');

  await page.fill('#trace-jump input', 'xyz');
  await page.click('#trace-jump button');
  check((await text('.jump-error')).includes('32 hex digits'), 'the trace box refuses a non-id');

  for (const view of ['#/search', '#/rates', '#/graph']) {
    await open(expect.emptyBase, view);
    const shown = await text('main');
    check(shown.includes('No spans stored yet'), `empty database message on ${view}`, shown);
    noConsoleErrors(`empty ${view}`);
  }
  await open(expect.emptyBase, '#/search');
  await shot('empty-database');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
