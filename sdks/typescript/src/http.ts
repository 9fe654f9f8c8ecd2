// The transport: one HTTP call with the key, a timeout per attempt, and retries that are
// safe. A create carries one `Idempotency-Key` across all its attempts, so a retried purchase
// is never charged twice.
//
// | what happened                                   | retried when                      |
// |-------------------------------------------------|-----------------------------------|
// | 429 (rate limited)                              | always, after `Retry-After`       |
// | 409 `IDEMPOTENCY_REQUEST_IN_PROGRESS`            | always, after `Retry-After`       |
// | 5xx, a network error, a timeout                 | the call is safe to repeat (reads, keyed creates, suspend/resume, updates by id) |
// | any other answer                                | never: it is the answer           |
//
// Waits are exponential with full jitter: a random delay in [0, min(max, base × 2^attempt)].

import { camelize } from "./case.js";
import { errorFor, OytelConnectionError, OytelError } from "./errors.js";

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call (and its retries). */
  signal?: AbortSignal;
  /** Overrides the client's timeout per attempt, milliseconds. */
  timeoutMs?: number;
}

/** Settings of the transport (from `OytelClient`'s options). */
export interface TransportSettings {
  apiKey: string;
  baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  fetch: typeof fetch;
  userAgent: string;
}

/** One call of the API. */
export interface Call {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  /** Path segments after the base URL; each is URL-encoded. */
  path: string[];
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Whether repeating the call after an unknown outcome is safe. */
  safe: boolean;
  idempotencyKey?: string;
  accept?: string;
  options?: CallOptions;
}

/** An answer. */
export interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/** `Retry-After` in seconds, if sent as a number. */
function retryAfterSeconds(headers: Headers): number | undefined {
  const value = headers.get("retry-after");
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** A random delay in [0, min(max, base × 2^attempt)] milliseconds. */
export function backoff(attempt: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** attempt);
}

export class Transport {
  constructor(readonly settings: TransportSettings) {}

  url(call: Pick<Call, "path" | "query">): string {
    const path = call.path.map(encodeURIComponent).join("/");
    const url = new URL(`${this.settings.baseUrl.replace(/\/+$/, "")}/${path}`);
    for (const [key, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  /** Sends `call`, retrying as the module's table says; the answer's JSON camel-cased. */
  async json<T>(call: Call): Promise<Answer<T>> {
    const answer = await this.send(call);
    return { ...answer, body: camelize<T>(answer.body) };
  }

  /** Sends `call`, retrying as the module's table says. */
  async send(call: Call): Promise<Answer<unknown>> {
    const { maxRetries, retryBaseMs, retryMaxMs } = this.settings;
    const userSignal = call.options?.signal;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.attempt(call);
      } catch (cause) {
        if (userSignal?.aborted) {
          throw new OytelConnectionError("the call was aborted", { cause });
        }
        const timedOut = cause instanceof Error && cause.name === "TimeoutError";
        if (call.safe && attempt < maxRetries) {
          await this.wait(backoff(attempt, retryBaseMs, retryMaxMs), userSignal);
          continue;
        }
        throw new OytelConnectionError(
          timedOut
            ? `no answer within ${call.options?.timeoutMs ?? this.settings.timeoutMs} ms`
            : `the server could not be reached: ${cause instanceof Error ? cause.message : String(cause)}`,
          { cause },
        );
      }
      const body = await readBody(response);
      if (response.ok) return { status: response.status, headers: response.headers, body };
      const retryAfter = retryAfterSeconds(response.headers);
      const error = errorFor(response.status, body, retryAfter);
      if (attempt < maxRetries && retryable(error, call.safe)) {
        const delay =
          retryAfter !== undefined
            ? retryAfter * 1000
            : backoff(attempt, retryBaseMs, retryMaxMs);
        await this.wait(delay, userSignal);
        continue;
      }
      throw error;
    }
  }

  private async wait(ms: number, signal?: AbortSignal): Promise<void> {
    try {
      await sleep(ms, signal);
    } catch (cause) {
      throw new OytelConnectionError("the call was aborted", { cause });
    }
  }

  private async attempt(call: Call): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.settings.apiKey}`,
      accept: call.accept ?? "application/json",
      "user-agent": this.settings.userAgent,
    };
    if (call.body !== undefined) headers["content-type"] = "application/json";
    if (call.idempotencyKey !== undefined) headers["idempotency-key"] = call.idempotencyKey;
    const signal = anySignal([
      AbortSignal.timeout(call.options?.timeoutMs ?? this.settings.timeoutMs),
      call.options?.signal,
    ]);
    return this.settings.fetch(this.url(call), {
      method: call.method,
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      signal,
    });
  }
}

function retryable(error: OytelError, safe: boolean): boolean {
  if (error.status === 429) return true;
  if (error.status === 409 && error.code === "IDEMPOTENCY_REQUEST_IN_PROGRESS") return true;
  return safe && error.status >= 500;
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === "") return undefined;
  if ((response.headers.get("content-type") ?? "").includes("json")) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/** A signal aborted when any of `signals` is (`AbortSignal.any` needs Node 20). */
function anySignal(signals: (AbortSignal | undefined)[]): AbortSignal {
  const controller = new AbortController();
  for (const signal of signals) {
    if (signal === undefined) continue;
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  }
  return controller.signal;
}
