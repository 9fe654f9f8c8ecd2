//! The web console at `/dashboard`: partners see their account, eSIMs, orders, statement,
//! webhooks and keys; the operator manages partners at `/dashboard/admin`. Pages are
//! rendered here (maud), their stylesheet and one small script are compiled into the
//! binary: nothing to build, nothing from a CDN.
//!
//! A page is a view of the API: it calls the same handlers with the session's key as the
//! caller (so it sees exactly what that key sees, and nothing of another partner or
//! environment), then renders their answer. Sessions and forms follow [`session`].
//!
//! | path | who | what |
//! |---|---|---|
//! | `GET /dashboard/sign-in`, `POST` | anyone | paste an API key; a refused key counts like a refused API call |
//! | `GET /dashboard` | partner | balance, eSIMs by state, provisionings per day, webhook delivery rate |
//! | `GET /dashboard/esims`, `/esims/{id}` | partner | the eSIMs (state, reference or email filter, pages); one with its QR code, activation code, usage, packages, timeline |
//! | `GET /dashboard/orders`, `/statement`, `/statement.csv` | partner | orders; the live statement and its CSV |
//! | `GET /dashboard/webhooks`, `POST …` | partner | endpoints (add, edit the address, description and events, pause or resume, rotate the secret — shown once —, send a test), the delivery log, redelivery |
//! | `GET /dashboard/keys` | partner | the partner's keys, never a secret |
//! | `GET /dashboard/admin/sign-in`, `POST` | operator | the operator token |
//! | `GET /dashboard/admin`, `POST …/partners`, `POST …/partners/{id}/credit` | operator | partners with their live balance; add one; credit one |
//! | `GET /dashboard/admin/partners/{id}`, `POST …/keys`, `POST …/limits`, `POST /dashboard/admin/keys/{id}/revoke` | operator | a partner's keys (create — shown once —, revoke) and limits |
//! | `GET /dashboard/admin/operations` | operator | the webhook queue, low balances, the profile stock, this instance's recent server errors by code |
//! | `POST /dashboard/sign-out` | both | ends the session |
//!
//! Every answer is `Cache-Control: no-store` with a Content-Security-Policy that allows only
//! this server's own styles, script and images (and the QR images' address), and no framing.

pub mod pages;
pub mod session;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use maud::Markup;
use oytel_core::clock::now;
use oytel_core::sessions::{self, SessionKind};
use oytel_types::{
    CreateWebhookEndpoint, Environment, EsimStatus, ListEsimsQuery, ListOrdersQuery,
    ListTransactionsQuery, PageQuery,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::context::ClientAddr;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, Caller};
use crate::routes;
use crate::state::AppState;
use pages::{OPERATOR_NAV, PARTNER_NAV};
use session::{Checked, OperatorSession, PartnerSession, Signed, WithCsrf};

/// The console's routes; `public_url` is where its QR images are served from.
pub fn router(public_url: &str) -> Router<AppState> {
    let csp = content_security_policy(public_url);
    Router::new()
        .route("/dashboard", get(overview))
        .route("/dashboard/sign-in", get(sign_in_page).post(sign_in))
        .route("/dashboard/sign-out", post(sign_out))
        .route("/dashboard/esims", get(esims))
        .route("/dashboard/esims/{esim_id}", get(esim))
        .route("/dashboard/orders", get(orders))
        .route("/dashboard/statement", get(statement))
        .route("/dashboard/statement.csv", get(statement_csv))
        .route("/dashboard/webhooks", get(webhooks).post(create_endpoint))
        .route("/dashboard/webhooks/{id}/rotate", post(rotate_secret))
        .route("/dashboard/webhooks/{id}/test", post(send_test))
        .route("/dashboard/webhooks/{id}/enabled", post(set_enabled))
        .route(
            "/dashboard/webhooks/{id}",
            get(endpoint_page).post(edit_endpoint),
        )
        .route(
            "/dashboard/webhooks/events/{event_id}/redeliver",
            post(redeliver),
        )
        .route("/dashboard/keys", get(keys))
        .route("/dashboard/admin", get(admin))
        .route(
            "/dashboard/admin/sign-in",
            get(admin_sign_in_page).post(admin_sign_in),
        )
        .route("/dashboard/admin/partners", post(create_partner))
        .route("/dashboard/admin/partners/{id}/credit", post(credit))
        .route("/dashboard/admin/partners/{id}", get(admin_partner))
        .route("/dashboard/admin/partners/{id}/keys", post(create_key))
        .route("/dashboard/admin/partners/{id}/limits", post(set_limits))
        .route("/dashboard/admin/keys/{key_id}/revoke", post(revoke_key))
        .route("/dashboard/admin/operations", get(operations))
        .route("/dashboard/assets/app.css", get(css))
        .route("/dashboard/assets/app.js", get(js))
        .layer(axum::middleware::map_response(move |response: Response| {
            let csp = csp.clone();
            async move { guarded(response, csp) }
        }))
}

/// The Content-Security-Policy of the console: its own styles, script and images, and the
/// QR images' address (the public URL's origin); no framing, forms only to itself.
fn content_security_policy(public_url: &str) -> HeaderValue {
    let qr_origin = url::Url::parse(public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' {qr_origin}; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    })
}

/// Adds the console's security headers.
fn guarded(mut response: Response, csp: HeaderValue) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    response
}

fn html(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page of a partner.
fn partner_page(title: &str, current: &str, signed: &Signed, content: Markup) -> Response {
    html(pages::layout(
        title,
        &PARTNER_NAV,
        current,
        Some(&signed.csrf),
        "/dashboard/sign-out",
        content,
    ))
}

/// What the API refused, as a page.
fn refused(error: ApiError, back: &str) -> Response {
    let status = error.status();
    (
        status,
        html(pages::problem("That did not work", error.message(), back)),
    )
        .into_response()
}

/// The body of an API handler's answer, read back (for handlers that answer a `Response`).
async fn answer_json<T: DeserializeOwned>(response: Response) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map_err(ApiError::internal)?;
    serde_json::from_slice(&bytes).map_err(ApiError::internal)
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/app.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/app.js"),
    )
        .into_response()
}

// --- signing in and out ---

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    api_key: String,
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    operator_token: String,
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The forms of the console, each with its CSRF token.
macro_rules! with_csrf {
    ($($form:ty),*) => {$(
        impl WithCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )*};
}

with_csrf!(
    CsrfForm,
    EndpointForm,
    PartnerForm,
    CreditForm,
    KeyForm,
    LimitsForm,
    RevokeForm,
    EnabledForm,
    EditForm
);

/// Back to `page` once the API did it; what it refused otherwise.
fn then_back<T>(done: Result<T, ApiError>, page: &str) -> Response {
    match done {
        Ok(_) => Redirect::to(page).into_response(),
        Err(e) => refused(e, page),
    }
}

const KEY_HINT: &str = "Your sk_sandbox_… or sk_live_… key. It is sent once to sign in and kept \
                        only as a hash; the console then sees what the key sees.";

async fn sign_in_page(signed: Option<Signed>) -> Response {
    match signed {
        Some(s) if s.caller.is_some() => Redirect::to("/dashboard").into_response(),
        _ => html(pages::sign_in(
            "Sign in",
            "/dashboard/sign-in",
            "api_key",
            "API key",
            KEY_HINT,
            None,
        )),
    }
}

/// Counts a refused sign-in against the client's address, as a refused API key is
/// ([`crate::extract::refuse_credentials`]): how long to wait once the address is past its
/// allowance. A valid key is never refused by it.
fn count_failure(state: &AppState, client: Option<ClientAddr>) -> Option<u64> {
    let ClientAddr(address) = client?;
    state.limiter.auth_failed(address);
    let blocked = state.limiter.auth_blocked(address)?;
    crate::metrics::rate_limited("auth_failures_per_minute");
    Some(blocked.retry_after.as_secs().max(1))
}

/// The sign-in page again, saying why (401), or that the address must wait (429).
fn failed_sign_in(
    state: &AppState,
    client: Option<ClientAddr>,
    form: (&str, &str, &str, &str, &str),
    message: &str,
) -> Response {
    let (title, action, field, label, hint) = form;
    match count_failure(state, client) {
        Some(wait) => session::with_retry_after(
            sign_in_refused(
                title,
                action,
                field,
                label,
                hint,
                format!("Too many failed sign-ins from your address; try again in {wait} s."),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            wait,
        ),
        None => sign_in_refused(
            title,
            action,
            field,
            label,
            hint,
            message.to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

fn sign_in_refused(
    title: &str,
    action: &str,
    field: &str,
    label: &str,
    hint: &str,
    message: String,
    status: StatusCode,
) -> Response {
    (
        status,
        html(pages::sign_in(
            title,
            action,
            field,
            label,
            hint,
            Some(&message),
        )),
    )
        .into_response()
}

/// Opens a session and sends its cookie; the session the browser held before, if any, ends.
async fn open_session(
    state: &AppState,
    headers: &HeaderMap,
    kind: SessionKind,
    key_hash: Option<String>,
    to: &str,
) -> Response {
    if let Some(previous) = session::cookie_token(headers) {
        let _ = state
            .store
            .delete_session(&sessions::token_hash(&previous))
            .await;
    }
    let (token, record) = sessions::open(kind, key_hash, now());
    if let Err(e) = state.store.create_session(&record).await {
        return refused(ApiError::from(e), "/dashboard/sign-in");
    }
    let mut response = Redirect::to(to).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(state, &token));
    response
}

async fn sign_in(
    State(state): State<AppState>,
    client: Option<axum::Extension<ClientAddr>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let (title, action, field, label) = ("Sign in", "/dashboard/sign-in", "api_key", "API key");
    if !session::same_origin(&headers, &state.settings.public_url) {
        return session::forbidden("Sign-in forms from other sites are refused.");
    }
    let client = client.map(|c| c.0);
    let key = form.api_key.trim();
    match state.keys.authenticate(Some(key)).await {
        Ok(Ok(_owner)) => {
            let hash = oytel_core::keys::hash_api_key(key);
            open_session(
                &state,
                &headers,
                SessionKind::Partner,
                Some(hash),
                "/dashboard",
            )
            .await
        }
        Ok(Err(_)) => failed_sign_in(
            &state,
            client,
            (title, action, field, label, KEY_HINT),
            "That key is not a valid, active API key.",
        ),
        Err(e) => refused(ApiError::from(e), action),
    }
}

async fn sign_out(
    State(state): State<AppState>,
    signed: Option<Signed>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(signed) = signed else {
        return Redirect::to("/dashboard/sign-in").into_response();
    };
    if let Some(refusal) =
        session::check_form(&signed, &headers, &state.settings.public_url, &form.csrf)
    {
        return refusal;
    }
    let _ = state
        .store
        .delete_session(&sessions::token_hash(&signed.token))
        .await;
    let to = if signed.caller.is_some() {
        "/dashboard/sign-in"
    } else {
        "/dashboard/admin/sign-in"
    };
    let mut response = Redirect::to(to).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    response
}

const TOKEN_HINT: &str = "The server's OYTEL_OPERATOR_TOKEN.";

async fn admin_sign_in_page(State(state): State<AppState>) -> Response {
    if state.settings.operator_token.is_none() {
        return (StatusCode::FORBIDDEN, html(pages::problem("Operator console", "The operator console is off on this server: set OYTEL_OPERATOR_TOKEN to turn it on.", "/dashboard"))).into_response();
    }
    html(pages::sign_in(
        "Operator sign-in",
        "/dashboard/admin/sign-in",
        "operator_token",
        "Operator token",
        TOKEN_HINT,
        None,
    ))
}

async fn admin_sign_in(
    State(state): State<AppState>,
    client: Option<axum::Extension<ClientAddr>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let (title, action, field, label) = (
        "Operator sign-in",
        "/dashboard/admin/sign-in",
        "operator_token",
        "Operator token",
    );
    if !session::same_origin(&headers, &state.settings.public_url) {
        return session::forbidden("Sign-in forms from other sites are refused.");
    }
    let Some(expected) = &state.settings.operator_token else {
        return admin_sign_in_page(State(state.clone())).await;
    };
    let client = client.map(|c| c.0);
    // Equal-length digests compared whole, as the operator API does.
    if Sha256::digest(form.operator_token.trim().as_bytes()) != Sha256::digest(expected.as_bytes())
    {
        return failed_sign_in(
            &state,
            client,
            (title, action, field, label, TOKEN_HINT),
            "That is not the operator token.",
        );
    }
    let token_hash = session::operator_hash(expected);
    open_session(
        &state,
        &headers,
        SessionKind::Operator,
        Some(token_hash),
        "/dashboard/admin",
    )
    .await
}

// --- a partner's pages ---

async fn overview(
    State(state): State<AppState>,
    PartnerSession(signed, caller): PartnerSession,
) -> Response {
    // The overview's reads (its counts and chart) count as one status read of the key.
    if let Err(e) = caller
        .consume(&state, oytel_core::limits::QuotaKind::Status)
        .await
    {
        return refused(e, "/dashboard");
    }
    let account = match routes::account::get_account(State(state.clone()), caller.clone()).await {
        Ok(Json(account)) => account,
        Err(e) => return refused(e, "/dashboard"),
    };
    let environment = caller.owner.environment;
    let by_state: Vec<(EsimStatus, u64)> =
        match state.store.partner_summary(&caller.owner.partner_id).await {
            Ok(summary) => summary
                .esims
                .into_iter()
                .filter(|(env, _, _)| *env == environment)
                .map(|(_, status, n)| (status, n))
                .collect(),
            Err(e) => return refused(e.into(), "/dashboard"),
        };
    let days = provisionings_per_day(&state, &caller, 14).await;
    let attempts = routes::webhooks::all_attempts(
        State(state.clone()),
        caller.clone(),
        ApiQuery(PageQuery::new().limit(100)),
    )
    .await
    .map(|Json(page)| page.data)
    .unwrap_or_default();
    let delivered = attempts
        .iter()
        .filter(|a| a.status_code.is_some_and(|c| (200..300).contains(&c)))
        .count() as u64;
    let rate = (!attempts.is_empty()).then_some((delivered, attempts.len() as u64));
    partner_page(
        "Overview",
        "/dashboard",
        &signed,
        pages::overview(&account, &by_state, &days, rate),
    )
}

/// Orders per day over the last `days` days (UTC), oldest first, from the newest orders
/// (at most 20 pages of 100).
async fn provisionings_per_day(state: &AppState, caller: &Caller, days: i64) -> Vec<(String, u64)> {
    let today = now().date_naive();
    let first = today - chrono::Duration::days(days - 1);
    let mut counts: Vec<(chrono::NaiveDate, u64)> = (0..days)
        .map(|i| (first + chrono::Duration::days(i), 0))
        .collect();
    let mut query = ListOrdersQuery::new().limit(100);
    for _ in 0..20 {
        let Ok(page) = state
            .store
            .list_orders(
                &caller.scope(),
                None,
                oytel_core::paging::PageRequest {
                    limit: 100,
                    before: query.cursor.as_deref().and_then(|c| c.parse().ok()),
                },
            )
            .await
        else {
            break;
        };
        let Some(oldest) = page.last() else { break };
        let oldest_seq = oldest.seq;
        let mut older = false;
        for order in &page {
            let day = order.row.created_at.date_naive();
            if day < first {
                older = true;
            } else if let Some(slot) = counts.iter_mut().find(|(d, _)| *d == day) {
                slot.1 += 1;
            }
        }
        if older || page.len() < 100 {
            break;
        }
        query.cursor = Some(oldest_seq.to_string());
    }
    counts
        .into_iter()
        .map(|(d, n)| (d.format("%Y-%m-%d").to_string(), n))
        .collect()
}

#[derive(Deserialize, Default)]
struct EsimFilters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: Option<String>,
}

async fn esims(
    State(state): State<AppState>,
    PartnerSession(signed, caller): PartnerSession,
    Query(filters): Query<EsimFilters>,
) -> Response {
    let mut query = ListEsimsQuery::new().limit(25);
    let status = filters.status.trim();
    if !status.is_empty() {
        match status.parse::<EsimStatus>() {
            Ok(s) => query = query.status(s),
            Err(e) => {
                return refused(
                    ApiError::field(oytel_types::ErrorCode::ValidationError, "status", e),
                    "/dashboard/esims",
                )
            }
        }
    }
    let search = filters.q.trim();
    if search.contains('@') {
        query = query.customer_email(search);
    } else if !search.is_empty() {
        query = query.reference_id(search);
    }
    if let Some(cursor) = filters.cursor.filter(|c| !c.is_empty()) {
        query = query.cursor(cursor);
    }
    match routes::esims::list_esims(State(state), caller, ApiQuery(query)).await {
        Ok(Json(page)) => {
            let next = page.next_cursor.as_ref().map(|c| {
                format!(
                    "/dashboard/esims?{}",
                    serde_urlencoded::to_string([
                        ("status", status),
                        ("q", search),
                        ("cursor", c.as_str())
                    ])
                    .unwrap_or_default()
                )
            });
            partner_page(
                "eSIMs",
                "/dashboard/esims",
                &signed,
                pages::esims(&page, (!status.is_empty()).then_some(status), search, next),
            )
        }
        Err(e) => refused(e, "/dashboard/esims"),
    }
}

async fn esim(
    State(state): State<AppState>,
    PartnerSession(signed, caller): PartnerSession,
    ApiPath(esim_id): ApiPath,
) -> Response {
    let found = routes::esims::get_esim(
        State(state.clone()),
        caller.clone(),
        ApiPath(esim_id.clone()),
    )
    .await;
    let esim = match found {
        Ok(Json(answer)) => answer.esim,
        Err(e) => return refused(e, "/dashboard/esims"),
    };
    let packages = routes::topups::list_packages(State(state), caller, ApiPath(esim_id))
        .await
        .map(|Json(p)| p.packages)
        .unwrap_or_default();
    partner_page(
        &format!("eSIM {}", esim.esim_id),
        "/dashboard/esims",
        &signed,
        pages::esim(&esim, &packages),
    )
}

#[derive(Deserialize, Default)]
struct Cursor {
    #[serde(default)]
    cursor: Option<String>,
}

async fn orders(
    State(state): State<AppState>,
    PartnerSession(signed, caller): PartnerSession,
    Query(at): Query<Cursor>,
) -> Response {
    let mut query = ListOrdersQuery::new().limit(25);
    if let Some(cursor) = at.cursor.filter(|c| !c.is_empty()) {
        query = query.cursor(cursor);
    }
    match routes::orders::list_orders(State(state), caller, ApiQuery(query)).await {
        Ok(Json(page)) => {
            let next = page
                .next_cursor
                .as_ref()
                .map(|c| format!("/dashboard/orders?cursor={c}"));
            partner_page(
                "Orders",
                "/dashboard/orders",
                &signed,
                pages::orders(&page, next),
            )
        }
        Err(e) => refused(e, "/dashboard/orders"),
    }
}

async fn statement(
    State(state): State<AppState>,
    PartnerSession(signed, caller): PartnerSession,
    Query(at): Query<Cursor>,
) -> Response {
    let sandbox = caller.owner.environment == Environment::Sandbox;
    let mut query = ListTransactionsQuery::new().limit(50);
    if let Some(cursor) = at.cursor.filter(|c| !c.is_empty()) {
        query = query.cursor(cursor);
    }
    let answer =
        routes::account::list_transactions(State(state), caller, HeaderMap::new(), ApiQuery(query))
            .await;
    let page: oytel_types::Page<oytel_types::Transaction> = match answer {
        Ok(response) => match answer_json(response).await {
            Ok(page) => page,
            Err(e) => return refused(e, "/dashboard"),
        },
        Err(e) => return refused(e, "/dashboard"),
    };
    let next = page
        .next_cursor
        .as_ref()
        .map(|c| format!("/dashboard/statement?cursor={c}"));
    partner_page(
        "Statement",
        "/dashboard/statement",
        &signed,
        pages::statement(&page.data, sandbox, next),
    )
}

/// The whole statement as CSV (the API's own format), with the session as the caller.
async fn statement_csv(
    State(state): State<AppState>,
    PartnerSession(_, caller): PartnerSession,
) -> Response {
    match routes::account::whole_statement_csv(&state, &caller).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"oytel-statement.csv\"",
                ),
            ],
            csv,
        )
            .into_response(),
        Err(e) => refused(e, "/dashboard/statement"),
    }
}

async fn webhooks_page(
    state: AppState,
    signed: &Signed,
    caller: Caller,
    shown: Option<(&str, &str)>,
) -> Response {
    let endpoints =
        match routes::webhooks::list_endpoints(State(state.clone()), caller.clone()).await {
            Ok(Json(page)) => page.data,
            Err(e) => return refused(e, "/dashboard"),
        };
    let attempts =
        routes::webhooks::all_attempts(State(state), caller, ApiQuery(PageQuery::new().limit(50)))
            .await
            .map(|Json(p)| p.data)
            .unwrap_or_default();
    partner_page(
        "Webhooks",
        "/dashboard/webhooks",
        signed,
        pages::webhooks(&signed.csrf, &endpoints, &attempts, shown),
    )
}

async fn webhooks(
    State(state): State<AppState>,
    PartnerSession(signed, caller): PartnerSession,
) -> Response {
    webhooks_page(state, &signed, caller, None).await
}

#[derive(Deserialize)]
struct EndpointForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
}

async fn create_endpoint(
    State(state): State<AppState>,
    Checked(PartnerSession(signed, caller), form): Checked<PartnerSession, EndpointForm>,
) -> Response {
    let mut request = CreateWebhookEndpoint::new(form.url.trim());
    if !form.description.trim().is_empty() {
        request = request.description(form.description.trim());
    }
    let created = match routes::webhooks::create_endpoint(
        State(state.clone()),
        caller.clone(),
        crate::extract::ApiJson(request),
    )
    .await
    {
        Ok(response) => answer_json::<oytel_types::WebhookEndpointCreated>(response).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(created) => {
            webhooks_page(
                state,
                &signed,
                caller,
                Some((&created.endpoint.id, &created.secret)),
            )
            .await
        }
        Err(e) => refused(e, "/dashboard/webhooks"),
    }
}

async fn rotate_secret(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    Checked(PartnerSession(signed, caller), _form): Checked<PartnerSession, CsrfForm>,
) -> Response {
    match routes::webhooks::rotate_endpoint_secret(
        State(state.clone()),
        caller.clone(),
        ApiPath(id.clone()),
    )
    .await
    {
        Ok(Json(rotated)) => {
            webhooks_page(state, &signed, caller, Some((&id, &rotated.secret))).await
        }
        Err(e) => refused(e, "/dashboard/webhooks"),
    }
}

async fn send_test(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    Checked(PartnerSession(_signed, caller), _form): Checked<PartnerSession, CsrfForm>,
) -> Response {
    let sent = routes::webhooks::test_endpoint(State(state), caller, ApiPath(id)).await;
    then_back(sent, "/dashboard/webhooks")
}

async fn redeliver(
    State(state): State<AppState>,
    ApiPath(event_id): ApiPath,
    Checked(PartnerSession(_signed, caller), _form): Checked<PartnerSession, CsrfForm>,
) -> Response {
    let scheduled = routes::webhooks::redeliver(State(state), caller, ApiPath(event_id)).await;
    then_back(scheduled, "/dashboard/webhooks")
}

async fn keys(
    State(state): State<AppState>,
    PartnerSession(signed, caller): PartnerSession,
) -> Response {
    match state.store.list_api_keys(&caller.owner.partner_id).await {
        Ok(keys) => {
            // The session's environment only: a sandbox key never sees live ones.
            let own: Vec<_> = keys
                .into_iter()
                .filter(|k| k.environment == caller.owner.environment)
                .collect();
            partner_page("API keys", "/dashboard/keys", &signed, pages::keys(&own))
        }
        Err(e) => refused(e.into(), "/dashboard"),
    }
}

// --- the operator's pages ---

fn operator_page(title: &str, signed: &Signed, content: Markup) -> Response {
    html(pages::layout(
        title,
        &OPERATOR_NAV,
        "/dashboard/admin",
        Some(&signed.csrf),
        "/dashboard/sign-out",
        content,
    ))
}

#[derive(Deserialize, Default)]
struct Created {
    #[serde(default)]
    created: Option<String>,
}

async fn admin(
    State(state): State<AppState>,
    OperatorSession(signed): OperatorSession,
    Query(created): Query<Created>,
) -> Response {
    let partners = match state.store.list_partners().await {
        Ok(p) => p,
        Err(e) => return refused(e.into(), "/dashboard/admin"),
    };
    let mut rows = Vec::with_capacity(partners.len());
    for partner in partners {
        let balance = state.store.live_balance(&partner.id).await.unwrap_or(0);
        rows.push((partner, balance));
    }
    let created = created
        .created
        .filter(|id| rows.iter().any(|(p, _)| &p.id == id));
    operator_page(
        "Partners",
        &signed,
        pages::partners(&signed.csrf, &rows, created.as_deref()),
    )
}

#[derive(Deserialize)]
struct PartnerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
}

async fn create_partner(
    State(state): State<AppState>,
    Checked(OperatorSession(_signed), form): Checked<OperatorSession, PartnerForm>,
) -> Response {
    let email = Some(form.email.trim()).filter(|e| !e.is_empty());
    let partner = match oytel_core::ports::Partner::new(&form.name, email) {
        Ok(p) => p,
        Err(e) => return refused(e.into(), "/dashboard/admin"),
    };
    match state.store.create_partner(&partner).await {
        Ok(()) => Redirect::to(&format!("/dashboard/admin?created={}", partner.id)).into_response(),
        Err(e) => refused(e.into(), "/dashboard/admin"),
    }
}

#[derive(Deserialize)]
struct CreditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    amount: String,
}

async fn credit(
    State(state): State<AppState>,
    ApiPath(partner_id): ApiPath,
    Checked(OperatorSession(_signed), form): Checked<OperatorSession, CreditForm>,
) -> Response {
    let done = async {
        let amount = crate::config::parse_usd(&form.amount)
            .ok()
            .filter(|a| a.cents() > 0)
            .ok_or_else(|| {
                ApiError::field(
                    oytel_types::ErrorCode::ValidationError,
                    "amount",
                    "the amount must be a positive number of USD with at most two decimals",
                )
            })?;
        existing_partner(&state, &partner_id).await?;
        let description = "credit from the operator console";
        Ok(state
            .store
            .credit(&partner_id, amount.cents(), description, now())
            .await?)
    };
    then_back(done.await, "/dashboard/admin")
}

/// The partner `partner_id`, or `404`.
async fn existing_partner(
    state: &AppState,
    partner_id: &str,
) -> Result<oytel_core::ports::Partner, ApiError> {
    state
        .store
        .get_partner(partner_id)
        .await?
        .ok_or_else(ApiError::not_found)
}

async fn partner_view(
    state: &AppState,
    signed: &Signed,
    partner_id: &str,
    new_key: Option<&str>,
) -> Response {
    let partner = match existing_partner(state, partner_id).await {
        Ok(p) => p,
        Err(e) => return refused(e, "/dashboard/admin"),
    };
    let keys = state
        .store
        .list_api_keys(partner_id)
        .await
        .unwrap_or_default();
    let limits = state
        .store
        .partner_limits(partner_id)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    operator_page(
        &format!("Partner {}", partner.name),
        signed,
        pages::partner(&signed.csrf, &partner, &keys, &limits, new_key),
    )
}

async fn admin_partner(
    State(state): State<AppState>,
    OperatorSession(signed): OperatorSession,
    ApiPath(partner_id): ApiPath,
) -> Response {
    partner_view(&state, &signed, &partner_id, None).await
}

#[derive(Deserialize)]
struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    environment: String,
}

async fn create_key(
    State(state): State<AppState>,
    ApiPath(partner_id): ApiPath,
    Checked(OperatorSession(signed), form): Checked<OperatorSession, KeyForm>,
) -> Response {
    let created = async {
        let environment: Environment = form.environment.parse().map_err(|e: String| {
            ApiError::field(oytel_types::ErrorCode::ValidationError, "environment", e)
        })?;
        existing_partner(&state, &partner_id).await?;
        let key = oytel_core::keys::generate_api_key(&partner_id, environment);
        state.store.create_api_key(&key.record).await?;
        Ok::<_, ApiError>(key.plaintext)
    };
    match created.await {
        // Shown in this answer only: the page is not stored (no-store) and the key not logged.
        Ok(plaintext) => partner_view(&state, &signed, &partner_id, Some(&plaintext)).await,
        Err(e) => refused(e, "/dashboard/admin"),
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    partner_id: String,
}

async fn revoke_key(
    State(state): State<AppState>,
    ApiPath(key_id): ApiPath,
    Checked(OperatorSession(_signed), form): Checked<OperatorSession, RevokeForm>,
) -> Response {
    // The partner named by the form: the key must be one of its (and the id a plain one,
    // for the address of the page to go back to).
    if form.partner_id.chars().any(char::is_control) || form.partner_id.len() > 64 {
        return refused(ApiError::not_found(), "/dashboard/admin");
    }
    let back = format!("/dashboard/admin/partners/{}", form.partner_id);
    let owned = state
        .store
        .list_api_keys(&form.partner_id)
        .await
        .map(|keys| {
            keys.iter()
                .any(|k| k.id == key_id && k.revoked_at.is_none())
        });
    match owned {
        Ok(true) => {}
        Ok(false) => return refused(ApiError::not_found(), "/dashboard/admin"),
        Err(e) => return refused(e.into(), "/dashboard/admin"),
    }
    let revoked = match state.store.revoke_api_key(&key_id, now()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::not_found()),
        Err(e) => Err(e.into()),
    };
    then_back(revoked, &back)
}

#[derive(Deserialize)]
struct LimitsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    provision_per_hour: String,
    #[serde(default)]
    status_per_hour: String,
    #[serde(default)]
    burst_per_second: String,
}

async fn set_limits(
    State(state): State<AppState>,
    ApiPath(partner_id): ApiPath,
    Checked(OperatorSession(_signed), form): Checked<OperatorSession, LimitsForm>,
) -> Response {
    let back = format!("/dashboard/admin/partners/{partner_id}");
    let parse = |field: &'static str, text: &str| -> Result<Option<u32>, ApiError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| {
                ApiError::field(
                    oytel_types::ErrorCode::ValidationError,
                    field,
                    "a whole number above 0, or empty for the default",
                )
            })
    };
    let limits = (|| {
        Ok::<_, ApiError>(oytel_core::limits::LimitOverrides {
            provision_per_hour: parse("provision_per_hour", &form.provision_per_hour)?,
            status_per_hour: parse("status_per_hour", &form.status_per_hour)?,
            burst_per_second: parse("burst_per_second", &form.burst_per_second)?,
        })
    })();
    let limits = match limits {
        Ok(l) => l,
        Err(e) => return refused(e, &back),
    };
    let saved = match state.store.set_partner_limits(&partner_id, &limits).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::not_found()),
        Err(e) => Err(e.into()),
    };
    then_back(saved, &back)
}

async fn operations(
    State(state): State<AppState>,
    OperatorSession(signed): OperatorSession,
) -> Response {
    let figures = match state.store.figures(now()).await {
        Ok(f) => f,
        Err(e) => return refused(e.into(), "/dashboard/admin"),
    };
    let stock = state.store.stock().await.unwrap_or_default();
    let errors = crate::recent_errors::newest_first();
    html(pages::layout(
        "Operations",
        &OPERATOR_NAV,
        "/dashboard/admin/operations",
        Some(&signed.csrf),
        "/dashboard/sign-out",
        pages::operations(&figures, &stock, &crate::recent_errors::by_code(), &errors),
    ))
}

#[derive(Deserialize)]
struct EnabledForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: bool,
}

async fn set_enabled(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    Checked(PartnerSession(_signed, caller), form): Checked<PartnerSession, EnabledForm>,
) -> Response {
    let change = oytel_types::UpdateWebhookEndpoint::new().enabled(form.enabled);
    let updated = update_endpoint(state, caller, id, change).await;
    then_back(updated, "/dashboard/webhooks")
}

/// Changes an endpoint through the API's handler.
async fn update_endpoint(
    state: AppState,
    caller: Caller,
    id: String,
    change: oytel_types::UpdateWebhookEndpoint,
) -> Result<Json<oytel_types::WebhookEndpointResponse>, ApiError> {
    let change = crate::extract::ApiJson(change);
    routes::webhooks::update_endpoint(State(state), caller, ApiPath(id), change).await
}

async fn endpoint_page(
    State(state): State<AppState>,
    PartnerSession(signed, caller): PartnerSession,
    ApiPath(id): ApiPath,
) -> Response {
    match routes::webhooks::get_endpoint(State(state), caller, ApiPath(id)).await {
        Ok(Json(found)) => partner_page(
            &format!("Endpoint {}", found.endpoint.id),
            "/dashboard/webhooks",
            &signed,
            pages::endpoint(&signed.csrf, &found.endpoint),
        ),
        Err(e) => refused(e, "/dashboard/webhooks"),
    }
}

#[derive(Deserialize)]
struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    /// The events' checkboxes: `event:<name>` = `on`.
    #[serde(flatten)]
    checked: std::collections::HashMap<String, String>,
}

async fn edit_endpoint(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    Checked(PartnerSession(_signed, caller), form): Checked<PartnerSession, EditForm>,
) -> Response {
    let events: Vec<oytel_types::EventType> = oytel_types::EventType::ALL
        .into_iter()
        .filter(|t| form.checked.contains_key(&format!("event:{}", t.as_str())))
        .collect();
    let change = oytel_types::UpdateWebhookEndpoint::new()
        .url(form.url.trim())
        .description(form.description.trim())
        .events(events);
    let back = format!("/dashboard/webhooks/{id}");
    match update_endpoint(state, caller, id, change).await {
        Ok(_) => Redirect::to("/dashboard/webhooks").into_response(),
        Err(e) => refused(e, &back),
    }
}
