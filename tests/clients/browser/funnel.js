// The rates page of a backend with spans lost at three stages (tests/ui.rs,
// `loss_at_three_stages_in_the_funnel`): each service's funnel marks its
// loss at its stage with the reason, the all-services funnel marks all
// three and a Collector's hop with its loss, and a screenshot is kept. Usage: node funnel.js expectations.json
// Prints `{"ok":true,…}` at the end; a failed check throws and exits non-zero.
'use strict';

const path = require('path');
const { readExpectations, check, launch } = require('./chromium');

const expect = readExpectations();


async function main() {
  const browser = await launch(expect.chromium, { width: 1400, height: 900 });
  try {
    const page = browser.pages()[0] || await browser.newPage();
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
    await page.goto(`${expect.base}/#/rates`);
    await page.waitForSelector('main[data-route="#/rates"][data-state="ready"]', { timeout: 30000 });
    await page.waitForSelector('.over-time svg.chart', { timeout: 30000 });
    const lossRows = (service) => page.$$eval(`.funnel-card[data-service="${service}"] tr.loss`, (els) =>
      els.map((e) => [e.dataset.stage, e.querySelector('.lost').textContent]));
    for (const [service, stage, text] of expect.losses) {
      const rows = await lossRows(service);
      check(rows.length === 1 && rows[0][0] === stage && rows[0][1] === text,
        `${service}: one loss, at ${stage}, with its reason`, rows);
    }
    const all = (await lossRows('')).map(([stage]) => stage);
    for (const [, stage] of expect.losses) {
      check(all.includes(stage), `the all-services funnel marks the loss at ${stage}`, all);
    }
    // The Collector's hop shows in the all-services funnel, with its loss.
    const hop = await page.$$eval('.funnel-card[data-service=""] tr[data-stage="collector"]', (els) =>
      els.map((e) => (e.querySelector('.lost') || {}).textContent));
    check(hop.length === 1 && hop[0] === expect.collectorLoss, 'the collector hop with its loss', hop);
    check(errors.length === 0, 'no console errors', errors);
    const file = path.join(expect.screenshots, 'funnel-three-stages.png');
    await page.screenshot({ path: file, fullPage: true });
    console.log(JSON.stringify({ ok: true, screenshot: file, all }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
