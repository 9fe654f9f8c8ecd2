//! The caller's account and statement.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use oytel_core::billing::{minimum_for, SANDBOX_BALANCE};
use oytel_core::limits::QuotaKind;
use oytel_core::paging::{finish_page, page_request};
use oytel_core::validation::date_range;
use oytel_core::CoreError;
use oytel_types::{
    AccountResponse, Amount, Balance, Environment, ErrorBody, ErrorCode, ListTransactionsQuery,
    Page, Transaction, UpdateAccount,
};

use crate::convert;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Caller};
use crate::state::AppState;

/// The partner, the key's environment, its balance and minimum balance, and the limits that
/// apply.
#[utoipa::path(get, path = "/api/v1/account", tag = "account",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The account", body = AccountResponse),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn get_account(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AccountResponse>, ApiError> {
    let owner = &caller.owner;
    let partner = state
        .store
        .get_partner(&owner.partner_id)
        .await?
        .ok_or_else(|| ApiError::internal("key without a partner"))?;
    let available = match owner.environment {
        Environment::Sandbox => SANDBOX_BALANCE,
        Environment::Production => Amount::from_cents(state.store.live_balance(&partner.id).await?),
    };
    let minimum = minimum_for(owner.environment, state.settings.provision.minimum_balance);
    let low_balance_threshold = match owner.environment {
        Environment::Sandbox => None,
        Environment::Production => state
            .store
            .low_balance_threshold(&partner.id)
            .await?
            .map(Amount::from_cents),
    };
    Ok(Json(AccountResponse {
        success: true,
        partner_id: partner.id,
        name: partner.name,
        email: partner.email,
        environment: owner.environment,
        key_id: owner.key_id.clone(),
        balance: Balance {
            available,
            available_cents: available.cents(),
            minimum,
            minimum_cents: minimum.cents(),
            currency: state.catalog.currency.clone(),
        },
        limits: caller.limits.clone(),
        low_balance_threshold,
    }))
}

/// Change your account: the live balance below which you are sent `account.balance_low`
/// (each time a charge takes the balance from at or above it to below it). Live keys only:
/// the sandbox balance never moves.
#[utoipa::path(patch, path = "/api/v1/account", tag = "account",
    request_body = UpdateAccount,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The account, changed", body = AccountResponse),
        (status = 400, description = "Invalid body (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "A sandbox key (`FORBIDDEN`)", body = ErrorBody),
        (status = 408, response = crate::responses::BodyTimeout),
        (status = 413, response = crate::responses::BodyTooLarge),
        (status = 415, response = crate::responses::NotJson),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn update_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(update): ApiJson<UpdateAccount>,
) -> Result<Json<AccountResponse>, ApiError> {
    if caller.owner.environment == Environment::Sandbox {
        return Err(CoreError::Forbidden(
            "the low-balance threshold is about the live balance: set it with a live key".into(),
        )
        .into());
    }
    if let Some(threshold) = update.low_balance_threshold {
        if threshold.is_some_and(|t| t.cents() < 0) {
            return Err(ApiError::field(
                ErrorCode::ValidationError,
                "low_balance_threshold",
                "low_balance_threshold must be 0 or more",
            ));
        }
        state
            .store
            .set_low_balance_threshold(&caller.owner.partner_id, threshold.map(Amount::cents))
            .await?;
    }
    get_account(State(state), caller).await
}

/// Your statement: every credit and charge of your live balance, newest first, with the
/// balance after each and the order and eSIM it concerns; only those between `from`
/// (inclusive) and `to` (exclusive) when given (a range that ends where it starts is empty). Send `Accept: text/csv` for the same page as
/// CSV, the next page's URL in the `Link` header. A sandbox key gets an empty statement: the
/// sandbox balance is never charged.
#[utoipa::path(get, path = "/api/v1/account/transactions", tag = "account",
    params(ListTransactionsQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of the statement",
            content((Page<Transaction> = "application/json"), (String = "text/csv")),
            headers(("Link" = String, description = "CSV only: `<…>; rel=\"next\"`, the next page, when there is one"))),
        (status = 400, description = "Bad limit, cursor or dates (`VALIDATION_ERROR`, `INVALID_CURSOR`, `INVALID_QUERY`)", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn list_transactions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ListTransactionsQuery>,
) -> Result<Response, ApiError> {
    caller.consume(&state, QuotaKind::Status).await?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let filter = date_range(query.from, query.to);
    let rows = match caller.owner.environment {
        Environment::Sandbox => Vec::new(),
        Environment::Production => {
            state
                .store
                .list_ledger(&caller.owner.partner_id, &filter, page)
                .await?
        }
    };
    let (rows, next_cursor) = finish_page(rows, page);
    let currency = &state.catalog.currency;
    let data: Vec<Transaction> = rows
        .iter()
        .map(|e| convert::transaction(e, currency))
        .collect();
    if !wants_csv(&headers) {
        return Ok(Json(Page {
            success: true,
            data,
            has_more: next_cursor.is_some(),
            next_cursor,
        })
        .into_response());
    }
    let mut response = (
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        statement_csv(&data),
    )
        .into_response();
    if let Some(cursor) = next_cursor {
        let next = query.cursor(cursor);
        let link = format!(
            "</api/v1/account/transactions?{}>; rel=\"next\"",
            serde_urlencoded::to_string(&next).map_err(ApiError::internal)?
        );
        response.headers_mut().insert(
            header::LINK,
            HeaderValue::from_str(&link).map_err(ApiError::internal)?,
        );
    }
    Ok(response)
}

/// At most this many lines in one whole-statement CSV (the web console's download).
pub const MAX_STATEMENT_LINES: usize = 20_000;

/// The caller's whole statement as CSV, newest first (at most [`MAX_STATEMENT_LINES`]; an
/// empty one for a sandbox key), counted as one status read: the web console's download.
pub async fn whole_statement_csv(state: &AppState, caller: &Caller) -> Result<String, ApiError> {
    caller.consume(state, QuotaKind::Status).await?;
    let mut data: Vec<Transaction> = Vec::new();
    if caller.owner.environment == Environment::Production {
        let mut cursor: Option<String> = None;
        while data.len() < MAX_STATEMENT_LINES {
            let page = page_request(Some(100), cursor.as_deref())?;
            let rows = state
                .store
                .list_ledger(&caller.owner.partner_id, &Default::default(), page)
                .await?;
            let (rows, next) = finish_page(rows, page);
            data.extend(
                rows.iter()
                    .map(|e| convert::transaction(e, &state.catalog.currency)),
            );
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    data.truncate(MAX_STATEMENT_LINES);
    Ok(statement_csv(&data))
}

/// Whether the client asked for CSV (`Accept: text/csv`, alone or among others).
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.trim().starts_with("text/csv"))
}

/// The statement as CSV (RFC 4180): a header line, then one line per transaction. Text a
/// spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`) is prefixed with `'`.
fn statement_csv(rows: &[Transaction]) -> String {
    let mut out = String::from(
        "transaction_id,created_at,kind,amount,balance_after,currency,order_id,purchase_id,esim_id,\
         description\r\n",
    );
    for t in rows {
        let kind = t.kind.as_str();
        let fields = [
            t.transaction_id.clone(),
            t.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            kind.to_owned(),
            t.amount.to_string(),
            t.balance_after.to_string(),
            t.currency.clone(),
            t.order_id.clone().unwrap_or_default(),
            t.purchase_id.clone().unwrap_or_default(),
            t.esim_id.clone().unwrap_or_default(),
            csv_text(&t.description),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Free text made safe to open in a spreadsheet.
fn csv_text(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// One CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_text("-5 refund"), "'-5 refund");
        assert_eq!(csv_text("wire 2026-11-26"), "wire 2026-11-26");
    }
}
