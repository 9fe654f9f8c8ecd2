// Errors: every failure the SDK reports is an `OytelError`. The server's stable `code` picks
// the subclass (table below); what the server did not answer is an `OytelConnectionError`.
//
// | status, code                         | class                      |
// |--------------------------------------|----------------------------|
// | 401, any; 403 `FORBIDDEN`            | AuthenticationError        |
// | 402 `INSUFFICIENT_BALANCE`           | InsufficientBalanceError   |
// | 400 / 422 validation codes           | ValidationError (`field`)  |
// | 404                                  | NotFoundError              |
// | 429                                  | RateLimitError (`retryAfter`) |
// | anything else                        | OytelError                 |
// | no answer (network, timeout, abort)  | OytelConnectionError       |

/** What the server sent with an error. */
export interface ErrorInit {
  status: number;
  code: string;
  message: string;
  requestId?: string;
  details?: Record<string, unknown>;
  retryAfter?: number;
}

/** An error answered by the API, with its stable `code` (e.g. `PLAN_NOT_FOUND`). */
export class OytelError extends Error {
  /** HTTP status (0 when there was no answer). */
  readonly status: number;
  /** The stable error code. */
  readonly code: string;
  /** The request id, to quote to the operator (`req_…`). */
  readonly requestId?: string;
  /** The error's details, as sent (e.g. `field`, `balance`). */
  readonly details?: Record<string, unknown>;

  constructor(init: ErrorInit) {
    super(init.message);
    this.name = new.target.name;
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId;
    this.details = init.details;
  }
}

/** The key is missing, unknown, revoked or not allowed here. */
export class AuthenticationError extends OytelError {}

/** The live balance cannot pay and keep its minimum. */
export class InsufficientBalanceError extends OytelError {}

/** The request was refused as invalid; `field` names what to fix, when one does. */
export class ValidationError extends OytelError {
  readonly field?: string;
  constructor(init: ErrorInit) {
    super(init);
    const field = init.details?.["field"];
    this.field = typeof field === "string" ? field : undefined;
  }
}

/** No such plan, eSIM, order, endpoint or event for this key. */
export class NotFoundError extends OytelError {}

/** Too many requests: wait `retryAfter` seconds (the SDK already retried). */
export class RateLimitError extends OytelError {
  readonly retryAfter?: number;
  constructor(init: ErrorInit) {
    super(init);
    this.retryAfter = init.retryAfter;
  }
}

/** No answer: the network failed, the call timed out or was aborted. A create sent with an
 * idempotency key can be retried with the same key to learn whether it happened. */
export class OytelConnectionError extends OytelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super({ status: 0, code: "CONNECTION_ERROR", message });
    if (options?.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }
}

const VALIDATION_CODES = new Set([
  "VALIDATION_ERROR",
  "INVALID_JSON",
  "INVALID_QUERY",
  "INVALID_CURSOR",
  "INVALID_IDEMPOTENCY_KEY",
]);

/** The error for an answer of `status` with `body` (the server's error envelope, if any). */
export function errorFor(
  status: number,
  body: unknown,
  retryAfter: number | undefined,
): OytelError {
  const envelope = (body ?? {}) as Record<string, unknown>;
  const init: ErrorInit = {
    status,
    code: typeof envelope["code"] === "string" ? envelope["code"] : `HTTP_${status}`,
    message:
      typeof envelope["error"] === "string" ? envelope["error"] : `the server answered ${status}`,
    requestId: typeof envelope["request_id"] === "string" ? envelope["request_id"] : undefined,
    details:
      envelope["details"] !== null && typeof envelope["details"] === "object"
        ? (envelope["details"] as Record<string, unknown>)
        : undefined,
    retryAfter,
  };
  if (status === 401 || init.code === "FORBIDDEN") return new AuthenticationError(init);
  if (status === 402) return new InsufficientBalanceError(init);
  if (status === 404) return new NotFoundError(init);
  if (status === 429) return new RateLimitError(init);
  if ((status === 400 || status === 422) && VALIDATION_CODES.has(init.code)) {
    return new ValidationError(init);
  }
  return new OytelError(init);
}
