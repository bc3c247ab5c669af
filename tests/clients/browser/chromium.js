// What the browser scripts share: their expectations file (the first
// argument), checks that fail with what they saw, and Debian's Chromium
// started headless with a fresh profile and off the network.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

function readExpectations() {
  return JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
}

function check(condition, what, detail) {
  if (!condition) throw new Error(`${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
}

// A fresh profile per run (playwright passes it as --user-data-dir),
// removed when the browser is closed.
async function launch(executablePath, viewport) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'otelite-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport,
    // Keep Chromium off the network: no updates, sync, QUIC probes or first-run calls.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    try {
      await close();
    } finally {
      fs.rmSync(profile, { recursive: true, force: true });
    }
  };
  return browser;
}

module.exports = { readExpectations, check, launch };
