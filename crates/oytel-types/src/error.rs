use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, )*) => {
        /// A stable, machine-readable error code. Codes never change meaning; new codes may be
        /// added, which a client sees as [`ErrorCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
            /// A code this version of the types does not know (sent by a newer server).
            Other(String),
        }

        impl ErrorCode {
            /// Every code this version knows, as sent on the wire.
            pub const KNOWN: &'static [&'static str] = &[$($text),*];

            /// The wire text of the code, e.g. `PLAN_NOT_FOUND`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                    ErrorCode::Other(text) => text,
                }
            }

            /// The code for a wire text; unknown texts become [`ErrorCode::Other`].
            pub fn parse(text: &str) -> ErrorCode {
                match text {
                    $($text => ErrorCode::$variant,)*
                    other => ErrorCode::Other(other.to_owned()),
                }
            }
        }
    };
}

error_codes! {
    /// No API key was sent (401).
    MissingApiKey = "MISSING_API_KEY",
    /// The API key is malformed or unknown (401).
    InvalidApiKey = "INVALID_API_KEY",
    /// The API key was revoked (401).
    ApiKeyRevoked = "API_KEY_REVOKED",
    /// The key may not use this operation (403).
    Forbidden = "FORBIDDEN",
    /// The body is not valid JSON (400).
    InvalidJson = "INVALID_JSON",
    /// A field is missing, of the wrong type, unknown or out of range (400); `details.field`
    /// names it.
    ValidationError = "VALIDATION_ERROR",
    /// A query parameter is unknown, repeated or malformed (400).
    InvalidQuery = "INVALID_QUERY",
    /// The pagination cursor is not one this server issued (400).
    InvalidCursor = "INVALID_CURSOR",
    /// The `Idempotency-Key` header is empty, too long or not printable ASCII (400).
    InvalidIdempotencyKey = "INVALID_IDEMPOTENCY_KEY",
    /// Request bodies must be `application/json` (415).
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE",
    /// The body is larger than the server accepts (413).
    PayloadTooLarge = "PAYLOAD_TOO_LARGE",
    /// The request body did not arrive within the server's body timeout (408); nothing was
    /// done. Send the whole body promptly.
    RequestBodyTimeout = "REQUEST_BODY_TIMEOUT",
    /// The live balance after the charge would fall below the minimum balance (402).
    InsufficientBalance = "INSUFFICIENT_BALANCE",
    /// No plan with this id (404).
    PlanNotFound = "PLAN_NOT_FOUND",
    /// No eSIM with this id for this key's partner and environment (404).
    EsimNotFound = "ESIM_NOT_FOUND",
    /// No order with this id for this key's partner and environment (404).
    OrderNotFound = "ORDER_NOT_FOUND",
    /// No webhook endpoint with this id for this key (404).
    WebhookEndpointNotFound = "WEBHOOK_ENDPOINT_NOT_FOUND",
    /// No event with this id for this key (404).
    EventNotFound = "EVENT_NOT_FOUND",
    /// The eSIM's state does not allow this change (409).
    InvalidStateTransition = "INVALID_STATE_TRANSITION",
    /// The operator suspended this eSIM; only the operator can resume it (409).
    SuspendedByOperator = "SUSPENDED_BY_OPERATOR",
    /// No such top-up for this eSIM: an unknown id, an add-on for another coverage, or a
    /// plan no longer sold (409: what an eSIM takes depends on its plan).
    TopupNotAvailable = "TOPUP_NOT_AVAILABLE",
    /// The eSIM takes no top-up of this kind now: cancelled, expired without an installed
    /// profile, nothing in force to add data to, or too many renewals queued (409).
    TopupNotAllowed = "TOPUP_NOT_ALLOWED",
    /// No such route or resource (404).
    NotFound = "NOT_FOUND",
    /// The route exists but not with this method (405).
    MethodNotAllowed = "METHOD_NOT_ALLOWED",
    /// A request with the same `Idempotency-Key` is still being processed (409).
    IdempotencyRequestInProgress = "IDEMPOTENCY_REQUEST_IN_PROGRESS",
    /// The `Idempotency-Key` was used before with a different request body (422).
    IdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED",
    /// Too many requests; see `Retry-After` (429).
    RateLimited = "RATE_LIMITED",
    /// The server failed; the request id identifies it in the server's logs (500).
    InternalError = "INTERNAL_ERROR",
    /// The server cannot serve now, e.g. its database is unreachable (503).
    ServiceUnavailable = "SERVICE_UNAVAILABLE",
    /// No eSIM profile of the plan's type is in stock (503): nothing was charged; retry
    /// later (the operator is warned when stock runs low).
    ProfileStockExhausted = "PROFILE_STOCK_EXHAUSTED",
    /// The SM-DP+ that holds the profiles could not be reached (503): nothing was ordered or
    /// charged; retry later.
    SmdpUnavailable = "SMDP_UNAVAILABLE",
    /// The SM-DP+ did not answer in time (504): nothing was charged, and anything it may have
    /// reserved is put back. Retry with the same `Idempotency-Key`.
    SmdpTimeout = "SMDP_TIMEOUT",
    /// The SM-DP+ refused to provide a profile (502); the message gives its reason (e.g. no
    /// stock of the plan's profile type). Nothing was charged.
    SmdpRejected = "SMDP_REJECTED",
    /// The SM-DP+ gave an answer that is not ES2+ (502). Nothing was charged.
    SmdpProtocolError = "SMDP_PROTOCOL_ERROR",
    /// The server did not answer within its request timeout (503). A request that changes
    /// something may still complete: retry a provisioning with the same `Idempotency-Key` to
    /// learn its outcome; read the resource before retrying any other write.
    RequestTimeout = "REQUEST_TIMEOUT",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(ErrorCode::parse(&text))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A stable error code. Clients must accept codes not listed here.",
            ))
            .enum_values(Some(ErrorCode::KNOWN.iter().copied()))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ErrorCode {}

/// The body of every error response.
///
/// ```json
/// {"success": false, "error": "Plan `nope` does not exist", "code": "PLAN_NOT_FOUND",
///  "request_id": "req_8Xq2…", "details": {"field": "plan_id"}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    /// A human-readable message; its wording may change, match on `code` instead.
    pub error: String,
    /// The stable error code.
    pub code: ErrorCode,
    /// The id of the failed request (also in the `x-request-id` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// More about what failed, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<ErrorDetails>,
}

/// Details of an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetails {
    /// The request field (or header, or query parameter) at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `INSUFFICIENT_BALANCE`: the balance now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<crate::Amount>,
    /// For `INSUFFICIENT_BALANCE`: what the order costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<crate::Amount>,
    /// For `INSUFFICIENT_BALANCE`: the balance that must remain after a charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_balance: Option<crate::Amount>,
    /// For `RATE_LIMITED`: the limit hit (`provision_per_hour`, `status_per_hour`,
    /// `burst_per_second`, `auth_failures_per_minute`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// For `RATE_LIMITED`: seconds until a retry may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_kept() {
        for text in ErrorCode::KNOWN {
            let code = ErrorCode::parse(text);
            assert!(!matches!(code, ErrorCode::Other(_)), "{text}");
            assert_eq!(code.as_str(), *text);
        }
        let code: ErrorCode = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(code, ErrorCode::Other("SOMETHING_NEW".into()));
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"SOMETHING_NEW\"");
    }
}
