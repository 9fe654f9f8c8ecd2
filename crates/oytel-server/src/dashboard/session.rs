//! The console's sessions over HTTP: the cookie, the extractors that find a page's signer,
//! and the checks every form goes through (see [`oytel_core::sessions`] for the rules).
//!
//! | request | without a live session | with one |
//! |---|---|---|
//! | a page (`GET`) | `303` to the sign-in page | served, scoped to the session's key (or the operator) |
//! | a form (`POST`) | `303` to the sign-in page | served if its CSRF token is the session's and it comes from our own origin; `403` otherwise |
//! | sign-in | `Sec-Fetch-Site`/`Origin` must be our own; a refused key counts against the address like a refused API key | — |

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use oytel_core::clock::now;
use oytel_core::sessions::{self, SessionKind, SessionRecord};

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

/// The cookie holding the session token.
pub const COOKIE: &str = "oytel_session";

/// The cookie's path: the console only.
pub const COOKIE_PATH: &str = "/dashboard";

/// Who signed in, and the token forms must carry.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The session's token (from the cookie).
    pub token: String,
    /// Its CSRF token.
    pub csrf: String,
    /// A partner's key as a caller of the API (scope and limits), or none for the operator.
    pub caller: Option<Caller>,
}

/// A partner's session (pages of `/dashboard`).
#[derive(Debug, Clone)]
pub struct PartnerSession(pub Signed, pub Caller);

/// The operator's session (pages of `/dashboard/admin`).
#[derive(Debug, Clone)]
pub struct OperatorSession(pub Signed);

/// The session token in the request's cookies, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The `Set-Cookie` that opens a session (`Secure` when the server is reached over HTTPS).
pub fn set_cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if state.settings.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let max_age = sessions::ABSOLUTE.num_seconds();
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("oytel_session=; Max-Age=0"))
}

/// The `Set-Cookie` that ends it.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "oytel_session=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// Whether a form was sent from a page of this server: a browser's `Sec-Fetch-Site` (when
/// sent) is `same-origin` or `none`, and its `Origin` (when sent) is the server's public
/// address (`OYTEL_PUBLIC_URL`) or names the `Host` the request came to (a proxy may rewrite
/// the one or the other).
pub fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let fetch_site_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|site| matches!(site, "same-origin" | "none"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_ok = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let origin = origin.trim_end_matches('/');
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            origin.eq_ignore_ascii_case(public_url.trim_end_matches('/'))
                || host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
        }
    };
    fetch_site_ok && origin_ok
}

/// A refusal of a form that is not ours.
pub fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, message.to_owned()).into_response()
}

/// The hash an operator session keeps of the operator token it was opened with: a changed
/// or removed token ends it.
pub fn operator_hash(token: &str) -> String {
    sessions::token_hash(&format!("oytel-operator:{token}"))
}

/// The live session of this request, if any: found by its token's hash, not idle or past its
/// end; a partner's key still usable, the operator's token still the server's. A session that
/// has ended is deleted. An error of the database is an error, not a sign-out.
pub async fn find(state: &AppState, headers: &HeaderMap) -> Result<Option<Signed>, ApiError> {
    let Some(token) = cookie_token(headers) else {
        return Ok(None);
    };
    let hash = sessions::token_hash(&token);
    let Some(session) = state.store.find_session(&hash).await? else {
        return Ok(None);
    };
    let at = now();
    // Idle or past its end; the operator's token changed; a partner's key revoked or expired.
    let caller = match session.kind {
        SessionKind::Operator => {
            let current = state.settings.operator_token.as_deref().map(operator_hash);
            let same_token = current.is_some() && current == session.key_hash;
            same_token.then_some(None)
        }
        SessionKind::Partner => partner_caller(state, &session).await?.map(Some),
    };
    let Some(caller) = caller.filter(|_| sessions::is_live(&session, at)) else {
        state.store.delete_session(&hash).await?;
        return Ok(None);
    };
    if sessions::needs_touch(&session, at) {
        state.store.touch_session(&hash, at).await?;
    }
    Ok(Some(Signed {
        csrf: sessions::csrf_token(&token),
        token,
        caller,
    }))
}

/// The caller of a partner's session: its key's owner, if the key is still usable.
async fn partner_caller(
    state: &AppState,
    session: &SessionRecord,
) -> Result<Option<Caller>, ApiError> {
    let Some(key_hash) = session.key_hash.as_deref() else {
        return Ok(None);
    };
    let owner = state.keys.owner_of_hash(key_hash).await?;
    Ok(owner
        .filter(|owner| oytel_core::keys::usable(owner, now()))
        .map(|owner| Caller {
            limits: owner.limits.apply(&state.settings.limits),
            owner,
        }))
}

/// `response` with `Retry-After: seconds`.
pub fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// A page saying the console cannot answer now (the database is out of reach, or too many
/// requests), with the status the API would answer.
fn unavailable(error: ApiError) -> Response {
    let status = error.status();
    let page = super::pages::problem("Try again in a moment", error.message(), "/dashboard");
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response()
}

fn to_sign_in(path: &'static str) -> Response {
    Redirect::to(path).into_response()
}

impl FromRequestParts<AppState> for PartnerSession {
    type Rejection = Response;

    /// A partner's live session, within its key's burst limit (as its API calls are).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let signed = match find(state, &parts.headers).await.map_err(unavailable)? {
            Some(signed) => signed,
            None => return Err(to_sign_in("/dashboard/sign-in")),
        };
        let Some(caller) = signed.caller.clone() else {
            return Err(to_sign_in("/dashboard/admin"));
        };
        tracing::Span::current().record("partner_id", caller.owner.partner_id.as_str());
        let owner = &caller.owner;
        if let Err(exceeded) = state.limiter.burst(
            &owner.partner_id,
            owner.environment,
            caller.limits.burst_per_second,
        ) {
            let wait = exceeded.retry_after.as_secs().max(1);
            let refusal = crate::extract::rate_limited("burst_per_second", exceeded.retry_after);
            return Err(with_retry_after(unavailable(refusal), wait));
        }
        Ok(PartnerSession(signed, caller))
    }
}

impl FromRequestParts<AppState> for OperatorSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match find(state, &parts.headers).await.map_err(unavailable)? {
            Some(signed) if signed.caller.is_none() => Ok(OperatorSession(signed)),
            _ => Err(to_sign_in("/dashboard/admin/sign-in")),
        }
    }
}

impl OptionalFromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        find(state, &parts.headers).await.map_err(unavailable)
    }
}

/// Checks a form of `signed`'s session, our origin and its CSRF token: the refusal, if it
/// is not one of ours.
pub fn check_form(
    signed: &Signed,
    headers: &HeaderMap,
    public_url: &str,
    csrf: &str,
) -> Option<Response> {
    if !same_origin(headers, public_url) {
        return Some(forbidden(
            "This form was sent from another site; it is refused.",
        ));
    }
    if !sessions::csrf_matches(&signed.token, csrf) {
        return Some(forbidden(
            "This form is out of date or was not sent from the console; reload the page and try again.",
        ));
    }
    None
}

/// A form that names its CSRF token.
pub trait WithCsrf {
    /// The token it was sent with.
    fn csrf(&self) -> &str;
}

/// A form of a signed-in session `S` ([`PartnerSession`] or [`OperatorSession`]), checked
/// ([`check_form`]) before the handler runs: a refused one never reaches it.
#[derive(Debug)]
pub struct Checked<S, T>(pub S, pub T);

/// The [`Signed`] part of a session.
pub trait HasSigned {
    /// It.
    fn signed(&self) -> &Signed;
}

impl HasSigned for PartnerSession {
    fn signed(&self) -> &Signed {
        &self.0
    }
}

impl HasSigned for OperatorSession {
    fn signed(&self) -> &Signed {
        &self.0
    }
}

impl<S, T> axum::extract::FromRequest<AppState> for Checked<S, T>
where
    S: FromRequestParts<AppState, Rejection = Response> + HasSigned + Send,
    T: serde::de::DeserializeOwned + WithCsrf + Send,
{
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = S::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let request = axum::extract::Request::from_parts(parts, body);
        let axum::Form(form) = axum::Form::<T>::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match check_form(
            session.signed(),
            &headers,
            &state.settings.public_url,
            form.csrf(),
        ) {
            Some(refusal) => Err(refusal),
            None => Ok(Checked(session, form)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap_or_else(|_| unreachable!()));
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "theme=dark; oytel_session=abc123 ; x=y")]);
        assert_eq!(cookie_token(&h).as_deref(), Some("abc123"));
        assert_eq!(
            cookie_token(&headers(&[("cookie", "oytel_session=")])),
            None
        );
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }

    #[test]
    fn only_forms_from_our_own_origin_are_taken() {
        let public = "https://console.example";
        let host = ("host", "console.example:8080");
        let ours = |pairs: &[(&'static str, &str)]| same_origin(&headers(pairs), public);
        assert!(ours(&[host]), "no browser headers: a script or curl");
        assert!(ours(&[
            host,
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://console.example:8080")
        ]));
        assert!(!ours(&[host, ("sec-fetch-site", "cross-site")]));
        assert!(!ours(&[host, ("sec-fetch-site", "same-site")]));
        assert!(!ours(&[host, ("origin", "https://evil.example")]));
        assert!(
            !ours(&[("origin", "https://console.example:8080")]),
            "an origin that is neither the public address nor the host"
        );
        // Behind a proxy that rewrites Host, the public address still matches.
        assert!(ours(&[
            ("host", "10.0.0.5:8080"),
            ("origin", "https://console.example")
        ]));
    }
}
