// The SDK against a real oytel-server (SQLite): every call, the errors a partner meets, and a
// webhook delivered, verified and parsed.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import {
  InsufficientBalanceError,
  NotFoundError,
  OytelClient,
  ValidationError,
  WebhookVerificationError,
} from "../../dist/esm/index.js";
import { decodeQr, isPng, missing, startServer } from "./server.mjs";

const skip = missing();
let server;
let sandbox;
let live;

before(async () => {
  if (skip) return;
  server = await startServer();
  sandbox = new OytelClient({ apiKey: server.sandboxKey, environment: "sandbox", baseUrl: server.baseUrl });
  live = new OytelClient({ apiKey: server.liveKey, environment: "production", baseUrl: server.baseUrl });
});

after(async () => server?.stop());

const order = (client, extra = {}) =>
  client.orders.create({
    planSlug: "eu-roam-50",
    termMonths: 1,
    customerEmail: "customer@example.com",
    customerName: "John Doe",
    ...extra,
  });

test("the documented example: buy, read, and a QR code that decodes to the activation code", { skip }, async () => {
  const created = await order(sandbox, { referenceId: "order-123" });
  const esim = await sandbox.esims.get(created.esimId);
  assert.equal(esim.qrCodeUrl, created.qrCodeUrl);
  assert.equal(esim.referenceId, "order-123");
  const image = await fetch(esim.qrCodeUrl);
  assert.equal(image.headers.get("content-type"), "image/png");
  const bytes = new Uint8Array(await image.arrayBuffer());
  assert.ok(isPng(bytes));
  assert.equal(await decodeQr(bytes), esim.activationCode);
});

test("plans, orders and eSIMs: reads, lists and filters", { skip }, async () => {
  const plans = await sandbox.plans.list({ country: "GB" });
  assert.ok(plans.some((p) => p.id === "eu-roam-50"));
  assert.ok((await sandbox.plans.list({ region: "europe" })).every((p) => p.region === "europe"));
  const plan = await sandbox.plans.get("uk-massive-650");
  assert.equal(plan.pricing["1_month"], 29.95);
  const first = await order(sandbox, { referenceId: "listed" });
  const second = await order(sandbox, { referenceId: "listed" });
  const got = await sandbox.orders.get(first.orderId);
  assert.equal(got.esimId, first.esimId);
  const listed = await sandbox.orders.list({ referenceId: "listed", limit: 1 }).toArray();
  assert.deepEqual(listed.map((o) => o.orderId), [second.orderId, first.orderId], "newest first, over two pages");
  const esims = [];
  for await (const e of sandbox.esims.list({ referenceId: "listed", limit: 1 })) esims.push(e.esimId);
  assert.deepEqual(esims, [second.esimId, first.esimId]);
  const status = await sandbox.esims.status(first.esimId);
  assert.equal(status.status, "provisioned");
  assert.equal(status.usage.dataLimitMb, 50_000);
});

test("the sandbox lifecycle: activate, usage, suspend, resume, expire", { skip }, async () => {
  const { esimId } = await order(sandbox);
  assert.equal((await sandbox.sandbox.activate(esimId)).status, "active");
  const used = await sandbox.sandbox.addUsage(esimId, { dataMb: 1_000, calls: 2, sms: 1 });
  assert.equal(used.usage.dataUsedMb, 1_000);
  assert.equal((await sandbox.esims.suspend(esimId)).status, "suspended");
  assert.equal((await sandbox.esims.suspend(esimId)).status, "suspended", "a repeat changes nothing");
  assert.equal((await sandbox.esims.resume(esimId)).status, "active");
  assert.equal((await sandbox.sandbox.expire(esimId)).status, "expired");
});

test("after the sale: top-ups, packages, cancel with a refund, the statement", { skip }, async () => {
  const before = await live.account.get();
  const bought = await order(live);
  const offers = await live.esims.topups(bought.esimId);
  const boost = offers.find((o) => o.topupId === "eu-boost-5");
  assert.ok(boost, JSON.stringify(offers));
  const topup = await live.esims.buyTopup(bought.esimId, { topupId: "eu-boost-5", idempotencyKey: "boost-node" });
  const again = await live.esims.buyTopup(bought.esimId, { topupId: "eu-boost-5", idempotencyKey: "boost-node" });
  assert.equal(again.purchase.purchaseId, topup.purchase.purchaseId);
  assert.equal(again.replayed, true);
  assert.equal(topup.package.dataAllowanceMb, 55_000);
  const renewal = await live.esims.buyTopup(bought.esimId, { topupId: "renewal-1m" });
  assert.equal(renewal.package.state, "queued");
  const { packages } = await live.esims.packages(bought.esimId);
  assert.deepEqual(packages.map((p) => p.state), ["active", "queued"]);
  const cancelled = await live.esims.cancel(bought.esimId, { reason: "trip cancelled" });
  assert.equal(cancelled.status, "cancelled");
  assert.equal(
    cancelled.refund.amountCents,
    bought.billing.costCents + boost.priceCents + renewal.billing.costCents,
    "never activated, unused, queued: all of it back",
  );
  const after = await live.account.get();
  assert.equal(after.balance.availableCents, before.balance.availableCents);
  const lines = await live.account.transactions({ from: new Date(Date.now() - 3_600_000) }).toArray();
  const kinds = lines.map((l) => l.kind);
  assert.deepEqual(kinds.filter((k) => k === "refund").length, 3);
  assert.ok(lines.every((l) => l.esimId === bought.esimId || l.kind === "credit"));
  const updated = await live.account.update({ lowBalanceThreshold: 50 });
  assert.equal(updated.lowBalanceThreshold, 50);
  assert.equal((await live.account.update({ lowBalanceThreshold: null })).lowBalanceThreshold, null);
});

test("errors a partner meets are typed, with the server's code and request id", { skip }, async () => {
  const notFound = await sandbox.esims.get("esim_nope").catch((e) => e);
  assert.ok(notFound instanceof NotFoundError);
  assert.equal(notFound.code, "ESIM_NOT_FOUND");
  assert.match(notFound.requestId, /^req_/);
  const invalid = await order(sandbox, { customerEmail: "not-an-email" }).catch((e) => e);
  assert.ok(invalid instanceof ValidationError);
  assert.equal(invalid.field, "customer_email");
  const unknownPlan = await sandbox.orders.create({ planSlug: "invalid-plan", customerEmail: "a@example.com", customerName: "A" }).catch((e) => e);
  assert.equal(unknownPlan.code, "PLAN_NOT_FOUND");
  // Renewals until the live balance ($200) cannot pay one and keep its minimum.
  const { esimId } = await order(live);
  let broke;
  for (let i = 0; i < 20 && broke === undefined; i++) {
    broke = await live.esims.buyTopup(esimId, { topupId: "renewal-12m" }).then(() => undefined, (e) => e);
  }
  assert.ok(broke instanceof InsufficientBalanceError, String(broke));
  assert.equal(broke.code, "INSUFFICIENT_BALANCE");
});

test("a webhook is delivered, verified with the endpoint's secret and parsed", { skip }, async () => {
  const received = [];
  const receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${receiver.address().port}/hooks`;
    const endpoint = await sandbox.webhooks.createEndpoint({ url, events: ["esim.activated", "webhook.test"] });
    assert.match(endpoint.secret, /^whsec_/);
    assert.ok((await sandbox.webhooks.listEndpoints()).some((e) => e.id === endpoint.id));
    assert.equal((await sandbox.webhooks.getEndpoint(endpoint.id)).url, url);
    const { esimId } = await order(sandbox);
    await sandbox.sandbox.activate(esimId);
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(received.length, 1);
    const [delivery] = received;
    const event = sandbox.webhooks.verify(delivery.body, delivery.headers, endpoint.secret);
    assert.equal(event.event, "esim.activated");
    assert.equal(event.data.esimId, esimId);
    assert.throws(() => sandbox.webhooks.verify(delivery.body, delivery.headers, "whsec_" + Buffer.alloc(32).toString("base64")), WebhookVerificationError);

    const test = await sandbox.webhooks.testEndpoint(endpoint.id);
    const redelivered = await sandbox.webhooks.redeliver(test.eventId);
    assert.ok(redelivered.deliveries >= 1, JSON.stringify(redelivered));
    for (let i = 0; i < 100 && received.length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    const attempts = await sandbox.webhooks.attempts({ endpointId: endpoint.id }).toArray();
    assert.ok(attempts.length >= 1 && attempts.every((a) => a.url === url));
    const rotated = await sandbox.webhooks.rotateSecret(endpoint.id);
    assert.notEqual(rotated.secret, endpoint.secret);
    const disabled = await sandbox.webhooks.updateEndpoint(endpoint.id, { description: "node" });
    assert.equal(disabled.description, "node");
    assert.match((await sandbox.webhooks.signingSecret()).secret, /^whsec_/);
    await sandbox.webhooks.deleteEndpoint(endpoint.id);
    const gone = await sandbox.webhooks.getEndpoint(endpoint.id).catch((e) => e);
    assert.ok(gone instanceof NotFoundError);
  } finally {
    receiver.close();
  }
});
