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
/// sent) is `same-origin` or `none`, and its `Origin` (when sent) names the `Host`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let fetch_site_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|site| matches!(site, "same-origin" | "none"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_ok = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let origin_host = origin
                .split_once("://")
                .map_or(origin, |(_, rest)| rest)
                .trim_end_matches('/');
            host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
        }
    };
    fetch_site_ok && origin_ok
}

/// A refusal of a form that is not ours.
pub fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, message.to_owned()).into_response()
}

/// The live session of this request, if any: found by its token's hash, not idle or past its
/// end, and for a partner, its key still usable. A session that has ended is deleted.
pub async fn find(state: &AppState, headers: &HeaderMap) -> Option<Signed> {
    let token = cookie_token(headers)?;
    let hash = sessions::token_hash(&token);
    let session = state.store.find_session(&hash).await.ok()??;
    let at = now();
    if !sessions::is_live(&session, at) {
        let _ = state.store.delete_session(&hash).await;
        return None;
    }
    let caller = match session.kind {
        SessionKind::Operator => None,
        SessionKind::Partner => match partner_caller(state, &session).await {
            Some(caller) => Some(caller),
            None => {
                // The key was revoked or has expired: so has the session.
                let _ = state.store.delete_session(&hash).await;
                return None;
            }
        },
    };
    if sessions::needs_touch(&session, at) {
        let _ = state.store.touch_session(&hash, at).await;
    }
    Some(Signed {
        csrf: sessions::csrf_token(&token),
        token,
        caller,
    })
}

async fn partner_caller(state: &AppState, session: &SessionRecord) -> Option<Caller> {
    let owner = state
        .keys
        .owner_of_hash(session.key_hash.as_deref()?)
        .await
        .ok()??;
    oytel_core::keys::usable(&owner, now()).then(|| Caller {
        limits: owner.limits.apply(&state.settings.limits),
        owner,
    })
}

fn to_sign_in(path: &'static str) -> Response {
    Redirect::to(path).into_response()
}

impl FromRequestParts<AppState> for PartnerSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match find(state, &parts.headers).await {
            Some(signed) => match signed.caller.clone() {
                Some(caller) => {
                    tracing::Span::current().record("partner_id", caller.owner.partner_id.as_str());
                    Ok(PartnerSession(signed, caller))
                }
                None => Err(to_sign_in("/dashboard/admin")),
            },
            None => Err(to_sign_in("/dashboard/sign-in")),
        }
    }
}

impl FromRequestParts<AppState> for OperatorSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match find(state, &parts.headers).await {
            Some(signed) if signed.caller.is_none() => Ok(OperatorSession(signed)),
            _ => Err(to_sign_in("/dashboard/admin/sign-in")),
        }
    }
}

impl OptionalFromRequestParts<AppState> for Signed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(find(state, &parts.headers).await)
    }
}

/// Checks a form of `signed`'s session, our origin and its CSRF token: the refusal, if it
/// is not one of ours.
pub fn check_form(signed: &Signed, headers: &HeaderMap, csrf: &str) -> Option<Response> {
    if !same_origin(headers) {
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
        match check_form(session.signed(), &headers, form.csrf()) {
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
        let host = ("host", "console.example:8080");
        assert!(
            same_origin(&headers(&[host])),
            "no browser headers: a script or curl"
        );
        assert!(same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://console.example:8080")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(
            !same_origin(&headers(&[("origin", "https://console.example:8080")])),
            "an origin and no host"
        );
    }
}
