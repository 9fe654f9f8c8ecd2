// Standard Webhooks verification: the specification's test vector, rotation, tampering and
// replay windows.
import assert from "node:assert/strict";
import { test } from "node:test";

import { OytelClient, sign, verify, WebhookVerificationError } from "../../dist/esm/index.js";

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const timestamp = 1614265330;
const payload = '{"test": 2432232314}';
const at = new Date(timestamp * 1000);
const headers = (signature, ts = String(timestamp)) => ({
  "webhook-id": id,
  "webhook-timestamp": ts,
  "webhook-signature": signature,
});

test("the specification's test vector signs and verifies", () => {
  const expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
  assert.equal(sign(secret, id, timestamp, payload), expected);
  assert.deepEqual(verify(payload, headers(expected), secret, at), { test: 2432232314 });
  assert.deepEqual(verify(Buffer.from(payload), new Headers(headers(expected)), secret, at), { test: 2432232314 });
});

test("one matching signature of several is enough (a secret being rotated)", () => {
  const other = sign("whsec_" + Buffer.alloc(32, 7).toString("base64"), id, timestamp, payload);
  const both = `${other} ${sign(secret, id, timestamp, payload)}`;
  assert.deepEqual(verify(payload, headers(both), secret, at), { test: 2432232314 });
});

test("a tampered body, a wrong secret, a stale or missing header is refused", () => {
  const good = sign(secret, id, timestamp, payload);
  const refused = [
    () => verify('{"test": 1}', headers(good), secret, at),
    () => verify(payload, headers(good), "whsec_" + Buffer.alloc(24, 1).toString("base64"), at),
    () => verify(payload, headers(good), secret, new Date((timestamp + 301) * 1000)),
    () => verify(payload, { "webhook-id": id, "webhook-timestamp": String(timestamp) }, secret, at),
    () => verify(payload, headers(good, "soon"), secret, at),
  ];
  for (const call of refused) assert.throws(call, WebhookVerificationError);
});

test("the client verifies with the same rules and camel-cases the event", () => {
  const body = JSON.stringify({ id: "evt_1", event: "esim.activated", timestamp: "2026-11-30T00:00:00Z", data: { esim_id: "esim_1", customer_email: "a@example.com", plan_id: "p" } });
  const now = Math.floor(Date.now() / 1000);
  const client = new OytelClient({ apiKey: "sk_sandbox_x" });
  const event = client.webhooks.verify(body, headers(sign(secret, id, now, body), String(now)), secret);
  assert.equal(event.data.esimId, "esim_1");
  assert.equal(event.event, "esim.activated");
});
