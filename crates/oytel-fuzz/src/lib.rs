//! Fuzz targets for every parser that reads what a stranger sends us, and the rule each must
//! keep whatever the bytes. libFuzzer runs them through `cargo xtask fuzz` (coverage-guided,
//! on the stable toolchain); `tests/corpus.rs` runs the committed corpus through the same
//! functions in `cargo test`, so an input that once broke a rule stays a test.
//!
//! A target panics (and the fuzzer reports a crash) when its rule breaks:
//!
//! | target | reads | the rule |
//! |---|---|---|
//! | [`body`] | a request body, as every JSON route reads it (each request type), then the domain's checks of it | never a panic; a refusal is `INVALID_JSON` or `VALIDATION_ERROR` in plain words (no Rust type the input did not contain); an accepted body writes back as JSON that reads the same; a stored webhook URL is an absolute http(s) URL that passes the checks again (its length aside: normalising can lengthen it) |
//! | [`cursor`] | a `cursor` query parameter and a `limit` | never a panic; every string of the spec's pattern `^[0-9]{0,18}$` is accepted; an accepted cursor is a position ≥ 0 that encodes back to itself |
//! | [`headers`] | `X-API-Key`, `Authorization` and `Idempotency-Key` values | never a panic; a presented key has no surrounding space; an `Idempotency-Key` is accepted exactly when it matches the spec's `^[!-~]{1,255}$`; a key that is no key is refused before any lookup |
//! | [`webhook`] | a delivery's `webhook-id`, `webhook-timestamp`, `webhook-signature` and body, as a receiver verifies it; a `whsec_` secret | never a panic; only a signature made with the secret passes; a signed delivery passes and the same with its first byte changed fails; a secret reads back as itself |
//! | [`catalog`] | a plan catalog file (`OYTEL_CATALOG`) | never a panic, at load or at any later use of an accepted catalog (prices of every term, the wire form, filters, top-up offers) |
//! | [`es2plus`] | an ES2+ message: each request an SM-DP+ reads, each answer our client reads, the download notification we will read | never a panic; an accepted message writes back as JSON that reads the same; an accepted ICCID is 18 to 20 digits and its padded form reads as itself |
//! | [`inventory`] | an ICCID batch file (`oytel-server inventory import`) | never a panic; every line is either an ICCID (18 to 20 digits, starting `89`, its Luhn check digit right, once) or refused with its line number; accepted ICCIDs read back as themselves |

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use chrono::TimeZone as _;
use oytel_core::body::{parse_json, BodyError};
use oytel_core::catalog::{Catalog, Term};
use oytel_types::{
    ActivationBatch, CancelRequest, CreateWebhookEndpoint, Environment, ErrorCode,
    ProvisionRequest, SandboxUsageRequest, TopUpRequest, UpdateAccount, UpdateWebhookEndpoint,
    UsageBatch, WebhookEvent,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A fuzz target: bytes in, a panic when its rule breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus folder and libFuzzer binary carry.
pub const TARGETS: &[(&str, Target)] = &[
    ("body", body),
    ("cursor", cursor),
    ("headers", headers),
    ("webhook", webhook),
    ("catalog", catalog),
    ("es2plus", es2plus),
    ("inventory", inventory),
];

/// Words of Rust that a message to a partner must not contain, unless the partner sent them.
const RUST_WORDS: &[&str] = &[
    "u8", "u16", "u32", "u64", "usize", "i8", "i32", "i64", "isize", "f32", "f64", "struct ",
    "Option", "::", "serde",
];

/// A request body read as each request type, then checked as the routes check it.
pub fn body(data: &[u8]) {
    static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    let catalog = CATALOG.get_or_init(Catalog::default_catalog);
    let now = chrono::Utc.timestamp_opt(1_790_000_000, 0).unwrap();
    let scope = oytel_core::Scope {
        partner_id: "ptn_fuzz".into(),
        environment: Environment::Sandbox,
    };
    if let Some(request) = read_body::<ProvisionRequest>(data) {
        let _ = oytel_core::provision::validate(&request, catalog);
    }
    if let Some(request) = read_body::<CreateWebhookEndpoint>(data) {
        if let Ok(endpoint) = oytel_core::webhooks::new_endpoint(&scope, &request, false, now) {
            // Normalising can lengthen a URL past the limit on what is sent (`xn--` domains,
            // percent-encoding): every other check holds for what is stored.
            let within = endpoint.url.chars().count() <= oytel_core::validation::MAX_URL_CHARS;
            assert!(
                !within
                    || oytel_core::webhooks::validate_endpoint_url(&endpoint.url, false).is_ok(),
                "a stored URL is one the checks accept: {:?}",
                endpoint.url
            );
            assert!(
                url_is_http(&endpoint.url),
                "a stored URL is an absolute http(s) URL: {:?}",
                endpoint.url
            );
            if let Some(update) = read_body::<UpdateWebhookEndpoint>(data) {
                let _ = oytel_core::webhooks::updated_endpoint(endpoint, &update, false, now);
            }
        }
    }
    if let Some(request) = read_body::<TopUpRequest>(data) {
        for plan in &catalog.plans {
            let _ = oytel_core::packages::find_offer(catalog, &plan.id, &request.topup_id);
        }
    }
    read_body::<UpdateWebhookEndpoint>(data);
    read_body::<CancelRequest>(data);
    read_body::<SandboxUsageRequest>(data);
    read_body::<UpdateAccount>(data);
    read_body::<UsageBatch>(data);
    read_body::<ActivationBatch>(data);
    // What a partner's receiver reads once the signature holds.
    if let Ok(event) = serde_json::from_slice::<WebhookEvent>(data) {
        round_trips(&event, |bytes| {
            serde_json::from_slice::<WebhookEvent>(bytes).ok()
        });
    }
}

/// Whether `text` parses as an absolute http(s) URL with a host and no credentials.
fn url_is_http(text: &str) -> bool {
    text.parse::<url::Url>().is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some_and(|h| !h.is_empty())
            && u.username().is_empty()
            && u.password().is_none()
    })
}

/// Reads `data` as the server reads a body of type `T`, and checks the outcome's rule.
fn read_body<T: DeserializeOwned + Serialize>(data: &[u8]) -> Option<T> {
    match parse_json::<T>(data) {
        Ok(value) => {
            round_trips(&value, |bytes| parse_json::<T>(bytes).ok());
            Some(value)
        }
        Err(error) => {
            assert_plain_words(&error, data);
            None
        }
    }
}

fn assert_plain_words(error: &BodyError, data: &[u8]) {
    assert!(
        matches!(
            error.code,
            ErrorCode::InvalidJson | ErrorCode::ValidationError
        ),
        "a refused body is INVALID_JSON or VALIDATION_ERROR, not {:?}",
        error.code
    );
    assert!(!error.message.trim().is_empty(), "a refusal says why");
    let sent = String::from_utf8_lossy(data);
    for word in RUST_WORDS {
        assert!(
            !error.message.contains(word) || sent.contains(word),
            "the message {:?} names Rust's `{word}`",
            error.message
        );
    }
}

/// `value` written as JSON reads back (with `read`) as the same value.
fn round_trips<T: Serialize>(value: &T, read: impl Fn(&[u8]) -> Option<T>) {
    let written = serde_json::to_vec(value).expect("a read value writes back");
    let again = read(&written).unwrap_or_else(|| {
        panic!(
            "what was written does not read back: {}",
            String::from_utf8_lossy(&written)
        )
    });
    let rewritten = serde_json::to_vec(&again).expect("a read value writes back");
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&rewritten),
        "a value changed on its way through JSON"
    );
}

/// A `cursor` (all but the first byte) and a `limit` (the first byte).
pub fn cursor(data: &[u8]) {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let of_the_pattern = text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit());
    let page = oytel_core::paging::page_request(Some(u32::from(limit)), Some(text));
    let limit_ok = (1..=oytel_core::paging::MAX_PAGE_SIZE).contains(&u32::from(limit));
    if of_the_pattern && limit_ok {
        assert!(
            page.is_ok(),
            "the spec's cursor {text:?} with limit {limit} is refused"
        );
    }
    if !limit_ok {
        assert!(page.is_err(), "limit {limit} is outside 1..=100");
    }
    if let Ok(position) = oytel_core::paging::decode_cursor(text) {
        assert!(position >= 0, "{text:?} decodes to {position}");
        let again = oytel_core::paging::encode_cursor(position);
        assert_eq!(
            oytel_core::paging::decode_cursor(&again).ok(),
            Some(position),
            "{text:?}"
        );
    }
}

/// Three header values, split on the first two `\n`: `X-API-Key`, `Authorization`,
/// `Idempotency-Key`. An empty part is a header not sent.
pub fn headers(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let mut next = || parts.next().filter(|p| !p.is_empty());
    let (api_key, authorization, idempotency) = (next(), next(), next());

    match oytel_core::keys::presented_key(api_key, authorization) {
        Ok(Some(key)) => {
            assert_eq!(key, key.trim(), "a presented key is trimmed");
            let looked_up = std::cell::Cell::new(false);
            let outcome = block_on(oytel_core::keys::authenticate(Some(&key), |_hash| {
                looked_up.set(true);
                async { Ok(None) }
            }))
            .expect("an unknown key is no storage error");
            assert!(outcome.is_err(), "an unknown key is refused");
            let shaped = key.len() <= 128
                && oytel_core::Environment::of_key(&key).is_some()
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            assert_eq!(
                looked_up.get(),
                shaped,
                "only a key of the right shape is looked up: {key:?}"
            );
        }
        Ok(None) => assert!(api_key.is_none() && authorization.is_none()),
        Err(_) => {}
    }

    if let Some(value) = idempotency {
        if let Ok(text) = std::str::from_utf8(value) {
            let of_the_pattern =
                (1..=255).contains(&text.len()) && text.bytes().all(|b| (b'!'..=b'~').contains(&b));
            assert_eq!(
                oytel_core::idempotency::IdempotencyKey::parse(text).is_ok(),
                of_the_pattern,
                "the server and the spec disagree on the Idempotency-Key {text:?}"
            );
        }
    }
}

/// Polls a future that never waits (the lookups above answer at once).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

const FUZZ_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const NOW: i64 = 1_790_000_000;

/// A delivery as a receiver sees it: `webhook-id`, `webhook-timestamp` and `webhook-signature`
/// on the first three lines, the body after them. Also a secret, the first line read as one.
pub fn webhook(data: &[u8]) {
    use oytel_webhooks::{verify, Secret};
    let secret = Secret::parse(FUZZ_SECRET).expect("the fuzz secret is valid");
    let mut parts = data.splitn(4, |&b| b == b'\n');
    let mut text = || {
        parts
            .next()
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
    };
    let (id, timestamp, signatures) = (text(), text(), text());
    let body = data
        .splitn(4, |&b| b == b'\n')
        .nth(3)
        .unwrap_or_default()
        .to_vec();

    if verify(&secret, &id, &timestamp, &signatures, &body, NOW).is_ok() {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .expect("a verified timestamp reads");
        let genuine = secret.sign(&id, ts, &body);
        assert!(
            signatures.split(' ').any(|s| s == genuine),
            "a delivery passed without the secret's signature"
        );
    }

    // A delivery signed now passes; the same with one byte of the body changed fails.
    if !id.is_empty() {
        let signed = secret.sign(&id, NOW, &body);
        let both = format!("{signatures} {signed}");
        assert_eq!(
            verify(&secret, &id, &NOW.to_string(), &both, &body, NOW + 60),
            Ok(()),
            "a signed delivery is refused"
        );
        if let Some(first) = body.first() {
            let mut changed = body.clone();
            changed[0] = first.wrapping_add(1);
            assert!(
                verify(&secret, &id, &NOW.to_string(), &signed, &changed, NOW).is_err(),
                "a changed body passed"
            );
        }
    }

    if let Ok(read) = Secret::parse(&id) {
        let again = Secret::parse(&read.to_text()).expect("a secret's text reads back");
        assert_eq!(again.sign("msg", NOW, b"{}"), read.sign("msg", NOW, b"{}"));
    }
}

/// A catalog file, then every use the server makes of an accepted one.
pub fn catalog(data: &[u8]) {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(catalog) = Catalog::from_json(json) else {
        return;
    };
    for plan in &catalog.plans {
        for term in Term::ALL {
            let _ = plan.monthly_price(term);
            let _ = plan.term_price(term);
        }
        let _ = plan.data_allowance();
        for environment in [Environment::Sandbox, Environment::Production] {
            let wire = plan.to_wire(&catalog.currency, environment);
            serde_json::to_vec(&wire).expect("a plan writes as JSON");
        }
        for offer in oytel_core::packages::offers(&catalog, &plan.id) {
            let _ = offer.to_wire(&catalog.currency);
        }
        for country in &plan.countries {
            assert!(plan.covers(country));
            assert!(catalog.filter(Some(country), Some(&plan.region)).count() > 0);
        }
    }
}

/// An ES2+ message, read as each message type of the interface.
pub fn es2plus(data: &[u8]) {
    use oytel_es2plus::*;
    fn message<T: DeserializeOwned + Serialize>(data: &[u8]) {
        if let Ok(value) = serde_json::from_slice::<T>(data) {
            round_trips(&value, |bytes| serde_json::from_slice::<T>(bytes).ok());
        }
    }
    message::<DownloadOrderRequest>(data);
    message::<DownloadOrderResponse>(data);
    message::<ConfirmOrderRequest>(data);
    message::<ConfirmOrderResponse>(data);
    message::<CancelOrderRequest>(data);
    message::<ReleaseProfileRequest>(data);
    message::<HeaderOnlyResponse>(data);
    message::<DownloadProgressInfo>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(iccid) = Iccid::parse(text) {
            let digits = iccid.as_str();
            assert!(
                (18..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
            );
            assert_eq!(
                Iccid::parse(&iccid.padded()),
                Some(iccid.clone()),
                "{text:?}"
            );
        }
        let _ = Function::from_name(text).map(Function::path);
    }
}

/// An ICCID batch file, as `oytel-server inventory import` reads it.
pub fn inventory(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let batch = oytel_core::inventory::parse_batch(text);
    let lines = text.lines().count();
    let mut seen = std::collections::HashSet::new();
    for iccid in &batch.iccids {
        assert!((18..=20).contains(&iccid.len()), "{iccid}");
        assert!(iccid.starts_with("89") && iccid.bytes().all(|b| b.is_ascii_digit()));
        let (body, check) = iccid.split_at(iccid.len() - 1);
        assert_eq!(
            u32::from(oytel_core::numbers::luhn_check_digit(body)),
            u32::from(check.as_bytes()[0] - b'0'),
            "{iccid}"
        );
        assert!(seen.insert(iccid.clone()), "{iccid} accepted twice");
    }
    for refused in &batch.refused {
        assert!((1..=lines).contains(&refused.line), "{refused:?}");
    }
    assert!(batch.iccids.len() + batch.refused.len() <= lines);
    // Accepted ICCIDs, one per line, read back as themselves.
    let again = oytel_core::inventory::parse_batch(&batch.iccids.join("\n"));
    assert_eq!(again.iccids, batch.iccids);
    assert!(again.refused.is_empty());
}
