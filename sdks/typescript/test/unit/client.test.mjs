// The client against a scripted fetch: the documented surface, retries, idempotency, errors,
// pages and timeouts.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AuthenticationError,
  InsufficientBalanceError,
  NotFoundError,
  OytelClient,
  OytelConnectionError,
  RateLimitError,
  ValidationError,
} from "../../dist/esm/index.js";
import { backoff } from "../../dist/esm/http.js";
import { error, fast, json, scripted } from "./support.mjs";

const provisioned = {
  success: true,
  order_id: "ord_1",
  esim_id: "esim_1",
  iccid: "8944700000000000001",
  qr_code_url: "https://api.test/qr/t.png",
  activation_code: "LPA:1$smdp.test$M1",
  mobile_number: "+447700900001",
  expires_at: "2026-12-30T00:00:00Z",
  status: "provisioned",
  reference_id: null,
  esim: { esim_id: "esim_1" },
  billing: { cost_usd: 24.95, cost_cents: 2495, currency: "USD", remaining_balance: 100, remaining_balance_cents: 10000, environment: "sandbox" },
  meta: { request_id: "req_1", environment: "sandbox", timestamp: "2026-11-30T00:00:00Z" },
};

test("the environment must match the key's prefix", () => {
  assert.throws(() => new OytelClient({ apiKey: "sk_live_x", environment: "sandbox" }), /production key/);
  assert.throws(() => new OytelClient({ apiKey: "your-api-key", environment: "production" }), /sk_live_/);
  assert.throws(() => new OytelClient({}), /apiKey/);
  assert.equal(new OytelClient({ apiKey: "sk_live_x" }).environment, "production");
  assert.equal(new OytelClient({ apiKey: "sk_sandbox_x", environment: "sandbox" }).environment, "sandbox");
});

test("orders.create sends the documented fields as the wire's and answers in camelCase", async () => {
  const { fetch, calls } = scripted([json(201, provisioned)]);
  const client = new OytelClient({ ...fast, fetch });
  const order = await client.orders.create({
    planSlug: "eu-roam-50",
    termMonths: 1,
    customerEmail: "customer@example.com",
    customerName: "John Doe",
  });
  assert.equal(calls[0].method, "POST");
  assert.equal(calls[0].url.pathname, "/api/v1/esim/provision");
  assert.deepEqual(calls[0].body, {
    plan_id: "eu-roam-50",
    term_months: 1,
    customer_email: "customer@example.com",
    customer_name: "John Doe",
  });
  assert.equal(calls[0].headers.authorization, "Bearer sk_sandbox_test");
  assert.equal(order.esimId, "esim_1");
  assert.equal(order.qrCodeUrl, "https://api.test/qr/t.png");
  assert.equal(order.billing.costCents, 2495);
  assert.equal(order.idempotencyKey, calls[0].headers["idempotency-key"]);
  assert.equal(order.replayed, false);
});

test("a create keeps one idempotency key across its retries", async () => {
  const { fetch, calls } = scripted([
    new TypeError("fetch failed"),
    error(503, "SERVICE_UNAVAILABLE"),
    json(201, provisioned, { "idempotent-replayed": "true" }),
  ]);
  const client = new OytelClient({ ...fast, fetch });
  const order = await client.orders.create({ planSlug: "eu-roam-50", customerEmail: "a@example.com", customerName: "A" });
  const keys = calls.map((c) => c.headers["idempotency-key"]);
  assert.equal(keys.length, 3);
  assert.ok(keys.every((k) => k === keys[0] && k.length > 0), keys.join(" "));
  assert.equal(order.replayed, true);
  const own = scripted([json(201, provisioned)]);
  await new OytelClient({ ...fast, fetch: own.fetch }).orders.create({
    planSlug: "eu-roam-50", customerEmail: "a@example.com", customerName: "A", idempotencyKey: "order-123",
  });
  assert.equal(own.calls[0].headers["idempotency-key"], "order-123");
});

test("429 is retried after Retry-After, and reported with it when retries run out", async () => {
  const limited = () => error(429, "RATE_LIMITED", "slow down", { headers: { "retry-after": "1" } });
  const { fetch, calls } = scripted([limited(), json(200, { success: true, plans: [], meta: {} })]);
  const client = new OytelClient({ ...fast, fetch });
  const started = Date.now();
  await client.plans.list();
  assert.equal(calls.length, 2);
  assert.ok(Date.now() - started >= 1000, "waited the second Retry-After asked for");
  const spent = scripted([limited()]);
  const err = await new OytelClient({ ...fast, fetch: spent.fetch, maxRetries: 0 }).plans.list().catch((e) => e);
  assert.ok(err instanceof RateLimitError);
  assert.equal(err.retryAfter, 1);
  assert.equal(err.code, "RATE_LIMITED");
});

test("a call that is not safe to repeat is not retried after an unknown outcome", async () => {
  const { fetch, calls } = scripted([new TypeError("socket hang up")]);
  const client = new OytelClient({ ...fast, fetch });
  const err = await client.webhooks.createEndpoint({ url: "https://hooks.example/a" }).catch((e) => e);
  assert.ok(err instanceof OytelConnectionError, String(err));
  assert.equal(calls.length, 1);
  const usage = scripted([error(500, "INTERNAL_ERROR")]);
  await new OytelClient({ ...fast, fetch: usage.fetch }).sandbox.addUsage("esim_1", { dataMb: 5 }).catch(() => {});
  assert.equal(usage.calls.length, 1, "usage would count twice");
});

test("reads are retried on 5xx and network errors, up to maxRetries", async () => {
  const { fetch, calls } = scripted([
    error(502, "BAD_GATEWAY"),
    new TypeError("fetch failed"),
    error(500, "INTERNAL_ERROR"),
    error(500, "INTERNAL_ERROR"),
  ]);
  const client = new OytelClient({ ...fast, fetch, maxRetries: 3 });
  const err = await client.esims.get("esim_1").catch((e) => e);
  assert.equal(calls.length, 4);
  assert.equal(err.status, 500);
  assert.equal(err.requestId, "req_1");
});

test("backoff is full jitter within its bounds", () => {
  for (let attempt = 0; attempt < 8; attempt++) {
    for (let i = 0; i < 200; i++) {
      const d = backoff(attempt, 100, 2000);
      assert.ok(d >= 0 && d <= Math.min(2000, 100 * 2 ** attempt), `${attempt}: ${d}`);
    }
  }
});

test("errors map to their classes by status and code", async () => {
  const cases = [
    [error(401, "INVALID_API_KEY"), AuthenticationError],
    [error(402, "INSUFFICIENT_BALANCE", "no money", { details: { balance: 10 } }), InsufficientBalanceError],
    [error(404, "ESIM_NOT_FOUND"), NotFoundError],
    [error(400, "VALIDATION_ERROR", "bad email", { details: { field: "customer_email" } }), ValidationError],
  ];
  for (const [answer, kind] of cases) {
    const { fetch } = scripted([answer]);
    const err = await new OytelClient({ ...fast, fetch }).esims.status("esim_1").catch((e) => e);
    assert.ok(err instanceof kind, `${err.code} is ${kind.name}`);
    assert.equal(err.requestId, "req_1");
  }
  const { fetch } = scripted([error(400, "VALIDATION_ERROR", "bad email", { details: { field: "customer_email" } })]);
  const err = await new OytelClient({ ...fast, fetch }).esims.status("e").catch((e) => e);
  assert.equal(err.field, "customer_email");
  assert.equal(err.message, "bad email");
});

test("lists are async iterators over every page, following the cursor", async () => {
  const page = (ids, next) => json(200, { success: true, data: ids.map((id) => ({ esim_id: id })), has_more: next !== undefined, next_cursor: next ?? null });
  const { fetch, calls } = scripted([page(["e3", "e2"], "c2"), page(["e1"])]);
  const client = new OytelClient({ ...fast, fetch });
  const ids = [];
  for await (const esim of client.esims.list({ status: "active", limit: 2 })) ids.push(esim.esimId);
  assert.deepEqual(ids, ["e3", "e2", "e1"]);
  assert.equal(calls[0].url.searchParams.get("status"), "active");
  assert.equal(calls[0].url.searchParams.get("cursor"), null);
  assert.equal(calls[1].url.searchParams.get("cursor"), "c2");
  assert.equal(calls[1].url.searchParams.get("limit"), "2");
});

test("a timeout ends an attempt; an abort ends the call without retries", async () => {
  // A server that never answers. (A real socket keeps Node running; here a timer does, as
  // `AbortSignal.timeout` does not.)
  const hang = (call) =>
    new Promise((_, reject) => {
      const alive = setInterval(() => {}, 1000);
      call.signal.addEventListener("abort", () => {
        clearInterval(alive);
        reject(call.signal.reason);
      });
    });
  const { fetch } = scripted([hang]);
  const client = new OytelClient({ ...fast, fetch, timeoutMs: 30, maxRetries: 0 });
  const err = await client.account.get().catch((e) => e);
  assert.ok(err instanceof OytelConnectionError);
  assert.match(err.message, /no answer within 30 ms/);
  const aborted = scripted([hang, hang]);
  const controller = new AbortController();
  const pending = new OytelClient({ ...fast, fetch: aborted.fetch }).account.get({ signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  const abortError = await pending.catch((e) => e);
  assert.match(abortError.message, /aborted/);
  assert.equal(aborted.calls.length, 1);
});

test("keys that start with a digit keep their name", async () => {
  const plan = { id: "p", pricing: { "1_month": 29.95, base_price: 29.95 } };
  const { fetch } = scripted([json(200, { success: true, plan })]);
  const got = await new OytelClient({ ...fast, fetch }).plans.get("p");
  assert.deepEqual(got.pricing, { "1_month": 29.95, basePrice: 29.95 });
});
