// The web UI against a backend started with --query-token (tests/ui.rs,
// `sign_in_with_the_query_token`). Usage: node signin.js expectations.json
// Prints `{"ok":true,…}` at the end; a failed check throws and exits non-zero.
'use strict';

const path = require('path');
const { readExpectations, check, launch } = require('./chromium');

const expect = readExpectations();


async function main() {
  const browser = await launch(expect.chromium, { width: 1200, height: 800 });
  try {
    const page = browser.pages()[0] || await browser.newPage();
    const errors = [];
    const urls = [];
    const authorized = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
    page.on('request', (r) => {
      urls.push(r.url());
      if (r.url().includes('/api/')) authorized.push(r.headers().authorization || null);
    });
    const text = (selector) => page.$eval(selector, (el) => el.textContent);
    const signInShown = () => page.waitForSelector('main[data-state="sign-in"] form#sign-in', { timeout: 30000 });
    const submit = async (token) => {
      await page.fill('form#sign-in input[name=token]', token);
      await page.click('form#sign-in button[type=submit]');
    };
    const searchShows = async () => {
      await page.waitForSelector('main[data-route="#/search"][data-state="ready"]', { timeout: 30000 });
      await page.waitForSelector(`.result[data-trace-id="${expect.traceId}"]`, { timeout: 30000 });
      const title = await text(`.result[data-trace-id="${expect.traceId}"] .result-title`);
      check(title === `signed-in: ${expect.root}`, 'the seeded trace is listed', title);
    };

    // No token yet: the API answers 401 and the form replaces the page.
    await page.goto(`${expect.base}/#/search`);
    await signInShown();
    check(!(await page.isVisible('#sign-out')), 'no sign-out button before signing in');
    check((await page.$$('.result')).length === 0, 'no trace shows before signing in');
    await page.screenshot({ path: path.join(expect.screenshots, 'sign-in.png'), fullPage: true });

    // A wrong token: refused, said so, and not kept.
    await submit(expect.wrongToken);
    await page.waitForSelector('form#sign-in .sign-in-error', { timeout: 30000 });
    const refused = await text('form#sign-in .sign-in-error');
    check(refused.includes('refused'), 'a wrong token is refused with a message', refused);
    check(await page.evaluate(() => sessionStorage.getItem('otelite.queryToken')) === null,
      'a refused token is forgotten');

    // The right token: the search page lists the seeded trace.
    await submit(expect.token);
    await searchShows();
    check(await page.isVisible('#sign-out'), 'a sign-out button once signed in');
    check(await page.evaluate(() => sessionStorage.getItem('otelite.queryToken')) === expect.token,
      'the token is kept in sessionStorage');
    check(await page.evaluate(() => localStorage.length) === 0, 'nothing in localStorage');

    // A reload in the same tab keeps the session; the trace page loads too.
    await page.reload();
    await searchShows();
    await page.evaluate((id) => { location.hash = `#/trace/${id}`; }, expect.traceId);
    await page.waitForSelector(`main[data-route="#/trace/${expect.traceId}"][data-state="ready"]`, { timeout: 30000 });
    check((await page.$$('form#sign-in')).length === 0, 'the trace page shows without a sign-in');
    await page.screenshot({ path: path.join(expect.screenshots, 'signed-in-trace.png'), fullPage: true });

    // The token never went into a URL; every API call after sign-in carried it.
    for (const secret of [expect.token, expect.wrongToken]) {
      const leaked = urls.filter((u) => u.includes(secret));
      check(leaked.length === 0, 'no URL carries a token', leaked);
    }
    check(!page.url().includes(expect.token), 'the page URL has no token', page.url());
    check(authorized.includes(`Bearer ${expect.token}`), 'API calls send Authorization: Bearer', authorized);
    const unexpected = errors.filter((e) => !/Failed to load resource.*401/.test(e));
    check(unexpected.length === 0, 'no console errors but the expected 401s', unexpected);

    // Sign out: the token is gone and the form is back.
    await page.click('#sign-out');
    await signInShown();
    check(await page.evaluate(() => sessionStorage.getItem('otelite.queryToken')) === null,
      'signing out forgets the token');
    check(!(await page.isVisible('#sign-out')), 'no sign-out button after signing out');
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify({ ok: true }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
