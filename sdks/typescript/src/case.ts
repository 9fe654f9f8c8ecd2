// The one place where the wire's snake_case meets the SDK's camelCase: the public types are
// the generated spec types (src/generated/openapi.ts) with their keys camel-cased, and every
// answer goes through `camelize` once. Keys that start with a digit (`1_month`) stay as sent.

import type { components } from "./generated/openapi.js";

/** `qr_code_url` → `qrCodeUrl`; `1_month` stays. */
export type CamelCase<S extends string> = S extends `${number}${string}`
  ? S
  : S extends `${infer Head}_${infer Tail}`
    ? `${Head}${Capitalize<CamelCase<Tail>>}`
    : S;

/** A wire type with every key camel-cased, deeply. */
export type Camelize<T> = T extends (infer U)[]
  ? Camelize<U>[]
  : T extends Record<string, unknown>
    ? { [K in keyof T as K extends string ? CamelCase<K> : K]: Camelize<T[K]> }
    : T;

/** The camel-cased form of the spec's schema `Name`. */
export type Schema<Name extends keyof components["schemas"]> = Camelize<
  components["schemas"][Name]
>;

const camelKey = (key: string): string =>
  /^[0-9]/.test(key) ? key : key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

const snakeKey = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function mapKeys(value: unknown, key: (k: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => mapKeys(v, key));
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [key(k), mapKeys(v, key)]),
    );
  }
  return value;
}

/** An answer as the SDK returns it. */
export function camelize<T>(wire: unknown): T {
  return mapKeys(wire, camelKey) as T;
}

/** A request body or query as the wire takes it; `undefined` fields are dropped. */
export function snakeify(value: Record<string, unknown>): Record<string, unknown> {
  const defined = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
  return mapKeys(defined, snakeKey) as Record<string, unknown>;
}
