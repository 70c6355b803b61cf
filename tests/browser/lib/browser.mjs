// One headless Chromium per test file (Debian's /usr/bin/chromium, or
// $CHROMIUM), pages at 1280×800 in en-US/UTC so text and screenshots are
// stable, and small helpers for assertions that wait for the UI.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO_ROOT } from './gateway.mjs';

export const ARTIFACTS = process.env.SWITCHYARD_ARTIFACTS || path.join(REPO_ROOT, 'tests', 'artifacts');

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: 30_000,
  });
}

/**
 * A page in a fresh context. Records dialogs (alert/confirm/prompt), CSP
 * violations and uncaught page errors, so tests can assert there were none.
 */
export async function newPage(browser, { width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({
    viewport: { width, height },
    locale: 'en-US',
    timezoneId: 'UTC',
    colorScheme: 'light',
  });
  context.setDefaultTimeout(10_000);
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective}: ${e.sample || e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  const events = { dialogs: [], pageErrors: [] };
  page.on('dialog', (d) => {
    events.dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => events.pageErrors.push(String(e)));
  return { context, page, events };
}

/** Retries `fn` (an async assertion) until it passes or `timeout` ms pass. */
export async function eventually(fn, { timeout = 8_000, interval = 100 } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw e;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Waits until the locator's text matches `re` (and returns the text). */
export async function textMatches(locator, re, timeout = 8_000) {
  let last = '';
  try {
    return await eventually(async () => {
      last = (await locator.innerText({ timeout: 1_000 })).trim();
      assert.match(last, re);
      return last;
    }, { timeout });
  } catch {
    assert.fail(`expected text matching ${re}, got ${JSON.stringify(last)}`);
  }
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  // Let fonts, charts and transitions settle.
  await page.evaluate(() => document.fonts.ready);
  await page.waitForTimeout(300);
  await page.screenshot({ path: file });
  return file;
}

/** Clicks a view in the navigation and waits for it to render. */
export async function openView(page, label, testId) {
  await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: label, exact: true }).click();
  await page.getByTestId(testId).waitFor();
}

const SYMBOL = { USD: '$', CNY: '¥', EUR: '€', GBP: '£', JPY: '¥' };

/**
 * Asserts that `text` shows `micro` micro-units of `currency`: the currency's
 * own symbol, at least two decimals, and a number equal to the exact amount
 * once rounded to the decimals shown.
 */
export function assertMoney(text, micro, currency, what = 'amount') {
  const sym = SYMBOL[currency];
  if (sym) {
    assert.ok(text.includes(sym), `${what}: ${JSON.stringify(text)} should show ${currency} (${sym})`);
    for (const [cur, other] of Object.entries(SYMBOL)) {
      if (other !== sym && cur !== currency) assert.ok(!text.includes(other), `${what}: ${JSON.stringify(text)} shows ${cur}, not ${currency}`);
    }
  } else {
    assert.ok(text.includes(currency), `${what}: ${JSON.stringify(text)} should name ${currency}`);
  }
  const m = /-?\d[\d,]*(?:\.(\d+))?/.exec(text.replace(/\u2212/g, '-'));
  assert.ok(m, `${what}: no number in ${JSON.stringify(text)}`);
  const decimals = m[1]?.length ?? 0;
  assert.ok(decimals >= 2, `${what}: ${JSON.stringify(text)} should show at least cents`);
  const shown = Number(m[0].replace(/,/g, ''));
  const exact = micro / 1e6;
  const tolerance = 0.5 * 10 ** -decimals + 1e-9;
  assert.ok(Math.abs(shown - exact) <= tolerance, `${what}: ${JSON.stringify(text)} is not ${exact} ${currency}`);
  if (micro !== 0) assert.notEqual(shown, 0, `${what}: ${JSON.stringify(text)} hides a non-zero amount`);
}
