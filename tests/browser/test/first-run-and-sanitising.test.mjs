// First run and hostile text. A gateway with no channels opens on the
// onboarding; it is walked with a mock upstream whose every string a user
// could see (model ids, answers, error messages) carries HTML and script
// payloads. Wherever the UI shows that text — the first answer, the relayed
// error, a channel test, the receipts table and drawer, the spend breakdown,
// the route tree — it must appear as literal text, with no element made from
// it, no script run, no dialog opened.
//
// The page's Content-Security-Policy would block an inline handler anyway, so
// `window.__xss` alone proves little: the tests also look for elements built
// from the payloads and for CSP violation reports, which fire only if the UI
// put the text into the DOM as HTML.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startGateway } from '../lib/gateway.mjs';
import { MODELS, startMockOpenAI } from '../lib/mock-openai.mjs';
import { eventually, launchBrowser, newPage, openView, screenshot, textMatches } from '../lib/browser.mjs';

const IMG = '<img src=x onerror="window.__xss=1">';
const SCRIPT = '<script>window.__xss=2</script>';
const PAYLOAD = `${IMG} ${SCRIPT}`;
const BRAND = `Evil <img src=x onerror="window.__xss=3"> Relay`;
const OK_MODEL = 'evil-ok';
const ERR_MODEL = 'evil-400';
const HOSTILE_MODEL = `evil-${IMG}`;

let mock, gw, browser, page, events;
let gatewayKey = null;

before(async () => {
  mock = await startMockOpenAI({
    name: 'evil',
    models: [OK_MODEL, ERR_MODEL, HOSTILE_MODEL],
    content: () => `Answer with ${PAYLOAD} inside.`,
  });
  mock.fail(ERR_MODEL, { status: 400, message: `Bad request: ${PAYLOAD}`, code: 'invalid_value' });
  gw = await startGateway({ config: '[buckets.wallet]\ncurrency = "CNY"\n' });
  browser = await launchBrowser();
  ({ page, events } = await newPage(browser));
  await page.goto(gw.adminLink);
}, { timeout: 60_000 });

after(async () => {
  await browser?.close().catch(() => {});
  await gw?.stop();
  await mock?.close();
}, { timeout: 60_000 });

/** Nothing was built from the payloads, nothing ran, nothing was blocked. */
async function assertInert(where) {
  const state = await page.evaluate(() => ({
    xss: window.__xss,
    imgs: [...document.querySelectorAll('img')].map((i) => i.getAttribute('src')),
    scripts: [...document.querySelectorAll('script')].filter((s) => s.textContent.includes('__xss')).length,
    handlers: [...document.querySelectorAll('[onerror]')].length,
    csp: window.__cspViolations,
  }));
  assert.equal(state.xss, undefined, `${where}: window.__xss was set`);
  assert.deepEqual(state.imgs.filter((s) => s === 'x'), [], `${where}: an <img> was made from the payload`);
  assert.equal(state.scripts, 0, `${where}: a <script> was made from the payload`);
  assert.equal(state.handlers, 0, `${where}: an element with onerror exists`);
  assert.deepEqual(state.csp, [], `${where}: the page tried to run or load something the CSP blocked`);
  assert.deepEqual(events.dialogs, [], `${where}: a dialog opened`);
  assert.deepEqual(events.pageErrors, [], `${where}: the page threw`);
}

async function includesLiteral(locator, text, what) {
  await eventually(async () => {
    const shown = await locator.innerText();
    assert.ok(shown.includes(text), `${what}: ${JSON.stringify(shown)} lacks the literal ${JSON.stringify(text)}`);
  });
}

test('a gateway with no channels opens on the first-run setup', async () => {
  const onboarding = page.getByTestId('onboarding');
  await onboarding.waitFor();
  await textMatches(onboarding.getByRole('heading', { level: 1 }), /Welcome to Switchyard/);
  await textMatches(page.getByTestId('onboarding-step-channel'), /Connect a model/);
  await page.getByTestId('channel-presets').getByRole('button').first().waitFor();
  // Local servers are offered separately, not as presets here.
  assert.equal(await page.getByTestId('preset-ollama').count(), 0);
  await screenshot(page, 'onboarding-1280x800');
});

test('first run: connect the hostile upstream, make a key, send a first request', async () => {
  const step1 = page.getByTestId('onboarding-step-channel');
  await step1.getByRole('button', { name: /Other OpenAI-compatible/ }).click();
  await step1.getByTestId('channel-id').fill('evil');
  await step1.getByTestId('channel-brand').fill(BRAND);
  await step1.getByTestId('channel-base-url').fill(mock.baseUrl);
  await step1.getByTestId('channel-secret-source').selectOption('none');
  await step1.getByTestId('channel-models').fill('*');
  await step1.getByTestId('channel-save').click();
  await includesLiteral(step1, BRAND, 'added channel');

  const step2 = page.getByTestId('onboarding-step-key');
  await step2.getByRole('button', { name: 'Create key' }).click();
  gatewayKey = (await step2.getByTestId('onboarding-key').innerText()).trim();
  assert.match(gatewayKey, /^sy-/);

  const step3 = page.getByTestId('onboarding-step-request');
  // The step fills in the first listed model once the list arrives; typing
  // before that could be joined to it.
  await eventually(async () => assert.notEqual(await step3.getByTestId('onboarding-model').inputValue(), ''));
  await step3.getByTestId('onboarding-model').fill(OK_MODEL);
  assert.equal(await step3.getByTestId('onboarding-model').inputValue(), OK_MODEL);
  await step3.getByRole('button', { name: 'Send test request' }).click();
  const answer = step3.getByTestId('onboarding-answer');
  await includesLiteral(answer, `Answer with ${PAYLOAD} inside.`, 'model answer');
  await textMatches(answer, new RegExp(`${OK_MODEL} answered via evil`));
  await textMatches(step3.getByTestId('onboarding-receipt'), /primary evil\/evil-ok → ok/);
  await assertInert('first answer');
  await screenshot(page, 'onboarding-done-1280x800');

  await step3.getByTestId('onboarding-model').fill(ERR_MODEL);
  await step3.getByRole('button', { name: 'Send test request' }).click();
  await includesLiteral(step3.getByTestId('onboarding-error'), `Bad request: ${PAYLOAD}`, 'relayed error');
  await assertInert('relayed error');

  await page.getByTestId('onboarding-dismiss').click();
  await page.getByTestId('onboarding').waitFor({ state: 'detached' });
});

test('a hostile model id shows as text in Receipts, the receipt drawer and Spend', async () => {
  assert.ok(gatewayKey, 'the first-run test must have run first');
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${gatewayKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: HOSTILE_MODEL, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const id = res.headers.get('x-switchyard-request-id');
  await gw.receipt(id);

  await openView(page, 'Receipts', 'view-receipts');
  const row = page.locator(`[data-testid="receipt-row"][data-receipt-id="${id}"]`);
  await includesLiteral(row, HOSTILE_MODEL, 'receipt row');
  // The relayed 400 left a receipt too.
  await eventually(async () => assert.equal(await page.getByTestId('receipt-row').count(), 3));
  await row.click();
  const drawer = page.getByRole('dialog', { name: 'Receipt' });
  await includesLiteral(drawer.getByTestId('receipt-detail'), HOSTILE_MODEL, 'receipt drawer');
  await includesLiteral(drawer.getByTestId('receipt-detail'), BRAND, 'receipt drawer brand');
  await includesLiteral(drawer.getByTestId('receipt-walk'), `primary evil/${HOSTILE_MODEL} → ok`, 'route walked');
  await assertInert('receipt drawer');
  await drawer.getByRole('button', { name: 'Close' }).click();

  await openView(page, 'Spend', 'view-spend');
  await includesLiteral(page.getByTestId('spend-breakdown'), HOSTILE_MODEL, 'spend by model');
  await page.getByTestId('spend-by').getByRole('button', { name: 'Brand' }).click();
  await includesLiteral(page.getByTestId('spend-breakdown'), BRAND, 'spend by brand');
  await assertInert('spend');
});

test('an upstream error shown by Test connection and the brand in the route tree stay text', async () => {
  mock.fail(MODELS, { status: 503, message: `Down: ${PAYLOAD}` });
  await openView(page, 'Channels', 'view-channels');
  const row = page.locator('[data-testid="channel-row"][data-channel-id="evil"]');
  await includesLiteral(row, BRAND, 'channel row brand');
  await row.getByRole('button', { name: 'Test connection' }).click();
  const result = page.getByTestId('channel-test-result');
  await textMatches(result, /failed/);
  await includesLiteral(result, `Down: ${PAYLOAD}`, 'test connection error');
  await assertInert('channel test');

  await openView(page, 'Routes', 'view-routes');
  await includesLiteral(page.getByTestId('route-tree'), BRAND, 'route tree brand');
  await assertInert('routes');
});
