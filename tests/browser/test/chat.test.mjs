// The Chat view against a real `switchyard serve` and two mock OpenAI
// upstreams:
//
//   official  (Credit, USD)  routes slow (paced: one word every 120 ms), fast,
//                            mini, md (a Markdown answer full of HTML)
//   relay     (Wallet, CNY)  route cheap
//   both                     route broken (every target answers 500)
//
// A user streams an answer and stops it, compares three models of which one
// fails and continues with one answer (while a stale re-read of the
// conversation is held back, so it cannot quietly undo that choice), makes
// and walks versions, reads every answer's footer against its receipt, gets
// hostile Markdown shown inert, and opens, searches, sends, stops and
// compares with the keyboard alone. Then the page is reloaded and `serve`
// restarted on the same data dir: the conversations are still there, with
// their messages and footers.
//
// The tests run in order and share one gateway and one page.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startGateway } from '../lib/gateway.mjs';
import { COMPLETION_TOKENS, PROMPT_TOKENS, startMockOpenAI } from '../lib/mock-openai.mjs';
import { assertMoney, eventually, launchBrowser, newPage, screenshot, textMatches } from '../lib/browser.mjs';

const PACE_MS = 120;
const MS = '(\\d+ ms|[\\d.]+ s)'; // a duration as the UI writes it
const SLOW_TEXT = Array.from({ length: 60 }, (_, i) => `word${i + 1}`).join(' ');
const MARKDOWN = [
  'Here is a table:',
  '',
  '| Model | Bucket |',
  '| --- | --- |',
  '| fast | Credit |',
  '| cheap | Wallet |',
  '',
  '```js',
  'const answer = 42;',
  'console.log(answer);',
  '```',
  '',
  '<script>window.__pwned=1</script>',
  '',
  '<img src=x onerror="window.__pwned=1">',
  '',
  '[a link](javascript:window.__pwned=1)',
].join('\n');

// Route → where it goes and its price per 1M tokens (input, output), in the bucket's currency.
const ROUTES = {
  slow: { channel: 'official', upstream: 'm-slow', price: [3, 12] },
  fast: { channel: 'official', upstream: 'm-fast', price: [3, 12] },
  mini: { channel: 'official', upstream: 'm-mini', price: [0.5, 1.5] },
  md: { channel: 'official', upstream: 'm-md', price: [1, 2] },
  cheap: { channel: 'relay', upstream: 'm-cheap', price: [1, 2] },
};
const CHANNELS = {
  official: { brand: 'OpenAI', bucket: 'credit', currency: 'USD' },
  relay: { brand: 'Relay', bucket: 'wallet', currency: 'CNY' },
};

/** What an answer of `route` costs for the mocks' usage, in micro-units. */
function costOf(route) {
  const [input, output] = ROUTES[route].price;
  return Math.round(input * PROMPT_TOKENS + output * COMPLETION_TOKENS);
}

function answerText(model, _body, n) {
  if (model === 'm-slow') return SLOW_TEXT;
  if (model === 'm-md') return MARKDOWN;
  return `Take ${n} from ${model}.`;
}

let official, relay, gw, browser, context, page, events;
const consoleErrors = [];
const convs = {}; // conversation ids by test: stopped, compare, branches, markdown, keyboard

before(async () => {
  official = await startMockOpenAI({ name: 'official', content: answerText });
  relay = await startMockOpenAI({ name: 'relay', content: answerText });
  official.pace('m-slow', PACE_MS);
  official.fail('m-broken', { status: 500 });
  relay.fail('m-broken', { status: 500 });
  const routes = Object.entries(ROUTES)
    .map(
      ([model, r]) => `[[routes]]
model = "${model}"
targets = [{ channel = "${r.channel}", model = "${r.upstream}", price = { input = ${r.price[0]}, output = ${r.price[1]} } }]
`,
    )
    .join('\n');
  gw = await startGateway({
    config: `[buckets.credit]
currency = "USD"

[buckets.wallet]
currency = "CNY"

[[channels]]
id = "official"
type = "openai-compatible"
brand = "OpenAI"
base_url = "${official.baseUrl}"
bucket = "credit"
secret = "none"

[[channels]]
id = "relay"
type = "openai-compatible"
brand = "Relay"
base_url = "${relay.baseUrl}"
bucket = "wallet"
secret = "none"

${routes}
[[routes]]
model = "broken"
targets = [
  { channel = "official", model = "m-broken", price = { input = 1, output = 2 } },
  { channel = "relay", model = "m-broken", price = { input = 1, output = 2 } },
]
cross_bucket = true
`,
  });
  await gw.api('POST', '/api/buckets/credit/topup', { amount: '20', note: 'browser test' });
  await gw.api('POST', '/api/buckets/wallet/topup', { amount: '100', note: 'browser test' });
  browser = await launchBrowser();
  ({ context, page, events } = await newPage(browser));
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.url });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  await page.goto(gw.adminLink);
  await page.getByTestId('chat-view').waitFor();
}, { timeout: 60_000 });

after(async () => {
  await browser?.close().catch(() => {});
  await gw?.stop();
  await official?.close();
  await relay?.close();
}, { timeout: 60_000 });

const answers = () => page.locator('[data-testid="message"][data-role="assistant"]');
const answerFrom = (model) => page.getByRole('article', { name: `Answer from ${model}`, exact: true });
const column = (model) => page.getByTestId('compare-column').filter({ has: answerFrom(model) });

/** The text of an answer as shown (its Markdown), without the head, footer and buttons. */
async function shownText(answer) {
  const md = answer.locator('.md');
  if ((await md.count()) === 0) return '';
  return (await md.allInnerTexts()).join('\n').trim();
}

/** `promise`, or a failure saying `what` after `ms`. */
async function within(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function statusIs(locator, status, timeout = 10_000) {
  await eventually(async () => assert.equal(await locator.getAttribute('data-status'), status), { timeout });
}

/** The conversation as the API has it now. */
const conversation = (id) => gw.api('GET', `/api/chat/conversations/${encodeURIComponent(id)}`);

/** The open conversation's id, from the address. */
function openId() {
  const m = /\/chat\/([^/?#]+)/.exec(new URL(page.url()).pathname);
  assert.ok(m, `no conversation open at ${new URL(page.url()).pathname}`);
  return decodeURIComponent(m[1]);
}

async function newChat() {
  await page.getByTestId('new-chat').click();
  await eventually(async () => assert.equal(new URL(page.url()).pathname, '/chat'));
  await textMatches(page.getByTestId('conversation-title'), /^New chat$/);
  assert.equal(await page.getByTestId('message-list').getAttribute('data-count'), '0');
}

async function setCompare(on) {
  const toggle = page.getByTestId('compare-toggle');
  if ((await toggle.getAttribute('aria-pressed')) !== String(on)) await toggle.click();
  await eventually(async () => assert.equal(await toggle.getAttribute('aria-pressed'), String(on)));
}

/** Types and sends one message to `model` (or, in compare mode, to the checked models). */
async function send(text, model) {
  if (model) await page.getByTestId('model-picker').selectOption(model);
  await page.getByTestId('composer-input').fill(text);
  await page.getByTestId('send').click();
}

test('a slow answer streams in word by word; Stop keeps it, marked incomplete, its receipt client_cancelled', async () => {
  await setCompare(false);
  await send('Count for me, slowly', 'slow');
  const answer = answerFrom('slow');
  await answer.waitFor();
  convs.stopped = await eventually(async () => openId());

  // The text grows while it streams, one word after another.
  const seen = [];
  await eventually(
    async () => {
      assert.equal(await answer.getAttribute('data-status'), 'streaming');
      const t = await shownText(answer);
      if (t && t !== seen.at(-1)) seen.push(t);
      assert.ok(seen.length >= 4, `seen only ${JSON.stringify(seen)}`);
    },
    { timeout: 15_000, interval: PACE_MS / 3 },
  );
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i].startsWith(seen[i - 1]) && seen[i].length > seen[i - 1].length, `the text did not grow: ${JSON.stringify(seen)}`);
  }
  await answer.getByTestId('streaming').waitFor();
  await page.getByTestId('stop').click();

  await statusIs(answer, 'incomplete');
  await textMatches(answer.getByTestId('incomplete-badge'), /^incomplete$/);
  await textMatches(answer.getByTestId('incomplete'), /Incomplete — stopped\./);
  const partial = await shownText(answer);
  assert.ok(partial.startsWith(seen.at(-1)) && partial.length < SLOW_TEXT.length, `not a partial answer: ${JSON.stringify(partial)}`);
  assert.ok(SLOW_TEXT.startsWith(partial), `the partial text is not the start of the answer: ${JSON.stringify(partial)}`);
  await page.getByTestId('send').waitFor(); // the composer offers Send again, not Stop

  // Stored as shown, with its receipt: cancelled by the client.
  const stored = (await conversation(convs.stopped)).messages.find((m) => m.role === 'assistant');
  assert.equal(stored.status, 'incomplete');
  assert.equal(stored.content.trim(), partial);
  const footer = answer.getByTestId('answer-footer');
  const id = await footer.getAttribute('data-request-id');
  assert.equal(id, stored.receipt.request_id);
  const r = await gw.receipt(id);
  assert.equal(r.status, 'client_cancelled');
  assert.equal(r.source, 'chat');
  await eventually(async () => assert.equal(official.chats('m-slow').at(-1)?.aborted, true, 'the upstream stream was not cut'));

  await footer.getByTestId('footer-receipt').click();
  const drawer = page.getByRole('dialog', { name: 'Receipt' });
  await textMatches(drawer.getByTestId('receipt-id'), new RegExp(`^${id}$`));
  await textMatches(drawer.getByTestId('receipt-detail'), /client cancelled/);
  await drawer.getByRole('button', { name: 'Close' }).click();
  await drawer.waitFor({ state: 'detached' });
  await screenshot(page, 'chat-stopped-1280x800');
});

test('a compare of three models with one failing: two footers, the failed route’s attempts, the summary; one answer is continued', async () => {
  await newChat();
  await setCompare(true);
  const picked = ['fast', 'mini', 'broken'];
  // Nothing remembered yet: compare starts from the model in use. Unchecked,
  // it stays so; then the three, in this order: the first is the answer in
  // view until another is chosen.
  const checked = () => page.locator('[data-testid="model-option"]:checked').evaluateAll((els) => els.map((e) => e.dataset.model));
  assert.deepEqual(await checked(), ['slow']);
  for (const option of await page.getByTestId('model-option').all()) await option.setChecked(false);
  await textMatches(page.getByTestId('model-picker').locator('legend'), /^Compare 0 of 2–6 models · pick at least 2$/);
  for (const name of picked) await page.locator(`[data-testid="model-option"][data-model="${name}"]`).setChecked(true);
  assert.deepEqual(await checked(), ['broken', 'fast', 'mini']);
  // Every box is a whole box, however long its model's name.
  const widths = await page.getByTestId('model-option').evaluateAll((els) => els.map((e) => Math.round(e.getBoundingClientRect().width)));
  assert.ok(widths.every((w) => w === widths[0] && w >= 12), `squeezed checkboxes: ${widths.join(', ')} px`);
  await page.getByTestId('composer-input').fill('Which is best?');
  await textMatches(page.getByTestId('send'), /^Send to 3$/);
  // The conversation's re-read after the answers is held back until one is
  // chosen to continue with: that stale read must not undo the choice.
  const reread = /\/api\/chat\/conversations\/[^/?]+$/;
  let read, release;
  const readDone = new Promise((r) => (read = r));
  const released = new Promise((r) => (release = r));
  await page.route(reread, async (route) => {
    if (route.request().method() !== 'GET') return route.continue();
    const response = await route.fetch();
    read();
    await released;
    await route.fulfill({ response });
  });
  const answered = {};
  try {
    await page.getByTestId('send').click();

    const columns = page.getByTestId('compare-columns');
    await columns.waitFor();
    assert.equal(await columns.getAttribute('data-layout'), 'columns');
    await eventually(async () => assert.equal(await page.getByTestId('compare-column').count(), 3));
    convs.compare = openId();
    for (const m of ['fast', 'mini']) {
      const a = answerFrom(m);
      await statusIs(a, 'complete');
      const footer = a.getByTestId('answer-footer');
      await textMatches(footer.getByTestId('footer-model'), new RegExp(`^${ROUTES[m].upstream}$`));
      answered[m] = { text: await shownText(a), receipt: await gw.receipt(await footer.getAttribute('data-request-id')) };
      assert.match(answered[m].text, new RegExp(`^Take \\d+ from ${ROUTES[m].upstream}\\.$`));
      assert.equal(answered[m].receipt.cost, costOf(m));
    }

    // The failed one: its error names every attempt of the route, and nothing was charged.
    const failed = answerFrom('broken');
    await statusIs(failed, 'error', 15_000);
    await textMatches(failed.getByTestId('answer-error'), /Every target for model `broken` failed: primary official\/m-broken → 500 ×3 → backup relay\/m-broken → 500 ×3; nothing charged/);
    const failedFooter = failed.getByTestId('answer-footer');
    await textMatches(failedFooter.getByTestId('footer-walk'), /^primary official\/m-broken → 500 ×3 → backup relay\/m-broken → 500 ×3; nothing charged$/);
    await textMatches(failedFooter.getByTestId('footer-bucket'), /^Not charged$/);
    await textMatches(failedFooter.getByTestId('footer-cost'), /^—$/);
    const failedReceipt = await gw.receipt(await failedFooter.getAttribute('data-request-id'));
    assert.equal(failedReceipt.status, 'error');
    assert.equal(failedReceipt.attempts.length, 6);
    assert.equal(official.chats('m-broken').length + relay.chats('m-broken').length, 6);

    // The summary: cheapest and fastest among the answers that finished, and what Credit paid.
    const summary = page.getByTestId('compare-summary');
    await textMatches(summary.getByTestId('summary-cheapest'), /^Cheapest: mini \$0\.002$/);
    const fastest = (key) => ['fast', 'mini'].reduce((a, b) => (answered[b].receipt[key] < answered[a].receipt[key] ? b : a));
    await textMatches(summary.getByTestId('summary-fastest-first'), new RegExp(`^Fastest first token: ${fastest('ttft_ms')} ${MS}$`));
    await textMatches(summary.getByTestId('summary-fastest-total'), new RegExp(`^Fastest total: ${fastest('latency_ms')} ${MS}$`));
    const paid = await textMatches(summary.getByTestId('summary-totals'), /^Paid: Credit \$[\d.]+$/);
    assertMoney(paid, costOf('fast') + costOf('mini'), 'USD', 'compare total');
    await screenshot(page, 'chat-compare-1280x800');

    // Continue with the cheaper answer: the next message follows it, not the others.
    await column('fast').getByTestId('in-context').waitFor();
    await within(readDone, 10_000, 'the conversation was not read again after its answers');
    await column('mini').getByTestId('continue-with').click();
    await column('mini').getByTestId('in-context').waitFor();
    const stale = page.waitForResponse((r) => reread.test(new URL(r.url()).pathname) && r.request().method() === 'GET');
    release();
    await (await stale).finished();
    // Two frames: the page has read the held answer and rendered what it made of it.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    assert.equal(await column('mini').getByTestId('in-context').count(), 1, 'a stale re-read undid “continue with this answer”');
    await column('fast').getByTestId('continue-with').waitFor();
  } finally {
    // Also when something failed: the page's later reads are not held.
    release();
    await page.unroute(reread).catch(() => {});
  }
  const miniId = await answerFrom('mini').getAttribute('data-message-id');
  await eventually(async () => assert.equal((await conversation(convs.compare)).current_leaf, miniId));

  await setCompare(false);
  await send('Go on from there', 'cheap');
  const next = answerFrom('cheap');
  await statusIs(next, 'complete');
  await textMatches(next.getByTestId('footer-bucket'), /^Wallet$/);
  assert.deepEqual(relay.chats('m-cheap').at(-1).body.messages, [
    { role: 'user', content: 'Which is best?' },
    { role: 'assistant', content: answered.mini.text },
    { role: 'user', content: 'Go on from there' },
  ]);
  // In view: the prompt, the compare, the follow-up and its answer.
  assert.equal(await page.getByTestId('message-list').getAttribute('data-count'), '4');
});

test('regenerate and edit add versions; ‹ 1/2 › shows the first answer again, and the choice survives a reload', async () => {
  await newChat();
  await setCompare(false);
  await send('Name a colour', 'fast');
  const answer = answers().first();
  await statusIs(answer, 'complete');
  convs.branches = openId();
  const first = { id: await answer.getAttribute('data-message-id'), text: await shownText(answer) };
  assert.match(first.text, /^Take \d+ from m-fast\.$/);
  assert.equal(await answer.getByTestId('branch-pos').count(), 0, 'one answer has no versions to walk');

  // Regenerate: a second answer beside the first, in view.
  await answer.getByTestId('retry').click();
  await eventually(async () => assert.notEqual(await answers().first().getAttribute('data-message-id'), first.id));
  const second = answers().first();
  await statusIs(second, 'complete');
  const secondText = await shownText(second);
  assert.notEqual(secondText, first.text);
  await textMatches(second.getByTestId('branch-pos'), /^2\/2$/);
  assert.ok(await second.getByTestId('branch-next').isDisabled());
  // Asked again with the prompt alone, not with the first answer in it.
  assert.deepEqual(official.chats('m-fast').at(-1).body.messages, [{ role: 'user', content: 'Name a colour' }]);

  await second.getByTestId('branch-prev').click();
  await textMatches(answers().first().getByTestId('branch-pos'), /^1\/2$/);
  assert.equal(await answers().first().getAttribute('data-message-id'), first.id);
  assert.equal(await shownText(answers().first()), first.text);
  await eventually(async () => assert.equal((await conversation(convs.branches)).current_leaf, first.id));

  await page.reload();
  await statusIs(answers().first(), 'complete');
  assert.equal(await answers().first().getAttribute('data-message-id'), first.id);
  await textMatches(answers().first().getByTestId('branch-pos'), /^1\/2$/);
  assert.equal(await shownText(answers().first()), first.text);

  // Edit and resend: a second version of the prompt, with its own answer.
  const prompt = page.locator('[data-testid="message"][data-role="user"]');
  await prompt.getByTestId('edit').click();
  await prompt.getByTestId('edit-input').fill('Name a color');
  await prompt.getByTestId('edit-send').click();
  await textMatches(prompt.locator('.user-text'), /^Name a color$/);
  await textMatches(prompt.getByTestId('branch-pos'), /^2\/2$/);
  await statusIs(answers().first(), 'complete');
  assert.equal(await answers().first().getByTestId('branch-pos').count(), 0);
  assert.deepEqual(official.chats('m-fast').at(-1).body.messages, [{ role: 'user', content: 'Name a color' }]);

  // Back to the first prompt: its answers are there again, with their versions.
  await prompt.getByTestId('branch-prev').click();
  await textMatches(prompt.locator('.user-text'), /^Name a colour$/);
  await textMatches(prompt.getByTestId('branch-pos'), /^1\/2$/);
  const shown = answers().first();
  const pos = await textMatches(shown.getByTestId('branch-pos'), /^[12]\/2$/);
  assert.equal(await shownText(shown), pos === '1/2' ? first.text : secondText);
  await screenshot(page, 'chat-branches-1280x800');
});

const BUCKET_LABEL = { credit: 'Credit', wallet: 'Wallet' };
const int = (n) => new Intl.NumberFormat('en-US').format(n);
const literal = (s) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

/** Asserts that `answer`'s footer shows its receipt (from /api/receipts/{id}), and returns the receipt. */
async function assertFooterIsReceipt(answer, where) {
  const footer = answer.getByTestId('answer-footer');
  const id = await footer.getAttribute('data-request-id');
  assert.match(id ?? '', /^req_/, `${where}: no receipt id on the footer`);
  const r = await gw.receipt(id);
  const model = r.upstream_model ?? r.requested_model;
  await textMatches(footer.getByTestId('footer-model'), literal(model));
  const line = await footer.innerText();
  if (r.route !== model) assert.ok(line.includes(`route ${r.route}`), `${where}: the footer lacks route ${r.route}: ${line}`);
  if (r.channel) assert.ok(line.includes(`via ${r.channel} (${r.brand})`), `${where}: the footer lacks channel ${r.channel}: ${line}`);
  const bucket = footer.getByTestId('footer-bucket');
  assert.equal(await bucket.getAttribute('data-bucket'), r.bucket ?? '', `${where}: bucket`);
  await textMatches(bucket, literal(BUCKET_LABEL[r.bucket] ?? 'Not charged'));
  const u = r.usage;
  await textMatches(footer.getByTestId('footer-tokens'), literal(`${int(u.input)} in · ${int(u.cached_input)} cached · ${int(u.output)} out · ${int(u.reasoning)} reasoning`));
  const cost = (await footer.getByTestId('footer-cost').innerText()).trim();
  if (r.bucket) assertMoney(cost, r.cost, r.currency, `${where}: footer cost`);
  else assert.equal(cost, '—', `${where}: a request nobody paid for shows a cost`);
  assert.equal(await footer.getByTestId('footer-estimated').count(), r.usage_estimated ? 1 : 0, `${where}: estimated usage`);
  const timing = [r.ttft_ms !== null ? `first token ${MS}` : null, r.latency_ms !== null ? `total ${MS}` : null].filter(Boolean).join(' · ');
  if (timing) await textMatches(footer.getByTestId('footer-timing'), new RegExp(`^${timing}( · [\\d.]+ tok/s)?$`));

  // A click on the footer opens this receipt.
  await footer.getByTestId('footer-tokens').click();
  const drawer = page.getByRole('dialog', { name: 'Receipt' });
  await textMatches(drawer.getByTestId('receipt-id'), literal(id));
  await textMatches(drawer.getByTestId('receipt-bucket'), literal(BUCKET_LABEL[r.bucket] ?? 'Not charged'));
  if (r.currency) assertMoney(await drawer.getByTestId('receipt-cost').innerText(), r.cost, r.currency, `${where}: drawer cost`);
  await drawer.getByRole('button', { name: 'Close' }).click();
  await drawer.waitFor({ state: 'detached' });
  return r;
}

async function openConversation(id) {
  await page.locator(`[data-testid="conversation-item"][data-conversation-id="${id}"]`).getByRole('link').click();
  await eventually(async () => assert.equal(openId(), id));
  await eventually(async () => assert.ok(Number(await page.getByTestId('message-list').getAttribute('data-count')) > 0));
}

test('every answer’s footer shows its receipt: model, route, channel, bucket, tokens, cost; a click opens it; totals per bucket', async () => {
  assert.ok(convs.stopped && convs.compare && convs.branches, 'the tests before must have run');
  for (const [name, id] of Object.entries({ stopped: convs.stopped, compare: convs.compare, branches: convs.branches })) {
    await openConversation(id);
    const shown = answers();
    const n = await shown.count();
    assert.ok(n > 0, `${name}: no answers shown`);
    for (let i = 0; i < n; i++) {
      const a = shown.nth(i);
      if ((await a.getAttribute('data-status')) === 'streaming') assert.fail(`${name}: an answer is still streaming`);
      const r = await assertFooterIsReceipt(a, `${name} answer ${i + 1}`);
      assert.equal(r.source, 'chat');
      assert.equal(r.run_id, id);
      if (r.status === 'ok') {
        // What the mocks billed, at the route's price.
        assert.deepEqual([r.usage.input, r.usage.output], [PROMPT_TOKENS, COMPLETION_TOKENS]);
        assert.equal(r.cost, costOf(r.route), `${name}: ${r.route} cost`);
        assert.equal(r.currency, CHANNELS[r.channel].currency);
      }
    }

    // What each bucket paid in this conversation, every version counted, never blended.
    const paid = {};
    for (const m of (await conversation(id)).messages) {
      if (!m.receipt) continue;
      const r = await gw.receipt(m.receipt.request_id);
      if (r.bucket && r.cost > 0) paid[r.bucket] = { currency: r.currency, micro: (paid[r.bucket]?.micro ?? 0) + r.cost };
    }
    for (const bucket of ['credit', 'wallet']) {
      const total = page.getByTestId(`conversation-total-${bucket}`);
      if (!paid[bucket]) {
        assert.equal(await total.count(), 0, `${name}: ${bucket} total shown for nothing spent`);
        continue;
      }
      const text = await textMatches(total, new RegExp(`^${BUCKET_LABEL[bucket]} `));
      assertMoney(text, paid[bucket].micro, paid[bucket].currency, `${name}: ${bucket} total`);
    }
    if (name === 'compare') assert.deepEqual(Object.keys(paid).sort(), ['credit', 'wallet'], 'the compare conversation paid from both buckets');
  }
  await screenshot(page, 'chat-footers-1280x800');
});

test('a Markdown answer renders its table and highlighted code; its HTML, script and javascript: link stay inert', async () => {
  const consoleBefore = consoleErrors.length;
  await newChat();
  await setCompare(false);
  await send('Show me some Markdown', 'md');
  const answer = answerFrom('md');
  await statusIs(answer, 'complete');
  convs.markdown = openId();

  const table = answer.locator('.md table');
  await table.waitFor();
  assert.deepEqual((await table.locator('th').allInnerTexts()).map((t) => t.trim()), ['Model', 'Bucket']);
  assert.deepEqual((await table.locator('tbody tr').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim()), ['fast Credit', 'cheap Wallet']);

  const code = answer.getByTestId('code-block');
  await textMatches(code.locator('.md-code-head'), /^js/);
  await textMatches(code.locator('pre'), /^const answer = 42;\s+console\.log\(answer\);$/);
  assert.ok((await code.locator('pre code.hljs [class^="hljs-"]').count()) >= 2, 'the code is not highlighted');
  await code.getByTestId('code-copy').click();
  await eventually(async () => assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'const answer = 42;\nconsole.log(answer);'));

  // The HTML is there to read, as text; nothing was made from it.
  const text = await answer.locator('.md').first().evaluate((el) => el.closest('[data-testid="message"]').innerText);
  for (const literalHtml of ['<script>window.__pwned=1</script>', '<img src=x onerror="window.__pwned=1">']) {
    assert.ok(text.includes(literalHtml), `the answer lacks the literal ${literalHtml}: ${JSON.stringify(text)}`);
  }
  const link = answer.getByText('a link', { exact: true });
  assert.equal(await link.getAttribute('href'), null, 'the javascript: link kept its href');
  await link.click();
  const state = await page.evaluate(() => ({
    pwned: window.__pwned,
    scripts: [...document.querySelectorAll('script')].filter((s) => s.textContent.includes('__pwned')).length,
    imgs: [...document.querySelectorAll('img')].length,
    handlers: [...document.querySelectorAll('[onerror], [onclick]')].length,
    jsLinks: [...document.querySelectorAll('[href^="javascript:" i]')].length,
    csp: window.__cspViolations,
  }));
  assert.deepEqual(state, { pwned: undefined, scripts: 0, imgs: 0, handlers: 0, jsLinks: 0, csp: [] });
  assert.equal(new URL(page.url()).pathname, `/chat/${encodeURIComponent(convs.markdown)}`, 'the link navigated');
  assert.deepEqual(events.dialogs, []);
  assert.deepEqual(events.pageErrors, []);
  assert.deepEqual(consoleErrors.slice(consoleBefore), []);
  await screenshot(page, 'chat-markdown-1280x800');
});

/** The focused element: its test id (or tag), and whether its focus ring shows. */
const focused = () =>
  page.evaluate(() => {
    const el = document.activeElement;
    const style = el ? getComputedStyle(el) : null;
    return {
      id: el?.getAttribute('data-testid') ?? el?.getAttribute('class') ?? el?.tagName ?? null,
      model: el?.getAttribute('data-model') ?? null,
      conversation: el?.closest('[data-testid="conversation-item"]')?.getAttribute('data-conversation-id') ?? null,
      ring: Boolean(el?.matches(':focus-visible') && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0),
    };
  });

async function assertFocus(id, what) {
  await eventually(async () => {
    const f = await focused();
    assert.equal(f.id, id, `${what}: focus is on ${JSON.stringify(f)}`);
    assert.ok(f.ring, `${what}: the focus ring does not show on ${f.id}`);
  });
}

/** Presses `key` until `pred(focused())` holds, at most `max` times. */
async function tabTo(key, pred, max, what) {
  for (let i = 0; i < max; i++) {
    if (pred(await focused())) return;
    await page.keyboard.press(key);
  }
  assert.ok(pred(await focused()), `${what}: not reached with ${max} × ${key}; focus is on ${JSON.stringify(await focused())}`);
}

test('keyboard only: new chat, search, send with Enter, stop with Esc, compare', async () => {
  assert.ok(convs.branches, 'the branch test must have run');
  const kb = page.keyboard;

  // Ctrl+Shift+O: a new chat, the cursor in the composer.
  await kb.press('Control+Shift+O');
  await eventually(async () => assert.equal(new URL(page.url()).pathname, '/chat'));
  await textMatches(page.getByTestId('conversation-title'), /^New chat$/);
  await assertFocus('composer-input', 'new chat');

  // Ctrl+K: search; the hit is a Tab away and Enter opens it.
  await kb.press('Control+K');
  await assertFocus('chat-search', 'search');
  await kb.type('colour');
  const items = page.getByTestId('conversation-item');
  await eventually(async () => assert.equal(await items.count(), 1));
  assert.equal(await items.first().getAttribute('data-conversation-id'), convs.branches);
  await textMatches(items.first().getByTestId('conversation-snippet').locator('mark').first(), /^colour$/i);
  await tabTo('Tab', (f) => f.conversation === convs.branches, 5, 'the search hit');
  assert.ok((await focused()).ring, 'the focus ring does not show on the search hit');
  await kb.press('Enter');
  await eventually(async () => assert.equal(openId(), convs.branches));
  await textMatches(page.getByTestId('conversation-title'), /^Name a colou?r$/);

  // A new chat again; the slow model picked with the keyboard; Enter sends, Esc stops.
  await kb.press('Control+Shift+O');
  await assertFocus('composer-input', 'second new chat');
  await kb.type('Count once more');
  await kb.press('Tab');
  await assertFocus('model-picker', 'model picker');
  for (let i = 0; i < 10 && (await page.getByTestId('model-picker').inputValue()) !== 'slow'; i++) await kb.press('ArrowDown');
  assert.equal(await page.getByTestId('model-picker').inputValue(), 'slow');
  await kb.press('Shift+Tab');
  await assertFocus('composer-input', 'back in the composer');
  await kb.press('Enter');
  const answer = answerFrom('slow');
  await answer.waitFor();
  await eventually(async () => assert.ok((await shownText(answer)).length > 0 && (await answer.getAttribute('data-status')) === 'streaming'), { timeout: 10_000 });
  convs.keyboard = openId();
  assert.equal((await focused()).id, 'composer-input', 'sending moved the focus');
  await kb.press('Escape');
  await statusIs(answer, 'incomplete');
  const r = await gw.receipt(await answer.getByTestId('answer-footer').getAttribute('data-request-id'));
  assert.equal(r.status, 'client_cancelled');
  assert.equal((await page.getByTestId('composer-input').inputValue()), '', 'the sent text is still in the composer');

  // Ctrl+Shift+M: compare; models checked with Tab and Space; Enter sends to both.
  await kb.press('Control+Shift+M');
  await eventually(async () => assert.equal(await page.getByTestId('compare-toggle').getAttribute('aria-pressed'), 'true'));
  await assertFocus('composer-input', 'compare on');
  const want = ['fast', 'mini'];
  const options = await page.getByTestId('model-option').count();
  await kb.press('Tab');
  for (let i = 0; i < options; i++) {
    const f = await focused();
    assert.equal(f.id, 'model-option', `option ${i + 1}: focus is on ${JSON.stringify(f)}`);
    assert.ok(f.ring, `option ${f.model}: no focus ring`);
    const box = page.locator(`[data-testid="model-option"][data-model="${f.model}"]`);
    if ((await box.isChecked()) !== want.includes(f.model)) await kb.press('Space');
    await eventually(async () => assert.equal(await box.isChecked(), want.includes(f.model), `${f.model} did not toggle`));
    await kb.press('Tab');
  }
  await tabTo('Shift+Tab', (f) => f.id === 'composer-input', options + 2, 'the composer');
  await kb.type('Both of you, please');
  await textMatches(page.getByTestId('send'), /^Send to 2$/);
  await kb.press('Enter');
  await eventually(async () => assert.equal(await page.getByTestId('compare-column').count(), 2));
  for (const m of want) await statusIs(answerFrom(m), 'complete');
  // The stopped answer is part of what both were asked.
  const partial = (await conversation(convs.keyboard)).messages.find((m) => m.model === 'slow');
  assert.equal(partial.content.trim(), await shownText(answer));
  for (const m of want) {
    assert.deepEqual(official.chats(ROUTES[m].upstream).at(-1).body.messages, [
      { role: 'user', content: 'Count once more' },
      { role: 'assistant', content: partial.content },
      { role: 'user', content: 'Both of you, please' },
    ]);
  }
  await screenshot(page, 'chat-keyboard-1280x800');

  await kb.press('Control+Shift+M');
  await eventually(async () => assert.equal(await page.getByTestId('compare-toggle').getAttribute('aria-pressed'), 'false'));
  assert.equal(await page.getByTestId('model-picker').evaluate((el) => el.tagName), 'SELECT');
  // The search cleared: every conversation listed again.
  await kb.press('Control+K');
  await assertFocus('chat-search', 'search again');
  await kb.press('Control+A');
  await kb.press('Backspace');
  await eventually(async () => assert.equal(await items.count(), Object.keys(convs).length));
});

/** Every message of the open conversation as shown: role, state, text and footer. */
const shownMessages = () =>
  page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="message"]')].map((m) => {
      const footer = m.querySelector('[data-testid="answer-footer"]');
      const text = m.dataset.role === 'user' ? [m.querySelector('.user-text')] : [...m.querySelectorAll('.md')];
      return {
        id: m.dataset.messageId,
        role: m.dataset.role,
        status: m.dataset.status,
        text: text.map((e) => e?.innerText ?? '').join('\n').trim(),
        receipt: footer?.dataset.requestId ?? null,
        footer: footer?.innerText.trim() ?? null,
      };
    }),
  );

test('conversations survive a reload and a restart of serve on the same data dir, with their messages and footers', async () => {
  const ids = Object.values(convs);
  assert.equal(ids.length, 5, 'the tests before must have run');
  const before = {};
  for (const id of ids) {
    await openConversation(id);
    before[id] = await shownMessages();
    assert.ok(before[id].some((m) => m.role === 'assistant' && m.receipt), `${id}: no answer with a footer`);
  }
  assert.ok(before[convs.stopped].some((m) => m.status === 'incomplete'));
  assert.ok(before[convs.compare].some((m) => m.status === 'error'));

  const same = async (when) => {
    await eventually(async () => assert.equal(await page.getByTestId('conversation-item').count(), ids.length), { timeout: 10_000 });
    for (const id of ids) {
      await openConversation(id);
      await eventually(async () => assert.deepEqual(await shownMessages(), before[id], `${when}: conversation ${id} changed`));
    }
  };

  await page.reload();
  await page.getByTestId('chat-view').waitFor();
  await same('after a reload');

  gw = await gw.restart();
  await page.goto(gw.adminLink);
  await page.getByTestId('chat-view').waitFor();
  await same('after a restart');
  // The restarted gateway reads the same ledger: the receipts are still there, final.
  for (const m of before[convs.compare].filter((x) => x.receipt)) assert.notEqual((await gw.receipt(m.receipt)).status, 'pending');
  await screenshot(page, 'chat-after-restart-1280x800');
});

test('the page raised no errors and no dialogs', async () => {
  assert.deepEqual(events.pageErrors, []);
  assert.deepEqual(events.dialogs, []);
  assert.deepEqual(consoleErrors, []);
});
