// The main path a user walks in the web UI, against a real `switchyard serve`
// and two mock OpenAI upstreams:
//
//   relay     (added in the Channels view, key pasted into the OS keyring, Wallet, CNY)
//   official  (in the config file, no key needed, Credit, USD)
//
// Route `gpt-4o` (made in the Routes view): relay primary, official backup,
// cross-bucket. Requests from the official `openai` Node SDK with a key made
// in the Keys view: a normal one, a streamed one, one that falls back, one
// that fails. Then Receipts, the receipt drawer and Spend must show them, and
// a reordered route must carry the next request.
//
// The tests run in order and share one gateway and one page.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startGateway } from '../lib/gateway.mjs';
import { startMockOpenAI } from '../lib/mock-openai.mjs';
import { assertMoney, eventually, launchBrowser, newPage, openView, screenshot, textMatches } from '../lib/browser.mjs';

// A run-unique channel id: its key goes into the real keyring (service
// `switchyard`, account = channel id), which must not clash with a real channel.
const RELAY = `relay-${randomBytes(3).toString('hex')}`;
const RELAY_KEY = `sk-relay-${randomBytes(12).toString('hex')}`;
const MODEL = 'gpt-4o';
const REORDER_MODEL = 'gpt-4o-mini';

let relayMock, officialMock, gw, browser, page, events;
let gatewayKey = null;
const sent = {}; // request ids by kind: normal, stream, fallback, failed

before(async () => {
  relayMock = await startMockOpenAI({ name: 'relay', models: [MODEL, REORDER_MODEL] });
  officialMock = await startMockOpenAI({ name: 'official', models: [MODEL, REORDER_MODEL] });
  gw = await startGateway({
    config: `[buckets.credit]
currency = "USD"

[buckets.wallet]
currency = "CNY"

[[channels]]
id = "official"
type = "openai-compatible"
brand = "OpenAI"
base_url = "${officialMock.baseUrl}"
bucket = "credit"
secret = "none"
`,
  });
  await gw.api('POST', '/api/buckets/credit/topup', { amount: '20', note: 'browser test' });
  browser = await launchBrowser();
  ({ page, events } = await newPage(browser));
  await page.goto(gw.adminLink);
  await page.getByTestId('nav').waitFor();
}, { timeout: 60_000 });

after(async () => {
  // Leave nothing in the keyring.
  await gw?.api('DELETE', `/api/channels/${RELAY}/secret`).catch(() => {});
  await browser?.close().catch(() => {});
  await gw?.stop();
  await relayMock?.close();
  await officialMock?.close();
}, { timeout: 60_000 });

function sdk() {
  assert.ok(gatewayKey, 'the key test must have run first');
  return new OpenAI({ apiKey: gatewayKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 20_000 });
}

test('the admin link opens the UI and leaves no token in the address bar', async () => {
  await page.getByTestId('status-strip').waitFor();
  assert.ok(!page.url().includes('token='), `the token is still in the URL: ${page.url().replace(/sya-\S+/, 'sya-…')}`);
  await textMatches(page.getByTestId('strip-balance-credit'), /Credit\s*\$20\.00/);
  await textMatches(page.getByTestId('strip-balance-wallet'), /Wallet\s*¥0\.00/);
});

test('a channel added in the Channels view stores the pasted key in the keyring', async () => {
  await openView(page, 'Channels', 'view-channels');
  await page.getByTestId('channel-add').click();
  const dialog = page.getByRole('dialog', { name: 'Add a channel' });
  await dialog.getByRole('button', { name: /Other OpenAI-compatible/ }).click();
  await dialog.getByTestId('channel-id').fill(RELAY);
  await dialog.getByTestId('channel-brand').fill('Relay');
  await dialog.getByTestId('channel-bucket').selectOption('wallet');
  await dialog.getByTestId('channel-base-url').fill(relayMock.baseUrl);
  await dialog.getByTestId('channel-secret-source').selectOption('keyring');
  await dialog.getByTestId('channel-secret').fill(RELAY_KEY);
  await dialog.getByTestId('channel-save').click();
  await dialog.waitFor({ state: 'detached' });

  const row = page.locator(`[data-testid="channel-row"][data-channel-id="${RELAY}"]`);
  await textMatches(row.getByTestId('channel-secret-state'), /key set/);
  await textMatches(row, /Wallet/);
  await textMatches(row, new RegExp(relayMock.baseUrl.replace(/[./]/g, '\\$&')));

  // The key is in the keyring, not in the config file.
  const ch = (await gw.api('GET', '/api/channels')).channels.find((c) => c.id === RELAY);
  assert.equal(ch?.secret.state, 'set');
  assert.equal(ch.secret.source, 'keyring');
  assert.ok(!gw.configText().includes(RELAY_KEY), 'the key was written to the config file');
  assert.match(gw.configText(), new RegExp(`id = "${RELAY}"`));
  assert.ok(!(await page.content()).includes(RELAY_KEY), 'the page still shows the key');
});

test('a route made in the Routes view lists primary and backup', async () => {
  await openView(page, 'Routes', 'view-routes');
  await page.getByRole('button', { name: 'New route' }).click();
  const editor = page.getByTestId('route-editor');
  await editor.getByTestId('route-model').fill(MODEL);
  await editor.getByTestId('target-add-channel').selectOption(RELAY);
  await editor.getByTestId('target-add').click();
  await editor.getByTestId('target-add-channel').selectOption('official');
  await editor.getByTestId('target-add').click();
  await editor.getByTestId('route-cross-bucket').check();
  await editor.getByTestId('route-save').click();
  await editor.waitFor({ state: 'detached' });

  const card = page.locator(`[data-testid="route-card"][data-route="${MODEL}"]`);
  const targets = card.getByTestId('route-target');
  await eventually(async () => assert.equal(await targets.count(), 2));
  await textMatches(targets.nth(0), new RegExp(`primary\\s*${RELAY}/${MODEL}`, 'i'));
  await textMatches(targets.nth(1), new RegExp(`backup\\s*official/${MODEL}`, 'i'));
  // Catalog-priced on both targets, each in its bucket's currency.
  await textMatches(targets.nth(0), /CNY per 1M/);
  await textMatches(targets.nth(1), /USD per 1M/);
});

test('a key made in the Keys view is shown once and works with the OpenAI SDK', async () => {
  await openView(page, 'Keys', 'view-keys');
  const form = page.getByRole('form', { name: 'Create a key' });
  await form.getByLabel('Name').fill('sdk-script');
  await form.getByRole('button', { name: 'Create key' }).click();
  const dialog = page.getByRole('dialog', { name: /created/ });
  gatewayKey = (await dialog.getByTestId('key-secret').innerText()).trim();
  assert.match(gatewayKey, /^sy-[A-Za-z0-9_-]{16,}$/);
  await textMatches(dialog, /shown only this once/);
  await dialog.getByRole('button', { name: 'Close' }).click();
  await dialog.waitFor({ state: 'detached' });
  const row = page.locator('[data-testid="key-row"][data-key-name="sdk-script"]');
  await row.waitFor();
  assert.ok(!(await row.innerText()).includes(gatewayKey), 'the key list shows the whole key');

  const models = await sdk().models.list();
  assert.ok(models.data.some((m) => m.id === MODEL), `GET /v1/models lacks ${MODEL}`);
});

test('Wallet is topped up in the Spend view, in its own currency', async () => {
  await openView(page, 'Spend', 'view-spend');
  await page.getByTestId('topup-wallet-amount').fill('100');
  await page.getByTestId('topup-wallet-submit').click();
  await textMatches(page.getByTestId('balance-wallet').getByRole('status'), /Added ¥100\.00; balance now ¥100\.00/);
  await textMatches(page.getByTestId('balance-wallet-amount'), /^¥100\.00$/);
  await textMatches(page.getByTestId('balance-credit-amount'), /^\$20\.00$/);
});

test('SDK requests: normal, streamed, fallback and failure', async () => {
  const client = sdk();

  // 1. Normal: the relay serves it with the key pasted in the UI.
  const normal = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello' }] }).withResponse();
  assert.equal(normal.data.choices[0].message.content, `Hello from relay (${MODEL}).`);
  assert.equal(normal.response.headers.get('x-switchyard-channel'), RELAY);
  sent.normal = normal.response.headers.get('x-switchyard-request-id');
  const upstream = relayMock.chats(MODEL).at(-1);
  assert.equal(upstream.headers.authorization, `Bearer ${RELAY_KEY}`, 'the relay did not get the key pasted in the UI');
  assert.ok(!JSON.stringify(relayMock.requests).includes(gatewayKey), 'the gateway key leaked upstream');

  // 2. Streamed.
  const streamed = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'stream' }], stream: true }).withResponse();
  let text = '';
  for await (const chunk of streamed.data) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, `Hello from relay (${MODEL}).`);
  sent.stream = streamed.response.headers.get('x-switchyard-request-id');

  // 3. The relay answers 503: the official backup serves it.
  relayMock.fail(MODEL, { status: 503 });
  const fallback = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'fall back' }] }).withResponse();
  assert.equal(fallback.data.choices[0].message.content, `Hello from official (${MODEL}).`);
  assert.equal(fallback.response.headers.get('x-switchyard-channel'), 'official');
  assert.equal(fallback.response.headers.get('x-switchyard-bucket'), 'credit');
  sent.fallback = fallback.response.headers.get('x-switchyard-request-id');

  // 4. Every target answers 503: the SDK raises.
  officialMock.fail(MODEL, { status: 503 });
  const err = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'fail' }] }).then(
    () => null,
    (e) => e,
  );
  assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${err}`);
  assert.ok(err.status >= 500, `expected a 5xx, got ${err.status}`);
  sent.failed = err.headers?.get?.('x-switchyard-request-id') ?? null;
  assert.ok(sent.failed, 'the failed request carries no x-switchyard-request-id');
  relayMock.heal(MODEL);
  officialMock.heal(MODEL);

  for (const id of Object.values(sent)) assert.match(id ?? '', /^req_/);
});

/** The four receipts from the API, once final. */
async function receipts() {
  const out = {};
  for (const [kind, id] of Object.entries(sent)) out[kind] = await gw.receipt(id);
  return out;
}

test('Receipts lists every request with its model, status, bucket and cost', async () => {
  const r = await receipts();
  assert.equal(r.normal.bucket, 'wallet');
  assert.equal(r.fallback.bucket, 'credit');
  assert.equal(r.failed.status, 'error');
  assert.ok(r.normal.cost > 0 && r.fallback.cost > 0, 'catalog-priced requests cost nothing');

  await openView(page, 'Receipts', 'view-receipts');
  await page.getByTestId('receipts-refresh').click();
  const rows = page.getByTestId('receipt-row');
  await eventually(async () => assert.equal(await rows.count(), 4));

  const expect = {
    normal: { channel: RELAY, bucket: 'Wallet', status: 'ok', currency: 'CNY' },
    stream: { channel: RELAY, bucket: 'Wallet', status: 'ok', currency: 'CNY' },
    fallback: { channel: 'official', bucket: 'Credit', status: 'ok', currency: 'USD' },
    failed: { channel: null, bucket: null, status: 'error', currency: null },
  };
  for (const [kind, e] of Object.entries(expect)) {
    const row = page.locator(`[data-testid="receipt-row"][data-receipt-id="${sent[kind]}"]`);
    const cells = (await row.getByRole('cell').allInnerTexts()).map((t) => t.trim());
    // Time, Model, Channel, Key, Bucket, Tokens, Cost, Latency, Status
    assert.equal(cells.length, 9, `${kind}: ${JSON.stringify(cells)}`);
    assert.equal(cells[1], MODEL, `${kind} model`);
    if (e.channel) assert.ok(cells[2].startsWith(e.channel), `${kind} channel: ${cells[2]}`);
    assert.equal(cells[3], 'sdk-script', `${kind} key`);
    assert.equal(cells[4], e.bucket ?? '—', `${kind} bucket`);
    assert.equal(cells[8], e.status, `${kind} status`);
    if (e.currency) {
      assert.equal(r[kind].currency, e.currency);
      assertMoney(cells[6], r[kind].cost, e.currency, `${kind} cost`);
      assert.equal(cells[5], '1k / 1k', `${kind} tokens`);
    } else {
      assert.equal(cells[6], '—', `${kind} cost`);
    }
  }
  await textMatches(page.locator(`[data-receipt-id="${sent.fallback}"]`), /backup/);
});

test('the fallback receipt’s drawer shows the route walked, who paid and the cost', async () => {
  const r = await gw.receipt(sent.fallback);
  await page.locator(`[data-testid="receipt-row"][data-receipt-id="${sent.fallback}"]`).click();
  const drawer = page.getByRole('dialog', { name: 'Receipt' });
  await textMatches(drawer.getByTestId('receipt-id'), new RegExp(`^${sent.fallback}$`));
  const walk = await textMatches(drawer.getByTestId('receipt-walk'), new RegExp(`primary ${RELAY}/${MODEL} → 503.* → backup official/${MODEL} → ok`));
  assert.match(walk, /paid from Credit/);
  const attempts = drawer.getByTestId('receipt-attempt');
  assert.equal(await attempts.count(), r.attempts.length);
  await textMatches(attempts.first(), new RegExp(`${RELAY}/${MODEL}[\\s\\S]*503`));
  await textMatches(attempts.last(), new RegExp(`official/${MODEL}[\\s\\S]*ok`));
  await textMatches(drawer.getByTestId('receipt-bucket'), /^Credit$/);
  assertMoney(await drawer.getByTestId('receipt-cost').innerText(), r.cost, 'USD', 'drawer cost');
  await textMatches(drawer.getByTestId('receipt-cross-bucket'), /cross-bucket fallback/);
  await screenshot(page, 'receipts-drawer-1280x800');
  await drawer.getByRole('button', { name: 'Close' }).click();
  await drawer.waitFor({ state: 'detached' });
  await screenshot(page, 'receipts-1280x800');
});

test('the failed receipt’s drawer says every target failed and nothing was charged', async () => {
  await page.locator(`[data-testid="receipt-row"][data-receipt-id="${sent.failed}"]`).click();
  const drawer = page.getByRole('dialog', { name: 'Receipt' });
  await textMatches(drawer.getByTestId('receipt-walk'), new RegExp(`backup official/${MODEL} → 503.*nothing charged`));
  await textMatches(drawer.getByTestId('receipt-error'), /Every target for model `gpt-4o` failed/);
  await drawer.getByRole('button', { name: 'Close' }).click();
  await drawer.waitFor({ state: 'detached' });
});

test('Spend shows Credit and Wallet apart, each in its currency, and the cost by model', async () => {
  const r = await receipts();
  const walletCost = r.normal.cost + r.stream.cost;
  const creditCost = r.fallback.cost;
  const buckets = Object.fromEntries((await gw.api('GET', '/api/buckets')).buckets.map((b) => [b.bucket, b]));
  assert.equal(buckets.wallet.balance_micro, 100_000_000 - walletCost, 'wallet balance ≠ top-up − receipts');
  assert.equal(buckets.credit.balance_micro, 20_000_000 - creditCost, 'credit balance ≠ top-up − receipts');

  // A fresh load, so the balances are read now (the status strip polls every 10 s).
  await page.reload();
  await openView(page, 'Spend', 'view-spend');
  assertMoney(await page.getByTestId('balance-credit-amount').innerText(), buckets.credit.balance_micro, 'USD', 'credit balance');
  assertMoney(await page.getByTestId('balance-wallet-amount').innerText(), buckets.wallet.balance_micro, 'CNY', 'wallet balance');
  await textMatches(page.getByTestId('balance-credit'), /USD/);
  await textMatches(page.getByTestId('balance-wallet'), /CNY/);

  const creditTotal = page.getByTestId('spend-total-credit');
  const walletTotal = page.getByTestId('spend-total-wallet');
  await textMatches(creditTotal, /1 requests?/);
  await textMatches(walletTotal, /2 requests/);
  assertMoney(await creditTotal.locator('.total-cost').innerText(), creditCost, 'USD', 'credit total');
  assertMoney(await walletTotal.locator('.total-cost').innerText(), walletCost, 'CNY', 'wallet total');

  const byModel = page.getByTestId('spend-breakdown');
  const rowFor = (bucket) => byModel.getByTestId('spend-row').filter({ hasText: MODEL }).filter({ hasText: bucket });
  await eventually(async () => assert.equal(await rowFor('Wallet').count(), 1));
  const walletCells = (await rowFor('Wallet').getByRole('cell').allInnerTexts()).map((t) => t.trim());
  const creditCells = (await rowFor('Credit').getByRole('cell').allInnerTexts()).map((t) => t.trim());
  // Model, Bucket, Requests, Input tok, Output tok, Cost, Fallback, Errors
  assert.deepEqual(walletCells.slice(0, 5), [MODEL, 'Wallet', '2', '2k', '2k']);
  assert.deepEqual(creditCells.slice(0, 5), [MODEL, 'Credit', '1', '1k', '1k']);
  assertMoney(walletCells[5], walletCost, 'CNY', 'wallet row cost');
  assertMoney(creditCells[5], creditCost, 'USD', 'credit row cost');
  assert.equal(creditCells[6], '100%', 'the credit request was a fallback');
  await screenshot(page, 'spend-1280x800');
});

test('moving the backup up in the Routes view carries the next request and rewrites the config', async () => {
  await gw.api('POST', '/api/routes', {
    model: REORDER_MODEL,
    targets: [
      { channel: RELAY, model: REORDER_MODEL },
      { channel: 'official', model: REORDER_MODEL },
    ],
    cross_bucket: true,
  });
  const client = sdk();
  const before = await client.chat.completions.create({ model: REORDER_MODEL, messages: [{ role: 'user', content: 'x' }] }).withResponse();
  assert.equal(before.response.headers.get('x-switchyard-channel'), RELAY);

  await openView(page, 'Routes', 'view-routes');
  await page.getByTestId('routes-refresh').click();
  const card = page.locator(`[data-testid="route-card"][data-route="${REORDER_MODEL}"]`);
  await card.getByRole('button', { name: 'Edit' }).click();
  const editor = page.getByTestId('route-editor');
  await editor.getByRole('button', { name: `Move official/${REORDER_MODEL} up` }).click();
  const rows = editor.getByTestId('route-editor-target');
  await textMatches(rows.nth(0), new RegExp(`primary\\s*official/${REORDER_MODEL}`, 'i'));
  await textMatches(rows.nth(1), new RegExp(`backup 1\\s*${RELAY}/${REORDER_MODEL}`, 'i'));
  await editor.getByRole('button', { name: 'Save route' }).click();
  await editor.waitFor({ state: 'detached' });

  const saved = page.locator(`[data-testid="route-card"][data-route="${REORDER_MODEL}"]`).getByTestId('route-target');
  await textMatches(saved.nth(0), new RegExp(`primary\\s*official/${REORDER_MODEL}`, 'i'));
  await textMatches(saved.nth(1), new RegExp(`backup\\s*${RELAY}/${REORDER_MODEL}`, 'i'));

  // The file on disk: official now comes first in this route's targets.
  const text = gw.configText();
  const block = text.slice(text.indexOf(`model = "${REORDER_MODEL}"`));
  assert.ok(block.length > 0 && text.includes(`model = "${REORDER_MODEL}"`), 'route missing from the config file');
  const official = block.indexOf('channel = "official"');
  const relay = block.indexOf(`channel = "${RELAY}"`);
  assert.ok(official >= 0 && relay >= 0 && official < relay, `config not reordered:\n${block}`);

  const officialBefore = officialMock.chats(REORDER_MODEL).length;
  const next = await client.chat.completions.create({ model: REORDER_MODEL, messages: [{ role: 'user', content: 'y' }] }).withResponse();
  assert.equal(next.response.headers.get('x-switchyard-channel'), 'official');
  assert.equal(next.data.choices[0].message.content, `Hello from official (${REORDER_MODEL}).`);
  assert.equal(officialMock.chats(REORDER_MODEL).length, officialBefore + 1);
  await screenshot(page, 'routes-1280x800');
});

test('screenshots of Channels and Keys, and of Receipts and Spend at 900×600', async () => {
  await openView(page, 'Channels', 'view-channels');
  await page.locator(`[data-testid="channel-row"][data-channel-id="${RELAY}"]`).getByRole('button', { name: 'Test connection' }).click();
  await textMatches(page.getByTestId('channel-test-result'), /connected/);
  await screenshot(page, 'channels-1280x800');
  await openView(page, 'Keys', 'view-keys');
  await page.getByTestId('key-row').first().waitFor();
  await screenshot(page, 'keys-1280x800');

  await page.setViewportSize({ width: 900, height: 600 });
  await openView(page, 'Receipts', 'view-receipts');
  await page.getByTestId('receipt-row').first().waitFor();
  await screenshot(page, 'receipts-900x600');
  await openView(page, 'Spend', 'view-spend');
  await page.getByTestId('spend-row').first().waitFor();
  await screenshot(page, 'spend-900x600');
  await page.setViewportSize({ width: 1280, height: 800 });
});

test('the page raised no errors and no dialogs', async () => {
  assert.deepEqual(events.pageErrors, []);
  assert.deepEqual(events.dialogs, []);
});
