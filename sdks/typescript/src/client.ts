// `OytelClient`: the key, the environment it belongs to, where the API is, and the
// resources. The environment is checked against the key's prefix when the client is made,
// so that a live key is never used believing it is a sandbox one.

import { Transport } from "./http.js";
import { AccountResource, Esims, Orders, Plans, Sandbox, Webhooks } from "./resources.js";

/** The package's version, sent in `User-Agent`. */
export const VERSION = "1.0.0";

/** The documented API host. */
export const DEFAULT_BASE_URL = "https://api.oytel.online";

export type Environment = "production" | "sandbox";

export interface OytelClientOptions {
  /** `sk_live_…` (production) or `sk_sandbox_…` (sandbox). */
  apiKey: string;
  /** The key's environment; checked against its prefix (derived from it when left out). */
  environment?: Environment;
  /** Where the API is: this option, else `OYTEL_BASE_URL`, else the documented host. */
  baseUrl?: string;
  /** Timeout of each attempt, milliseconds (default 30 000). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 3; 0 turns them off). */
  maxRetries?: number;
  /** The first retry waits up to this, doubling each time (default 500 ms). */
  retryBaseMs?: number;
  /** No wait between retries is longer (default 8 000 ms). */
  retryMaxMs?: number;
  /** A `fetch` to use instead of the global one (tests, proxies). */
  fetch?: typeof fetch;
}

const PREFIXES: Record<Environment, string> = {
  production: "sk_live_",
  sandbox: "sk_sandbox_",
};

/** The environment of `apiKey`, from its prefix. */
export function environmentOf(apiKey: string): Environment | undefined {
  return (Object.keys(PREFIXES) as Environment[]).find((env) =>
    apiKey.startsWith(PREFIXES[env]),
  );
}

export class OytelClient {
  /** The environment of the key. */
  readonly environment: Environment;
  /** The plan catalog. */
  readonly plans: Plans;
  /** Buying eSIMs, and the orders. */
  readonly orders: Orders;
  /** eSIMs: details, status, lists, suspend/resume, cancel, packages and top-ups. */
  readonly esims: Esims;
  /** Balance, limits, low-balance threshold and the statement. */
  readonly account: AccountResource;
  /** Webhook endpoints, the delivery log, redelivery, and signature verification. */
  readonly webhooks: Webhooks;
  /** The sandbox's simulations. */
  readonly sandbox: Sandbox;

  constructor(options: OytelClientOptions) {
    if (options === undefined || typeof options.apiKey !== "string" || options.apiKey === "") {
      throw new TypeError("OytelClient needs an apiKey (sk_live_… or sk_sandbox_…)");
    }
    const derived = environmentOf(options.apiKey);
    if (derived === undefined) {
      throw new TypeError(
        "the apiKey is not an Oytel API key: keys start with sk_live_ (production) or sk_sandbox_ (sandbox)",
      );
    }
    if (options.environment !== undefined && options.environment !== derived) {
      throw new TypeError(
        `environment is '${options.environment}' but the apiKey is a ${derived} key (${PREFIXES[derived]}…)`,
      );
    }
    this.environment = derived;
    const env = typeof process === "undefined" ? undefined : process.env["OYTEL_BASE_URL"];
    const transport = new Transport({
      apiKey: options.apiKey,
      baseUrl: options.baseUrl ?? (env || DEFAULT_BASE_URL),
      timeoutMs: options.timeoutMs ?? 30_000,
      maxRetries: options.maxRetries ?? 3,
      retryBaseMs: options.retryBaseMs ?? 500,
      retryMaxMs: options.retryMaxMs ?? 8_000,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      userAgent: `oytel-esim-sdk/${VERSION} node/${typeof process === "undefined" ? "?" : process.versions.node}`,
    });
    this.plans = new Plans(transport);
    this.orders = new Orders(transport);
    this.esims = new Esims(transport);
    this.account = new AccountResource(transport);
    this.webhooks = new Webhooks(transport);
    this.sandbox = new Sandbox(transport);
  }
}
