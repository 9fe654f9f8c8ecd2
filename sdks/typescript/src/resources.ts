// The API's resources, each a small class over the transport. Requests take camelCase
// fields and are sent as the wire's snake_case; answers come back camel-cased (src/case.ts).

import { randomUUID } from "node:crypto";

import { snakeify, type Schema } from "./case.js";
import type { CallOptions, Transport } from "./http.js";
import { Paginated, type Page } from "./pages.js";
import { verify, type HeaderSource, type WebhookEvent } from "./webhooks.js";

export type Plan = Schema<"Plan">;
export type Esim = Schema<"Esim">;
export type EsimStatusResponse = Schema<"StatusResponse">;
export type Order = Schema<"Order">;
export type Account = Schema<"AccountResponse">;
export type Transaction = Schema<"Transaction">;
export type Package = Schema<"Package">;
export type PackagesResponse = Schema<"PackagesResponse">;
export type TopUpOffer = Schema<"TopUpOffer">;
export type WebhookEndpoint = Schema<"WebhookEndpoint">;
export type CreatedWebhookEndpoint = Schema<"WebhookEndpointCreated">;
export type DeliveryAttempt = Schema<"DeliveryAttempt">;
export type EsimStatus = Schema<"EsimStatus">;
export type EventType = Schema<"EventType">;

/** What a paid create returns beside the answer: the key it was sent with (keep it to retry
 * after an error) and whether the server replayed an earlier request with that key. */
export interface Idempotent {
  idempotencyKey: string;
  replayed: boolean;
}

export type ProvisionedOrder = Schema<"ProvisionResponse"> & Idempotent;
export type Cancellation = Schema<"CancelResponse"> & Idempotent;
export type TopUp = Schema<"TopUpResponse"> & Idempotent;

/** Options of a paid create. */
export interface IdempotentOptions extends CallOptions {
  /** Your own `Idempotency-Key` (1–255 printable ASCII); one is generated otherwise. */
  idempotencyKey?: string;
}

/** Paging of a list. */
export interface ListOptions extends CallOptions {
  /** Items per page, 1–100 (default 20). */
  limit?: number;
}

type Query = Record<string, string | number | boolean | undefined>;

function page<T>(
  transport: Transport,
  path: string[],
  query: Query,
  options?: CallOptions,
): Paginated<T> {
  return new Paginated<T>(async (cursor) => {
    const answer = await transport.json<Page<T>>({
      method: "GET",
      path,
      query: { ...query, cursor },
      safe: true,
      options,
    });
    return answer.body;
  });
}

async function get<T>(transport: Transport, path: string[], options?: CallOptions, query?: Query) {
  return (await transport.json<T>({ method: "GET", path, query, safe: true, options })).body;
}

/** A POST or PATCH that is not a purchase; `safe` if repeating it changes nothing more. */
async function send<T>(
  transport: Transport,
  method: "POST" | "PATCH",
  path: string[],
  body: unknown,
  safe: boolean,
  options?: CallOptions,
): Promise<T> {
  return (await transport.json<T>({ method, path, body, safe, options })).body;
}

/** A paid create: sent with one idempotency key across its retries. */
async function create<T>(
  transport: Transport,
  path: string[],
  body: unknown,
  options: IdempotentOptions | undefined,
): Promise<T & Idempotent> {
  const idempotencyKey = options?.idempotencyKey ?? randomUUID();
  const answer = await transport.json<T>({
    method: "POST",
    path,
    body,
    safe: true,
    idempotencyKey,
    options,
  });
  return {
    ...answer.body,
    idempotencyKey,
    replayed: answer.headers.get("idempotent-replayed") === "true",
  };
}

const API = ["api", "v1"];

export class Plans {
  constructor(private readonly transport: Transport) {}

  /** The catalog, filtered by country (ISO alpha-2) or region. */
  async list(filter: { country?: string; region?: string } = {}, options?: CallOptions) {
    const answer = await get<Schema<"PlansResponse">>(
      this.transport,
      [...API, "plans"],
      options,
      filter,
    );
    return answer.plans;
  }

  /** One plan. */
  async get(planId: string, options?: CallOptions): Promise<Plan> {
    return (await get<Schema<"PlanResponse">>(this.transport, [...API, "plans", planId], options))
      .plan;
  }
}

/** `client.orders.create(...)`: the documented fields; `planSlug` is the plan's id. */
export interface CreateOrderInput {
  /** The plan's id, e.g. `eu-roam-50` (`planId` is accepted too). */
  planSlug?: string;
  planId?: string;
  /** 1, 3, 6 or 12. */
  termMonths?: number;
  customerEmail: string;
  customerName: string;
  referenceId?: string;
  webhookUrl?: string;
  /** Your own `Idempotency-Key`; one is generated otherwise. */
  idempotencyKey?: string;
}

export class Orders {
  constructor(private readonly transport: Transport) {}

  /** Buys an eSIM: one order, one eSIM, one charge, whatever the retries. */
  async create(input: CreateOrderInput, options?: CallOptions): Promise<ProvisionedOrder> {
    const { planSlug, planId, idempotencyKey, ...rest } = input;
    const body = snakeify({ planId: planSlug ?? planId, ...rest });
    return create<Schema<"ProvisionResponse">>(
      this.transport,
      [...API, "esim", "provision"],
      body,
      { ...options, idempotencyKey },
    );
  }

  /** An order. */
  async get(orderId: string, options?: CallOptions): Promise<Order> {
    const { success: _, ...order } = await get<Schema<"OrderResponse">>(
      this.transport,
      [...API, "orders", orderId],
      options,
    );
    return order;
  }

  /** The key's orders, newest first. */
  list(filter: { referenceId?: string } & ListOptions = {}): Paginated<Order> {
    const { limit, referenceId, ...options } = filter;
    return page(this.transport, [...API, "orders"], snakeify({ limit, referenceId }) as Query, options);
  }
}

export class Esims {
  constructor(private readonly transport: Transport) {}

  /** An eSIM, with its activation code and QR code URLs. */
  async get(esimId: string, options?: CallOptions): Promise<Esim> {
    const { success: _, ...esim } = await get<Schema<"EsimResponse">>(
      this.transport,
      [...API, "esim", esimId],
      options,
    );
    return esim;
  }

  /** Status, usage (of the package in force) and expiry. */
  status(esimId: string, options?: CallOptions): Promise<EsimStatusResponse> {
    return get(this.transport, [...API, "esim", esimId, "status"], options);
  }

  /** The key's eSIMs, newest first. */
  list(
    filter: { status?: EsimStatus; referenceId?: string; customerEmail?: string } & ListOptions = {},
  ): Paginated<Esim> {
    const { limit, status, referenceId, customerEmail, ...options } = filter;
    const query = snakeify({ limit, status, referenceId, customerEmail }) as Query;
    return page(this.transport, [...API, "esims"], query, options);
  }

  /** Suspends an active eSIM (a repeat changes nothing). */
  suspend(esimId: string, options?: CallOptions): Promise<EsimStatusResponse> {
    return this.action(esimId, "suspend", options);
  }

  /** Resumes a suspended eSIM (a repeat changes nothing). */
  resume(esimId: string, options?: CallOptions): Promise<EsimStatusResponse> {
    return this.action(esimId, "resume", options);
  }

  private action(esimId: string, action: string, options?: CallOptions) {
    const path = [...API, "esim", esimId, action];
    return send<EsimStatusResponse>(this.transport, "POST", path, {}, true, options);
  }

  /** Cancels the eSIM for good; what comes back is in `refund` (refunds package by package). */
  cancel(
    esimId: string,
    input: { reason?: string } = {},
    options?: IdempotentOptions,
  ): Promise<Cancellation> {
    return create(this.transport, [...API, "esim", esimId, "cancel"], snakeify(input), options);
  }

  /** The eSIM's packages, the first first. */
  packages(esimId: string, options?: CallOptions): Promise<PackagesResponse> {
    return get(this.transport, [...API, "esim", esimId, "packages"], options);
  }

  /** The top-ups that may be bought for the eSIM now, with prices. */
  async topups(esimId: string, options?: CallOptions): Promise<TopUpOffer[]> {
    const answer = await get<Schema<"TopUpOffersResponse">>(
      this.transport,
      [...API, "esim", esimId, "topups"],
      options,
    );
    return answer.topups;
  }

  /** Buys a top-up (`topupId` from `topups()`): charged once, whatever the retries. */
  buyTopup(
    esimId: string,
    input: { topupId: string; idempotencyKey?: string },
    options?: CallOptions,
  ): Promise<TopUp> {
    const { idempotencyKey, ...rest } = input;
    return create(this.transport, [...API, "esim", esimId, "topups"], snakeify(rest), {
      ...options,
      idempotencyKey,
    });
  }
}

export class AccountResource {
  constructor(private readonly transport: Transport) {}

  /** The partner, balance, minimum balance and limits. */
  get(options?: CallOptions): Promise<Account> {
    return get(this.transport, [...API, "account"], options);
  }

  /** Sets (a number of dollars) or removes (`null`) the low-balance threshold. */
  update(input: { lowBalanceThreshold: number | null }, options?: CallOptions) {
    const body = snakeify(input);
    return send<Account>(this.transport, "PATCH", [...API, "account"], body, true, options);
  }

  /** The statement of the live balance, newest first; `from`/`to` as `Date` or RFC 3339. */
  transactions(
    filter: { from?: Date | string; to?: Date | string } & ListOptions = {},
  ): Paginated<Transaction> {
    const { limit, from, to, ...options } = filter;
    const time = (t?: Date | string) => (t instanceof Date ? t.toISOString() : t);
    return page(this.transport, [...API, "account", "transactions"], {
      limit,
      from: time(from),
      to: time(to),
    }, options);
  }
}

/** `client.webhooks.createEndpoint(...)`. */
export interface CreateEndpointInput {
  url: string;
  /** The event types to receive; none: the first release's four. */
  events?: EventType[];
  description?: string;
}

export class Webhooks {
  constructor(private readonly transport: Transport) {}

  /** Registers an endpoint; the answer's `secret` is shown only here. */
  createEndpoint(input: CreateEndpointInput, options?: CallOptions) {
    const path = [...API, "webhooks", "endpoints"];
    // A second endpoint would be created by a repeat: only refusals are retried.
    const body = snakeify({ ...input });
    return send<CreatedWebhookEndpoint>(this.transport, "POST", path, body, false, options);
  }

  /** The key's endpoints. */
  async listEndpoints(options?: CallOptions): Promise<WebhookEndpoint[]> {
    const answer = await get<Page<WebhookEndpoint>>(
      this.transport,
      [...API, "webhooks", "endpoints"],
      options,
    );
    return answer.data;
  }

  /** An endpoint. */
  async getEndpoint(endpointId: string, options?: CallOptions): Promise<WebhookEndpoint> {
    const { success: _, ...endpoint } = await get<Schema<"WebhookEndpointResponse">>(
      this.transport,
      [...API, "webhooks", "endpoints", endpointId],
      options,
    );
    return endpoint;
  }

  /** Changes an endpoint's URL, events, description, or enables it again. */
  async updateEndpoint(
    endpointId: string,
    input: { url?: string; events?: EventType[]; description?: string; enabled?: boolean },
    options?: CallOptions,
  ): Promise<WebhookEndpoint> {
    const path = [...API, "webhooks", "endpoints", endpointId];
    const answer = await send<Schema<"WebhookEndpointResponse">>(
      this.transport,
      "PATCH",
      path,
      snakeify(input),
      true,
      options,
    );
    const { success: _, ...endpoint } = answer;
    return endpoint;
  }

  /** Deletes an endpoint. */
  async deleteEndpoint(endpointId: string, options?: CallOptions): Promise<void> {
    await this.transport.send({
      method: "DELETE",
      path: [...API, "webhooks", "endpoints", endpointId],
      safe: true,
      options,
    });
  }

  /** A new secret for an endpoint; the old one keeps verifying for 24 hours. */
  rotateSecret(endpointId: string, options?: CallOptions) {
    const path = [...API, "webhooks", "endpoints", endpointId, "rotate-secret"];
    type Secret = Schema<"WebhookSecretResponse">;
    return send<Secret>(this.transport, "POST", path, undefined, false, options);
  }

  /** Sends a `webhook.test` event to the endpoint. */
  testEndpoint(endpointId: string, options?: CallOptions) {
    const path = [...API, "webhooks", "endpoints", endpointId, "test"];
    type Sent = Schema<"TestEventResponse">;
    return send<Sent>(this.transport, "POST", path, undefined, false, options);
  }

  /** The delivery log, newest first: of one endpoint, or of all. */
  attempts(filter: { endpointId?: string } & ListOptions = {}): Paginated<DeliveryAttempt> {
    const { endpointId, limit, ...options } = filter;
    const path =
      endpointId === undefined
        ? [...API, "webhooks", "attempts"]
        : [...API, "webhooks", "endpoints", endpointId, "attempts"];
    return page(this.transport, path, { limit }, options);
  }

  /** Delivers an event again to the endpoints that receive it. */
  redeliver(eventId: string, options?: CallOptions) {
    const path = [...API, "webhooks", "events", eventId, "redeliver"];
    type Redelivered = Schema<"RedeliverResponse">;
    return send<Redelivered>(this.transport, "POST", path, undefined, true, options);
  }

  /** The secret that signs deliveries to eSIMs' own `webhookUrl`. */
  signingSecret(options?: CallOptions) {
    return get<Schema<"WebhookSecretResponse">>(
      this.transport,
      [...API, "webhooks", "secret"],
      options,
    );
  }

  /** Verifies a delivery (Standard Webhooks) and returns its event; see `verify`. */
  verify<E = WebhookEvent>(payload: string | Uint8Array, headers: HeaderSource, secret: string): E {
    return verify<E>(payload, headers, secret);
  }
}

/** The sandbox's simulations (sandbox keys only). */
export class Sandbox {
  constructor(private readonly transport: Transport) {}

  /** The customer installs the eSIM: it becomes active (`esim.activated`). */
  activate(esimId: string, options?: CallOptions): Promise<EsimStatusResponse> {
    return this.simulate(esimId, "activate", {}, options);
  }

  /** The package in force ends now (a queued renewal starts, or the eSIM expires). */
  expire(esimId: string, options?: CallOptions): Promise<EsimStatusResponse> {
    return this.simulate(esimId, "expire", {}, options);
  }

  /** Usage on an active eSIM. */
  addUsage(
    esimId: string,
    usage: { dataMb?: number; calls?: number; sms?: number },
    options?: CallOptions,
  ): Promise<EsimStatusResponse> {
    return this.simulate(esimId, "usage", snakeify(usage), options);
  }

  private simulate(esimId: string, what: string, body: unknown, options?: CallOptions) {
    const path = [...API, "sandbox", "esim", esimId, what];
    // A repeated usage report would count twice.
    return send<EsimStatusResponse>(this.transport, "POST", path, body, what !== "usage", options);
  }
}
