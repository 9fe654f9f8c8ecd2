// oytel-esim-sdk: the Oytel eSIM wholesale API for Node.js and TypeScript.

export { OytelClient, environmentOf, DEFAULT_BASE_URL, VERSION } from "./client.js";
export type { Environment, OytelClientOptions } from "./client.js";
export {
  OytelError,
  AuthenticationError,
  InsufficientBalanceError,
  ValidationError,
  NotFoundError,
  RateLimitError,
  OytelConnectionError,
} from "./errors.js";
export { Paginated } from "./pages.js";
export type { Page } from "./pages.js";
export type { CallOptions } from "./http.js";
export { verify, sign, WebhookVerificationError, TOLERANCE_SECONDS } from "./webhooks.js";
export type { WebhookEvent, AccountWebhookEvent, HeaderSource } from "./webhooks.js";
export type * from "./resources.js";
export type { Camelize, Schema } from "./case.js";
export type { components, paths } from "./generated/openapi.js";
