// Webhook signatures (Standard Webhooks, as the server signs them): the signed content is
// `${webhook-id}.${webhook-timestamp}.${body}`, signed with HMAC-SHA256 under the base64 key
// of the `whsec_…` secret; `webhook-signature` lists `v1,<base64>` signatures separated by
// spaces (two while a secret rotates). A delivery is accepted when one signature matches
// (compared in constant time) and its timestamp is within five minutes of now.

import { createHmac, timingSafeEqual } from "node:crypto";

import { camelize, type Schema } from "./case.js";
import { OytelError } from "./errors.js";

/** How far a delivery's timestamp may be from now, seconds. */
export const TOLERANCE_SECONDS = 5 * 60;

/** A verified eSIM event (`esim.*`, `usage.threshold`, `webhook.test`). */
export type WebhookEvent = Schema<"WebhookEvent">;
/** A verified account event (`account.balance_low`). */
export type AccountWebhookEvent = Schema<"AccountWebhookEvent">;

/** A delivery that is not ours: a bad or missing signature, or an old timestamp. */
export class WebhookVerificationError extends OytelError {
  constructor(message: string) {
    super({ status: 0, code: "WEBHOOK_VERIFICATION_FAILED", message });
  }
}

/** Request headers as Node, fetch or a framework gives them. */
export type HeaderSource =
  | Headers
  | Record<string, string | string[] | undefined>
  | { get(name: string): string | null };

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value[0] : value;
}

/** The signature of `id`, `timestamp` and `payload` under `secret`, as `v1,<base64>`. */
export function sign(secret: string, id: string, timestamp: number, payload: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const mac = createHmac("sha256", key).update(`${id}.${timestamp}.${payload}`).digest("base64");
  return `v1,${mac}`;
}

/**
 * Verifies a delivery and returns its event, camel-cased. `payload` must be the raw body as
 * received (a string or bytes: parse it only after). Throws `WebhookVerificationError` when
 * the delivery is not signed with `secret` or is older than five minutes.
 */
export function verify<E = WebhookEvent>(
  payload: string | Uint8Array,
  headers: HeaderSource,
  secret: string,
  now: Date = new Date(),
): E {
  const body = typeof payload === "string" ? payload : Buffer.from(payload).toString("utf8");
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError(
      "missing webhook-id, webhook-timestamp or webhook-signature header",
    );
  }
  if (!/^\d+$/.test(timestamp)) {
    throw new WebhookVerificationError("webhook-timestamp is not a number of seconds");
  }
  const seconds = Number(timestamp);
  if (Math.abs(now.getTime() / 1000 - seconds) > TOLERANCE_SECONDS) {
    throw new WebhookVerificationError("webhook-timestamp is more than five minutes from now");
  }
  const expected = Buffer.from(sign(secret, id, seconds, body));
  const matches = signatures.split(" ").some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw new WebhookVerificationError("no signature matches the secret");
  return camelize<E>(JSON.parse(body));
}
