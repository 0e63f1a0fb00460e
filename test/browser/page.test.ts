/**
 * The live page in a real browser (issue 10): Debian's Chromium, driven by playwright-core, against
 * the real local topology on free ports. The page loads without a console error, a message posted
 * through its form shows up with the logging and messages instance that handled it, a killed
 * messages-service shows as unreachable, and a screenshot goes to test-results/page/.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { instanceName, url } from '../../src/local/local-topology.js';
import { ROOT } from '../../src/local/paths.js';
import { eventually, postJson, startSystem, type TestSystem } from '../helpers/system.js';

/** Debian's package (.ci/run installs it); playwright-core downloads no browser of its own. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUTPUT = join(ROOT, 'test-results', 'page');

let system: TestSystem;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
const consoleErrors: string[] = [];

/** Waits until the locator matches exactly `count` elements (polled from here: the page's CSP forbids eval). */
async function waitForCount(locator: Locator, count: number, timeoutMs = 15_000): Promise<void> {
  await eventually(`${count} of ${locator.toString()}`, async () => ((await locator.count()) === count ? true : undefined), timeoutMs, 200);
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  system = await startSystem({ env: { INSTANCES_CACHE_MS: '300', REGISTRY_WATCH_INTERVAL_MS: '200' } });
  userDataDir = mkdtempSync(join(tmpdir(), 'mqlab-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 1000 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
});

after(async () => {
  // The browser first, so that its reconnecting stream does not outlive the facade.
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await system?.stop();
});

test('the page loads live, with every member and instance, and no console error', async () => {
  await page.goto(`${system.facade}/`);
  await page.locator('#link', { hasText: 'live' }).waitFor({ timeout: 15_000 });
  await page.locator('#members li').nth(2).waitFor();
  assert.equal(await page.locator('#members li').count(), 3);
  assert.equal(await page.locator('#members .pill-owner').count(), 1, 'one member owns the queue');
  const owner = await page.locator('#queue-owner').textContent();
  assert.ok(
    system.plan.hazelcastPorts.some((port) => owner === `127.0.0.1:${port}`),
    `owner tile: ${owner}`,
  );
  // Every instance config-server lists (3 logging, 2 messages) and this facade, ready.
  await waitForCount(page.locator('#services tr[data-status="ready"]'), 5, 20_000);
  assert.equal(
    await page.locator(`#services tr[data-instance="${instanceName('facade-service', system.plan.ports['facade-service'][0] ?? 0)}"] .pill-ready`).count(),
    1,
  );
  assert.equal(await page.locator('#chart canvas').count(), 1, 'uPlot drew its canvas');
  assert.deepEqual(consoleErrors, []);
});

test('a message posted through the form appears with its logging and messages instance, as text', async () => {
  const text = '<b>bold?</b> & "hello" from the form';
  await page.fill('#post-msg', text);
  await page.click('#post-send');
  const result = page.locator('#post-result', { hasText: 'stored by' });
  await result.waitFor({ timeout: 15_000 });
  const uuid = /([0-9a-f-]{36})$/.exec((await result.textContent()) ?? '')?.[1];
  assert.ok(uuid, `the form says the uuid: ${await result.textContent()}`);
  const row = page.locator(`#messages tr[data-uuid="${uuid}"]`);
  await row.locator('.received-by', { hasText: /^messages-\d+$/ }).waitFor({ timeout: 15_000 });
  assert.equal(await row.locator('.msg').textContent(), text, 'the text as typed');
  assert.equal(await row.locator('.msg b').count(), 0, 'no markup from the message');
  const loggedBy = (await row.locator('.logged-by').textContent()) ?? '';
  assert.ok(
    system.plan.ports['logging-service'].some((port) => loggedBy === instanceName('logging-service', port)),
    `stored by: ${loggedBy}`,
  );
  const receivedBy = (await row.locator('.received-by').textContent()) ?? '';
  assert.ok(
    system.plan.ports['messages-service'].some((port) => receivedBy === instanceName('messages-service', port)),
    `received by: ${receivedBy}`,
  );
  assert.match((await result.textContent()) ?? '', new RegExp(`stored by ${loggedBy} `));
  assert.deepEqual(consoleErrors, []);
});

test("an empty message is refused with the facade's reason, in the page", async () => {
  await page.fill('#post-msg', '   ');
  await page.click('#post-send');
  await page.locator('#post-result.bad', { hasText: '400' }).waitFor({ timeout: 10_000 });
  assert.match((await page.locator('#post-result').textContent()) ?? '', /blank/);
  // Chromium logs every 4xx answer to a fetch as a console error: this one was asked for, no other may be there.
  const refused = consoleErrors.findIndex((line) => /status of 400/.test(line) && line.includes(`${system.facade}/facade`));
  assert.ok(refused >= 0, `the 400 was logged: ${consoleErrors.join(' | ')}`);
  consoleErrors.splice(refused, 1);
  assert.deepEqual(consoleErrors, []);
});

test('a killed messages-service shows unreachable; a screenshot is saved', async (t) => {
  // Some traffic first, so the chart has something to show.
  for (let i = 1; i <= 40; i += 1) {
    assert.equal((await postJson(`${system.facade}/facade`, { msg: `msg${i}` })).status, 201);
    if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const [victimPort, survivorPort] = system.plan.ports['messages-service'];
  assert.ok(victimPort && survivorPort);
  const victim = url(system.plan, victimPort);
  await system.topology.group.stop(instanceName('messages-service', victimPort), 'SIGKILL');
  const row = page.locator(`#services tr[data-url="${victim}"]`);
  await page.locator(`#services tr[data-url="${victim}"][data-status="unreachable"]`).waitFor({ timeout: 15_000 });
  assert.equal(await row.locator('td').first().textContent(), instanceName('messages-service', victimPort), 'still named');
  assert.equal(await row.locator('.pill-unready').textContent(), 'unreachable');
  await page.locator('#events li', { hasText: 'unreachable' }).first().waitFor();
  // The page keeps working with one messages-service: a message posted now reaches the survivor.
  const survivor = instanceName('messages-service', survivorPort);
  await page.fill('#post-msg', 'posted while one consumer is down');
  await page.click('#post-send');
  const result = page.locator('#post-result', { hasText: 'stored by' });
  await result.waitFor({ timeout: 15_000 });
  const uuid = /([0-9a-f-]{36})$/.exec((await result.textContent()) ?? '')?.[1];
  await page.locator(`#messages tr[data-uuid="${uuid}"] td.received-by`, { hasText: survivor }).waitFor({ timeout: 15_000 });
  mkdirSync(OUTPUT, { recursive: true });
  const unready = join(OUTPUT, 'page-unready.png');
  await page.screenshot({ path: unready, fullPage: true });
  t.diagnostic(`screenshot: ${unready}`);
  assert.deepEqual(consoleErrors, []);
});

test('with no consumer the queue fills, and drains once they are back: the page shows both', async (t) => {
  await system.topology.stopService('messages-service', undefined, 'SIGTERM');
  await waitForCount(page.locator('#services tr[data-status="unreachable"]'), 2);
  for (let i = 1; i <= 30; i += 1) {
    assert.equal((await postJson(`${system.facade}/facade`, { msg: `queued ${i}` })).status, 201);
    if (i % 6 === 0) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await page.locator('#queue-depth', { hasText: '30' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#messages tr[data-uuid] .received-by .pill-wait').count(), 20, 'the newest 20 wait in the queue');
  await new Promise((resolve) => setTimeout(resolve, 3000));
  await system.topology.startService('messages-service');
  await page.locator('#queue-depth', { hasText: /^0$/ }).waitFor({ timeout: 30_000 });
  await waitForCount(page.locator('#services tr[data-status="ready"]'), 5, 20_000);
  await waitForCount(page.locator('#messages .received-by .pill-wait'), 0);
  await page.fill('#post-msg', 'hello from the page');
  await page.click('#post-send');
  await page.locator('#post-result', { hasText: 'stored by' }).waitFor({ timeout: 15_000 });
  await page.locator('#messages tr td.msg', { hasText: 'hello from the page' }).waitFor();
  await waitForCount(page.locator('#messages .received-by .pill-wait'), 0);
  const file = join(OUTPUT, 'page.png');
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(existsSync(file));
  t.diagnostic(`screenshot: ${file}`);
  assert.deepEqual(consoleErrors, []);
});
