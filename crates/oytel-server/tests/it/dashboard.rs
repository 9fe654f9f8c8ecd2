//! The web console's sessions, forms and isolation, over HTTP (the browser suite in
//! `tests/browser` drives the pages themselves): the cookie's flags, a session that sees
//! exactly what its key sees, CSRF and cross-site refusals, sign-out, revocation, throttled
//! sign-ins, and that no token is stored or shown.

use oytel_server::testing::{TestServer, OPERATOR_TOKEN};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

use crate::helpers::order;

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in with `form` at `path`; the session cookie (`oytel_session=…`) and the whole
/// `Set-Cookie`.
async fn sign_in(server: &TestServer, path: &str, form: &[(&str, &str)]) -> (String, String) {
    let answer = browser()
        .post(format!("{}{path}", server.base))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303, "{:?}", answer.text().await);
    let set = answer.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    (cookie, set)
}

/// The operator's session cookie.
async fn operator(server: &TestServer) -> String {
    let form = [("operator_token", OPERATOR_TOKEN)];
    sign_in(server, "/dashboard/admin/sign-in", &form).await.0
}

async fn page(server: &TestServer, cookie: &str, path: &str) -> (u16, String, Option<String>) {
    let answer = browser()
        .get(format!("{}{path}", server.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let location = answer
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (
        answer.status().as_u16(),
        answer.text().await.unwrap(),
        location,
    )
}

/// The CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    html[at..at + 64].to_owned()
}

async fn post_form(
    server: &TestServer,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> u16 {
    let mut request = browser()
        .post(format!("{}{path}", server.base))
        .header(COOKIE, cookie)
        .form(form);
    if let Some(origin) = origin {
        request = request
            .header("origin", origin)
            .header("sec-fetch-site", "cross-site");
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_sees_exactly_what_its_key_sees() {
    let server = TestServer::spawn().await;
    let api = reqwest::Client::new();
    let provision = |key: String| {
        api.post(format!("{}/api/v1/esim/provision", server.base))
            .bearer_auth(key)
            .json(&order("uk-lite-10"))
            .send()
    };
    let mine: serde_json::Value = provision(server.partner.sandbox_key.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let live: serde_json::Value = provision(server.partner.live_key.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let theirs: serde_json::Value = provision(server.other.sandbox_key.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let (cookie, set_cookie) = sign_in(
        &server,
        "/dashboard/sign-in",
        &[("api_key", &server.partner.sandbox_key)],
    )
    .await;
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/dashboard",
        "Max-Age=43200",
    ] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "served over http here");

    let (status, html, _) = page(&server, &cookie, "/dashboard/esims").await;
    assert_eq!(status, 200);
    assert!(html.contains(mine["esim_id"].as_str().unwrap()));
    assert!(
        !html.contains(live["esim_id"].as_str().unwrap()),
        "sandbox never sees live"
    );
    assert!(
        !html.contains(theirs["esim_id"].as_str().unwrap()),
        "nor another partner"
    );
    let (status, html, _) = page(
        &server,
        &cookie,
        &format!("/dashboard/esims/{}", theirs["esim_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 404, "{html}");
    let (status, html, _) = page(
        &server,
        &cookie,
        &format!("/dashboard/esims/{}", mine["esim_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains(mine["activation_code"].as_str().unwrap()));
    // Every page of the session: no key, no session token, no-store, framing refused.
    for path in [
        "/dashboard",
        "/dashboard/orders",
        "/dashboard/statement",
        "/dashboard/webhooks",
        "/dashboard/keys",
    ] {
        let answer = browser()
            .get(format!("{}{path}", server.base))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.headers()["cache-control"], "no-store");
        assert!(answer.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        let html = answer.text().await.unwrap();
        assert!(
            !html.contains(&server.partner.sandbox_key) && !html.contains(&server.partner.live_key),
            "{path}"
        );
        assert!(
            !html.contains(cookie.trim_start_matches("oytel_session=")),
            "{path}"
        );
    }
    // Only the token's hash is stored.
    let token = cookie.trim_start_matches("oytel_session=");
    let hash = oytel_core::sessions::token_hash(token);
    assert!(server.store.find_session(&hash).await.unwrap().is_some());
    assert!(server.store.find_session(token).await.unwrap().is_none());
    // A partner's session is not the operator's.
    let (status, _, location) = page(&server, &cookie, "/dashboard/admin").await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/dashboard/admin/sign-in"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_sessions_token_and_our_origin() {
    let server = TestServer::spawn().await;
    let cookie = operator(&server).await;
    let (status, html, _) = page(&server, &cookie, "/dashboard/admin").await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    let credit = format!("/dashboard/admin/partners/{}/credit", server.partner.id);
    let balance = || async { server.store.live_balance(&server.partner.id).await.unwrap() };
    let before = balance().await;

    assert_eq!(
        post_form(&server, &cookie, &credit, &[("amount", "10")], None).await,
        403,
        "no token"
    );
    assert_eq!(
        post_form(
            &server,
            &cookie,
            &credit,
            &[("amount", "10"), ("csrf", &"0".repeat(64))],
            None
        )
        .await,
        403,
        "another token"
    );
    assert_eq!(
        post_form(
            &server,
            &cookie,
            &credit,
            &[("amount", "10"), ("csrf", &csrf)],
            Some("http://evil.example")
        )
        .await,
        403,
        "from another site"
    );
    assert_eq!(balance().await, before, "nothing was credited");
    assert_eq!(
        post_form(
            &server,
            &cookie,
            &credit,
            &[("amount", "-5"), ("csrf", &csrf)],
            None
        )
        .await,
        400
    );
    assert_eq!(
        post_form(
            &server,
            &cookie,
            &credit,
            &[("amount", "10.50"), ("csrf", &csrf)],
            None
        )
        .await,
        303
    );
    assert_eq!(balance().await, before + 1050);

    // Signing in from another site is refused too.
    let refused = browser()
        .post(format!("{}/dashboard/sign-in", server.base))
        .header("sec-fetch-site", "cross-site")
        .form(&[("api_key", server.partner.sandbox_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get(SET_COOKIE).is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_and_revocation_end_the_session() {
    let server = TestServer::spawn().await;
    let (cookie, _) = sign_in(
        &server,
        "/dashboard/sign-in",
        &[("api_key", &server.partner.live_key)],
    )
    .await;
    let (_, html, _) = page(&server, &cookie, "/dashboard").await;
    assert_eq!(
        post_form(
            &server,
            &cookie,
            "/dashboard/sign-out",
            &[("csrf", &csrf_of(&html))],
            None
        )
        .await,
        303
    );
    let (status, _, location) = page(&server, &cookie, "/dashboard").await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/dashboard/sign-in")),
        "signed out"
    );

    let (cookie, _) = sign_in(
        &server,
        "/dashboard/sign-in",
        &[("api_key", &server.partner.live_key)],
    )
    .await;
    assert_eq!(page(&server, &cookie, "/dashboard").await.0, 200);
    let keys = server
        .store
        .list_api_keys(&server.partner.id)
        .await
        .unwrap();
    let live = keys
        .iter()
        .find(|k| k.environment == oytel_types::Environment::Production)
        .unwrap();
    assert!(server
        .store
        .revoke_api_key(&live.id, oytel_core::clock::now())
        .await
        .unwrap());
    let (status, _, location) = page(&server, &cookie, "/dashboard").await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/dashboard/sign-in")),
        "the key was revoked"
    );
    let token = cookie.trim_start_matches("oytel_session=");
    assert!(
        server
            .store
            .find_session(&oytel_core::sessions::token_hash(token))
            .await
            .unwrap()
            .is_none(),
        "and the session is gone"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_throttled_like_failed_api_calls() {
    let server = TestServer::spawn_with(|settings| settings.auth_failures_per_minute = 3).await;
    let attempt = |key: &'static str| {
        browser()
            .post(format!("{}/dashboard/sign-in", server.base))
            .form(&[("api_key", key)])
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            attempt("sk_live_notakeynotakeynotakey")
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // The address is blocked for failures, as the API is: the page says when to retry.
    let blocked = attempt("sk_live_notakeynotakeynotakey")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(blocked.contains("Too many failed sign-ins"), "{blocked}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_creates_a_key_shown_once_revokes_it_and_sets_limits() {
    let server = TestServer::spawn().await;
    let cookie = operator(&server).await;
    let partner_page = format!("/dashboard/admin/partners/{}", server.partner.id);
    let (status, html, _) = page(&server, &cookie, &partner_page).await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);

    let created = browser()
        .post(format!("{}{partner_page}/keys", server.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("environment", "sandbox")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let html = created.text().await.unwrap();
    let at = html.find("data-testid=\"new-key\">").unwrap() + 22;
    let key = html[at..].split('<').next().unwrap().to_owned();
    assert!(key.starts_with("sk_sandbox_"), "{key}");
    let account = |key: String| {
        reqwest::Client::new()
            .get(format!("{}/api/v1/account", server.base))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(
        account(key.clone()).await.unwrap().status(),
        200,
        "the new key works"
    );
    let (_, again, _) = page(&server, &cookie, &partner_page).await;
    assert!(!again.contains(&key), "shown only once");

    let keys = server
        .store
        .list_api_keys(&server.partner.id)
        .await
        .unwrap();
    let id = keys
        .iter()
        .find(|k| key.starts_with(&k.hint))
        .unwrap()
        .id
        .clone();
    let revoke = format!("/dashboard/admin/keys/{id}/revoke");
    let other = server.other.id.clone();
    assert_eq!(
        post_form(
            &server,
            &cookie,
            &revoke,
            &[("csrf", &csrf), ("partner_id", &other)],
            None
        )
        .await,
        404,
        "a key is revoked only as its own partner's"
    );
    assert_eq!(
        post_form(
            &server,
            &cookie,
            &revoke,
            &[("csrf", &csrf), ("partner_id", &server.partner.id)],
            None
        )
        .await,
        303
    );
    assert_eq!(account(key).await.unwrap().status(), 401, "revoked");

    let limits = format!("{partner_page}/limits");
    assert_eq!(
        post_form(
            &server,
            &cookie,
            &limits,
            &[("csrf", &csrf), ("burst_per_second", "zero")],
            None
        )
        .await,
        400
    );
    assert_eq!(
        post_form(
            &server,
            &cookie,
            &limits,
            &[
                ("csrf", &csrf),
                ("provision_per_hour", "7"),
                ("status_per_hour", ""),
                ("burst_per_second", "")
            ],
            None
        )
        .await,
        303
    );
    let set = server
        .store
        .partner_limits(&server.partner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            set.provision_per_hour,
            set.status_per_hour,
            set.burst_per_second
        ),
        (Some(7), None, None)
    );

    let (status, html, _) = page(&server, &cookie, "/dashboard/admin/operations").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Webhook queue") && html.contains("Recent server errors"),
        "{html}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_session_ends_with_its_token_and_a_sandbox_session_sees_no_live_key() {
    let server = TestServer::spawn().await;
    // A session opened with another operator token (the server's was changed since).
    let (token, stale) = oytel_core::sessions::open(
        oytel_core::sessions::SessionKind::Operator,
        Some(oytel_server::dashboard::session::operator_hash(
            "the-old-token",
        )),
        oytel_core::clock::now(),
    );
    server.store.create_session(&stale).await.unwrap();
    let cookie = format!("oytel_session={token}");
    let (status, _, location) = page(&server, &cookie, "/dashboard/admin").await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/dashboard/admin/sign-in"))
    );
    assert!(server
        .store
        .find_session(&stale.token_hash)
        .await
        .unwrap()
        .is_none());

    let (sandbox, _) = sign_in(
        &server,
        "/dashboard/sign-in",
        &[("api_key", &server.partner.sandbox_key)],
    )
    .await;
    let (status, html, _) = page(&server, &sandbox, "/dashboard/keys").await;
    assert_eq!(status, 200);
    let keys = server
        .store
        .list_api_keys(&server.partner.id)
        .await
        .unwrap();
    for key in keys {
        let shown = html.contains(&key.id);
        let sandbox_key = key.environment == oytel_types::Environment::Sandbox;
        assert_eq!(shown, sandbox_key, "{} ({:?})", key.id, key.environment);
    }
    // A malformed id is refused as the API refuses it, never a server error.
    let (status, _, _) = page(&server, &sandbox, "/dashboard/esims/%01").await;
    assert!((400..500).contains(&status), "{status}");
    server.stop().await;
}
