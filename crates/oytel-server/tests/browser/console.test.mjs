// The web console in a real browser: Debian's Chromium driven by playwright-core, against
// the real `oytel-server` on a fresh SQLite file. A screenshot of each page is saved under
// target/dashboard-screenshots/.
//
//   cargo build -p oytel-server && (cd crates/oytel-server/tests/browser && npm ci && npm test)
//
// OYTEL_SERVER_BIN names the binary (default target/debug/oytel-server); CHROMIUM the browser
// (default /usr/bin/chromium). Without a browser the suite fails, naming what is missing,
// unless OYTEL_BROWSER_OPTIONAL=1 (then it is reported as skipped, never as passed).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import jsQR from 'jsqr';
import { PNG } from 'pngjs';

const root = resolve(import.meta.dirname, '../../../..');
const bin = process.env.OYTEL_SERVER_BIN ?? join(root, 'target/debug/oytel-server');
const browserPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const shots = join(root, 'target/dashboard-screenshots');
const OPERATOR_TOKEN = 'console-test-operator-token';

const missing = !existsSync(browserPath) ? `no browser at ${browserPath} (apt-get install chromium)`
  : !existsSync(bin) ? `no server at ${bin} (cargo build -p oytel-server)` : null;
if (missing && process.env.OYTEL_BROWSER_OPTIONAL !== '1') {
  throw new Error(`cannot run the browser suite: ${missing}`);
}
const skip = missing ?? false;

let dir, db, server, base, browser, receiver, evil;
let partnerId, liveKey, sandboxKey;
const received = [];

function cli(...args) {
  return execFileSync(bin, [...args, '--database-url', db], { encoding: 'utf8' }).trim();
}

async function listen(handler) {
  const http = createServer(handler);
  await new Promise((ok) => http.listen(0, '127.0.0.1', ok));
  return { http, port: http.address().port };
}

async function freePort() {
  const { http, port } = await listen(() => {});
  await new Promise((ok) => http.close(ok));
  return port;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'oytel-console-'));
  mkdirSync(shots, { recursive: true });
  db = `sqlite:${join(dir, 'oytel.db')}`;
  cli('migrate');
  partnerId = cli('partner', 'create', '--name', 'Wanderlust Travel', '--email', 'ops@wanderlust.example');
  cli('partner', 'credit', partnerId, '--amount', '200');
  liveKey = cli('key', 'create', '--partner', partnerId, '--env', 'live');
  sandboxKey = cli('key', 'create', '--partner', partnerId, '--env', 'sandbox');

  // A webhook receiver that answers 200 and keeps what it got.
  receiver = await listen((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { received.push({ id: req.headers['webhook-id'], body }); res.end('ok'); });
  });
  // Another site, with a form that posts to the console.
  evil = await listen((req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<form id="f" method="post" action="${base}/dashboard/admin/partners/${partnerId}/credit">
      <input name="amount" value="1000"><input name="csrf" value="guess"></form>
      <script>document.getElementById('f').submit()</script>`);
  });

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--mode', 'production'], {
    env: {
      ...process.env, OYTEL_DATABASE_URL: db, OYTEL_OPERATOR_TOKEN: OPERATOR_TOKEN,
      OYTEL_PUBLIC_URL: base, OYTEL_WEBHOOK_ALLOW_PRIVATE: 'true', OYTEL_LOG: 'warn',
      OYTEL_WEBHOOK_RETRY_SCHEDULE: '200ms,500ms,1s',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`${base}/readyz`)).ok) break; } catch { /* not yet */ }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  browser = await chromium.launch({
    executablePath: browserPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill();
  receiver?.http.close();
  evil?.http.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function provision(key, reference) {
  const res = await fetch(`${base}/api/v1/esim/provision`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'idempotency-key': `console-${reference}` },
    body: JSON.stringify({ plan_id: 'uk-lite-10', customer_email: 'jane@example.com', customer_name: 'Jane Doe', reference_id: reference }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

async function signIn(page, key) {
  await page.goto(`${base}/dashboard`);
  assert.match(page.url(), /\/dashboard\/sign-in$/);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/dashboard`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

function balanceText(dollars) {
  return `$${dollars.toFixed(2)}`;
}

test('a partner signs in, finds a provisioned eSIM and its QR code decodes to the activation code', { skip }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/dashboard/sign-in`);
  await shot(page, 'sign-in');
  await signIn(page, liveKey);
  await assert.doesNotReject(page.getByTestId('balance').waitFor());
  assert.equal(await page.getByTestId('balance').textContent(), balanceText(200));

  const esim = await provision(liveKey, 'trip-42');
  await page.getByRole('link', { name: 'eSIMs' }).click();
  await page.getByLabel('Reference or customer email').fill('trip-42');
  await page.getByRole('button', { name: 'Filter' }).click();
  await shot(page, 'esims');
  await page.getByRole('link', { name: esim.esim_id }).click();
  await page.getByTestId('activation-code').waitFor();
  await shot(page, 'esim');
  const shown = (await page.getByTestId('activation-code').textContent()).trim();
  assert.equal(shown, esim.activation_code);
  const src = await page.getByTestId('qr').getAttribute('src');
  const png = PNG.sync.read(Buffer.from(await (await page.request.get(src)).body()));
  const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  assert.equal(decoded?.data, esim.activation_code, 'the QR image decodes to the activation code');

  // On a phone-width screen nothing runs off the side, and the page is still usable.
  await page.setViewportSize({ width: 375, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
  await shot(page, 'esim-phone');
  await page.setViewportSize({ width: 1200, height: 900 });
  // Keyboard: the skip link is the first stop and leads to the content.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');

  for (const [name, label] of [['orders', 'Orders'], ['statement', 'Statement'], ['keys', 'API keys'], ['overview', 'Overview']]) {
    await page.getByRole('link', { name: label, exact: true }).click();
    await page.getByRole('heading', { level: 1 }).waitFor();
    await shot(page, name);
  }
  const keysHtml = await (await context.request.get(`${base}/dashboard/keys`)).text();
  assert.ok(!keysHtml.includes(liveKey) && !keysHtml.includes(sandboxKey), 'no key is ever shown');
  await context.close();
});

test('a partner adds an endpoint, sees a delivery with its attempt and redelivers it', { skip }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, liveKey);
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await page.getByLabel('URL (https)').fill(`http://127.0.0.1:${receiver.port}/oytel`);
  await page.getByLabel('Description (optional)').fill('booking system');
  await page.getByRole('button', { name: 'Add the endpoint' }).click();
  const secret = (await page.getByTestId('secret').textContent()).trim();
  assert.match(secret, /^whsec_/, 'the secret is shown once');

  await provision(liveKey, 'trip-43');
  let rows = 0;
  for (let i = 0; i < 50 && rows === 0; i++) {
    await page.goto(`${base}/dashboard/webhooks`);
    rows = await page.getByTestId('delivery-log').locator('tbody tr').count().catch(() => 0);
    if (rows === 0) await new Promise((ok) => setTimeout(ok, 200));
  }
  assert.ok(rows >= 1, 'the delivery shows in the log');
  const first = page.getByTestId('delivery-log').locator('tbody tr').first();
  assert.match(await first.textContent(), /esim\.provisioned/);
  assert.match(await first.textContent(), /200/);
  await shot(page, 'webhooks');
  const before = received.length;
  await first.getByRole('button', { name: 'Redeliver' }).click();
  for (let i = 0; i < 50 && received.length === before; i++) await new Promise((ok) => setTimeout(ok, 100));
  assert.equal(received.length, before + 1, 'the receiver got it again');
  assert.equal(received.at(-1).id, received.at(-2).id, 'with the same webhook-id');

  // Edit it: only two event types from now on.
  await page.goto(`${base}/dashboard/webhooks`);
  await page.getByRole('link', { name: /^we_/ }).first().click();
  await page.getByLabel('esim.activated').check();
  await page.getByLabel('esim.expired').check();
  await page.getByRole('button', { name: 'Save the endpoint' }).click();
  await page.waitForURL(`${base}/dashboard/webhooks`);
  assert.match(await page.locator('table').first().textContent(), /esim\.activated, esim\.expired/);
  await context.close();
});

test('the operator credits a partner and the partner sees the new balance', { skip }, async () => {
  const operator = await browser.newContext();
  const admin = await operator.newPage();
  await admin.goto(`${base}/dashboard/admin/sign-in`);
  await admin.getByLabel('Operator token').fill(OPERATOR_TOKEN);
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL(`${base}/dashboard/admin`);
  await shot(admin, 'admin-partners');
  await admin.getByRole('link', { name: 'Operations' }).click();
  await admin.getByRole('heading', { name: 'Webhook queue' }).waitFor();
  await shot(admin, 'admin-operations');
  await admin.getByRole('link', { name: 'Partners' }).click();
  const partner = await browser.newContext();
  const page = await partner.newPage();
  await signIn(page, liveKey);
  const before = Number((await page.getByTestId('balance').textContent()).replace('$', ''));
  await admin.getByLabel(/Amount to credit to Wanderlust Travel/).fill('50');
  await admin.getByRole('button', { name: 'Credit' }).click();
  await admin.waitForURL(`${base}/dashboard/admin`);
  assert.equal(await admin.getByTestId(`balance-${partnerId}`).textContent(), balanceText(before + 50));
  await page.reload();
  assert.equal(await page.getByTestId('balance').textContent(), balanceText(before + 50));

  // A key created in the console is shown once and works at once.
  await admin.getByRole('link', { name: partnerId }).click();
  await admin.getByLabel('Environment').selectOption('sandbox');
  await admin.getByRole('button', { name: 'Create the key' }).click();
  const created = (await admin.getByTestId('new-key').textContent()).trim();
  assert.match(created, /^sk_sandbox_/);
  await shot(admin, 'admin-partner');
  const account = await fetch(`${base}/api/v1/account`, { headers: { authorization: `Bearer ${created}` } });
  assert.equal(account.status, 200);
  await admin.goto(`${base}/dashboard/admin/partners/${partnerId}`);
  assert.equal(await admin.getByTestId('new-key').count(), 0, 'shown only once');
  await operator.close();
  await partner.close();
});

test('signing out ends the session, and so does revoking its key', { skip }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, liveKey);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'oytel_session');
  assert.ok(session.httpOnly && session.sameSite === 'Strict', 'HttpOnly, SameSite=Strict');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/dashboard\/sign-in$/);
  // The old cookie opens nothing.
  const replay = await fetch(`${base}/dashboard`, { headers: { cookie: `oytel_session=${session.value}` }, redirect: 'manual' });
  assert.equal(replay.status, 303);
  assert.match(replay.headers.get('location'), /sign-in/);

  const revoked = await browser.newContext();
  const other = await revoked.newPage();
  await signIn(other, sandboxKey);
  const keyId = cli('key', 'list', '--partner', partnerId).split('\n').map((l) => JSON.parse(l))
    .find((k) => k.environment === 'sandbox').id;
  cli('key', 'revoke', keyId);
  await other.reload();
  assert.match(other.url(), /\/dashboard\/sign-in$/, 'the revoked key\'s session is gone');
  await context.close();
  await revoked.close();
});

test('a form posted from another site is refused', { skip }, async () => {
  const context = await browser.newContext();
  const admin = await context.newPage();
  await admin.goto(`${base}/dashboard/admin/sign-in`);
  await admin.getByLabel('Operator token').fill(OPERATOR_TOKEN);
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL(`${base}/dashboard/admin`);
  const before = await admin.getByTestId(`balance-${partnerId}`).textContent();
  // The same browser, signed in, opens another site whose page posts to the console.
  const attack = await context.newPage();
  const answer = attack.waitForResponse((r) => r.url().includes('/credit'));
  await attack.goto(`http://localhost:${evil.port}/`);
  const status = (await answer).status();
  assert.ok([303, 403].includes(status), `refused (${status})`);
  await admin.reload();
  assert.equal(await admin.getByTestId(`balance-${partnerId}`).textContent(), before, 'nothing was credited');
  await context.close();
});
