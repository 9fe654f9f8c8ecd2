//! Webhook rules: which events exist and what they carry, usage thresholds, the retry
//! schedule, and which destinations are allowed.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oytel_types::{EventType, WebhookEvent, WebhookEventData};
use rand::{Rng, RngCore};

use crate::numbers::new_id;
use crate::ports::{EndpointRecord, EsimRecord, EventRecord};
use crate::validation::{has_control, validate_text};
use crate::{CoreError, Scope};

/// The usage thresholds, in percent of the data allowance, each announced once per eSIM.
pub const THRESHOLDS: [u8; 3] = [50, 80, 100];

/// How long an endpoint may fail every delivery before it is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// How long a previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// A new signing secret: 32 random bytes as `whsec_<base64>`.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    oytel_webhooks::Secret::from_bytes(&bytes)
        .map(|s| s.to_text())
        .unwrap_or_default()
}

fn bit(threshold: u8) -> i64 {
    match threshold {
        50 => 1,
        80 => 2,
        _ => 4,
    }
}

/// The thresholds that `used_mb` of `limit_mb` has reached and that `notified` (a bit mask of
/// those announced already) does not hold yet, and the new mask.
pub fn crossed_thresholds(used_mb: u64, limit_mb: u64, notified: i64) -> (Vec<u8>, i64) {
    let mut mask = notified;
    let mut crossed = Vec::new();
    for threshold in THRESHOLDS {
        let reached = u128::from(used_mb) * 100 >= u128::from(threshold) * u128::from(limit_mb);
        if limit_mb > 0 && reached && mask & bit(threshold) == 0 {
            mask |= bit(threshold);
            crossed.push(threshold);
        }
    }
    (crossed, mask)
}

/// The thresholds of `notified` that `used_mb` of a new allowance `limit_mb` still reaches:
/// after a data add-on, those it no longer reaches are announced again when reached.
pub fn rearmed_thresholds(used_mb: u64, limit_mb: u64, notified: i64) -> i64 {
    let (reached, _) = crossed_thresholds(used_mb, limit_mb, 0);
    reached.into_iter().map(bit).fold(0, |m, b| m | b) & notified
}

/// The event of `event_type` about `esim`, ready for the outbox.
pub fn esim_event(
    event_type: EventType,
    esim: &EsimRecord,
    threshold: Option<u8>,
    now: DateTime<Utc>,
) -> EventRecord {
    esim_event_with(event_type, esim, threshold, None, now)
}

/// `esim.topped_up` about `esim`, naming `purchase`.
pub fn topped_up_event(
    esim: &EsimRecord,
    purchase: oytel_types::TopUpPurchase,
    now: DateTime<Utc>,
) -> EventRecord {
    esim_event_with(EventType::EsimToppedUp, esim, None, Some(purchase), now)
}

fn esim_event_with(
    event_type: EventType,
    esim: &EsimRecord,
    threshold: Option<u8>,
    topup: Option<oytel_types::TopUpPurchase>,
    now: DateTime<Utc>,
) -> EventRecord {
    let id = new_id("evt");
    let event = WebhookEvent {
        id: id.clone(),
        event: event_type,
        timestamp: now,
        data: WebhookEventData {
            esim_id: esim.id.clone(),
            customer_email: esim.customer_email.clone(),
            plan_id: esim.plan_id.clone(),
            iccid: Some(esim.iccid.clone()),
            reference_id: esim.reference_id.clone(),
            status: Some(esim.status),
            threshold_percent: threshold,
            data_used_mb: threshold.map(|_| esim.data_used_mb),
            data_limit_mb: threshold.map(|_| esim.data_limit_mb),
            topup,
            profile: match event_type {
                EventType::EsimProfileDownloaded
                | EventType::EsimInstallationFailed
                | EventType::EsimActivated => esim.profile.clone(),
                _ => None,
            },
        },
    };
    EventRecord {
        id,
        partner_id: esim.partner_id.clone(),
        environment: esim.environment,
        esim_id: Some(esim.id.clone()),
        event_type,
        payload: serde_json::to_string(&event).unwrap_or_default(),
        created_at: now,
        traceparent: crate::tracecontext::current(),
    }
}

/// A `webhook.test` event for an endpoint of `partner_id`.
pub fn test_event(
    partner_id: &str,
    environment: oytel_types::Environment,
    now: DateTime<Utc>,
) -> EventRecord {
    let id = new_id("evt");
    let event = WebhookEvent {
        id: id.clone(),
        event: EventType::WebhookTest,
        timestamp: now,
        data: WebhookEventData {
            esim_id: "esim_test".into(),
            customer_email: "test@example.com".into(),
            plan_id: "test-plan".into(),
            iccid: None,
            reference_id: None,
            status: None,
            threshold_percent: None,
            data_used_mb: None,
            data_limit_mb: None,
            topup: None,
            profile: None,
        },
    };
    EventRecord {
        id,
        partner_id: partner_id.to_owned(),
        environment,
        esim_id: None,
        event_type: EventType::WebhookTest,
        payload: serde_json::to_string(&event).unwrap_or_default(),
        created_at: now,
        traceparent: crate::tracecontext::current(),
    }
}

/// `account.balance_low` for a partner whose live balance fell to `balance_cents`, below
/// `threshold_cents`.
pub fn balance_low_event(
    partner_id: &str,
    balance_cents: i64,
    threshold_cents: i64,
    currency: &str,
    now: DateTime<Utc>,
) -> EventRecord {
    let id = new_id("evt");
    let event = oytel_types::AccountWebhookEvent {
        id: id.clone(),
        event: EventType::AccountBalanceLow,
        timestamp: now,
        data: oytel_types::AccountEventData {
            partner_id: partner_id.to_owned(),
            balance: crate::Amount::from_cents(balance_cents),
            balance_cents,
            threshold: crate::Amount::from_cents(threshold_cents),
            threshold_cents,
            currency: currency.to_owned(),
        },
    };
    EventRecord {
        id,
        partner_id: partner_id.to_owned(),
        environment: crate::Environment::Production,
        esim_id: None,
        event_type: EventType::AccountBalanceLow,
        payload: serde_json::to_string(&event).unwrap_or_default(),
        created_at: now,
        traceparent: crate::tracecontext::current(),
    }
}

/// The event types an endpoint that lists none receives, and the only ones a per-eSIM
/// `webhook_url` receives: those of the first release. A type added since goes only to the
/// endpoints that list it, so that no integration is sent a type it does not know.
pub const DEFAULT_EVENTS: [EventType; 4] = [
    EventType::EsimProvisioned,
    EventType::EsimActivated,
    EventType::EsimExpired,
    EventType::UsageThreshold,
];

/// Whether an endpoint subscribed to `types` (empty: [`DEFAULT_EVENTS`]) receives `event`.
pub fn subscribed(types: &[EventType], event: EventType) -> bool {
    if types.is_empty() {
        DEFAULT_EVENTS.contains(&event)
    } else {
        types.contains(&event)
    }
}

/// When failed deliveries are tried again: the delays after the first attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl Default for RetrySchedule {
    /// Immediately, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h.
    fn default() -> Self {
        RetrySchedule(
            [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

impl RetrySchedule {
    /// Parses `5s,5m,30m,2h` (units `ms`, `s`, `m`, `h`).
    pub fn parse(text: &str) -> Result<RetrySchedule, String> {
        let delays = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| {
                let digits = item.trim_end_matches(|c: char| c.is_ascii_alphabetic());
                let number: u64 = digits
                    .parse()
                    .map_err(|_| format!("`{item}` is not a delay like 5s, 5m or 2h"))?;
                match &item[digits.len()..] {
                    "ms" => Ok(Duration::from_millis(number)),
                    "s" => Ok(Duration::from_secs(number)),
                    "m" => Ok(Duration::from_secs(number * 60)),
                    "h" => Ok(Duration::from_secs(number * 3600)),
                    _ => Err(format!("`{item}` is not a delay like 5s, 5m or 2h")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RetrySchedule(delays))
    }

    /// The delay before the next attempt after `attempts` attempts failed, with ±10 %
    /// jitter, or `None` when the schedule is exhausted. A `Retry-After` longer than the
    /// scheduled delay wins.
    pub fn next_delay(&self, attempts: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let scheduled = *self
            .0
            .get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
        let jitter = rand::thread_rng().gen_range(0.9..=1.1);
        let delay = scheduled.mul_f64(jitter);
        Some(retry_after.map_or(delay, |r| r.max(delay)))
    }
}

/// Whether deliveries to `ip` are refused by the SSRF guard: loopback, private, link-local,
/// shared (CGNAT), unspecified, broadcast, multicast and unique-local addresses.
pub fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_ip(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Checks an endpoint URL: absolute `http(s)` without credentials, at most 2048 characters,
/// and, unless `allow_internal`, not naming `localhost` or an internal address.
pub fn validate_endpoint_url(raw: &str, allow_internal: bool) -> Result<String, String> {
    let url = crate::validation::validate_webhook_url(raw)?;
    if !allow_internal {
        let parsed = url::Url::parse(&url).map_err(|e| e.to_string())?;
        let internal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => is_internal_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => is_internal_ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost")
            }
            None => true,
        };
        if internal {
            return Err(
                "webhook URLs may not point at private, loopback or link-local addresses".into(),
            );
        }
    }
    Ok(url)
}

/// An endpoint's note: blank means none; otherwise checked as text (the spec's pattern and
/// length hold for blank ones too).
fn description(text: Option<&str>) -> Result<Option<String>, CoreError> {
    match text {
        None => Ok(None),
        Some(d) if d.trim().is_empty() && d.chars().count() <= 200 && !has_control(d) => Ok(None),
        Some(d) => validate_text("description", d, 200).map(Some),
    }
}

fn event_types(types: &[EventType]) -> Vec<EventType> {
    let mut unique: Vec<EventType> = Vec::new();
    for t in types {
        if !unique.contains(t) {
            unique.push(*t);
        }
    }
    unique
}

/// A new endpoint of `scope` with a fresh secret.
pub fn new_endpoint(
    scope: &Scope,
    request: &oytel_types::CreateWebhookEndpoint,
    allow_internal: bool,
    now: DateTime<Utc>,
) -> Result<EndpointRecord, CoreError> {
    let url = validate_endpoint_url(&request.url, allow_internal)
        .map_err(|m| CoreError::field("url", m))?;
    Ok(EndpointRecord {
        id: new_id("we"),
        partner_id: scope.partner_id.clone(),
        environment: scope.environment,
        url,
        description: description(request.description.as_deref())?,
        event_types: event_types(&request.events),
        secret: generate_secret(),
        previous_secret: None,
        previous_secret_expires_at: None,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    })
}

/// An endpoint with the requested changes. Re-enabling clears why it was disabled.
pub fn updated_endpoint(
    mut endpoint: EndpointRecord,
    request: &oytel_types::UpdateWebhookEndpoint,
    allow_internal: bool,
    now: DateTime<Utc>,
) -> Result<EndpointRecord, CoreError> {
    if let Some(url) = &request.url {
        endpoint.url =
            validate_endpoint_url(url, allow_internal).map_err(|m| CoreError::field("url", m))?;
    }
    if let Some(types) = &request.events {
        endpoint.event_types = event_types(types);
    }
    if request.description.is_some() {
        endpoint.description = description(request.description.as_deref())?;
    }
    match request.enabled {
        Some(true) if !endpoint.enabled => {
            endpoint.enabled = true;
            endpoint.disabled_reason = None;
            endpoint.failing_since = None;
        }
        Some(false) if endpoint.enabled => {
            endpoint.enabled = false;
            endpoint.disabled_reason = Some("disabled through the API".into());
        }
        _ => {}
    }
    endpoint.updated_at = now;
    Ok(endpoint)
}

/// An endpoint with a new secret; the old one signs beside it for [`ROTATION_OVERLAP`].
pub fn rotated_endpoint(mut endpoint: EndpointRecord, now: DateTime<Utc>) -> EndpointRecord {
    endpoint.previous_secret = Some(std::mem::replace(&mut endpoint.secret, generate_secret()));
    endpoint.previous_secret_expires_at = Some(now + overlap());
    endpoint.updated_at = now;
    endpoint
}

/// [`ROTATION_OVERLAP`] as a chrono duration.
pub fn overlap() -> chrono::Duration {
    chrono::Duration::from_std(ROTATION_OVERLAP).unwrap_or(chrono::Duration::hours(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_announced_once_each() {
        assert_eq!(crossed_thresholds(400, 1000, 0), (vec![], 0));
        assert_eq!(crossed_thresholds(500, 1000, 0), (vec![50], 1));
        assert_eq!(crossed_thresholds(900, 1000, 1), (vec![80], 3));
        assert_eq!(crossed_thresholds(900, 1000, 3), (vec![], 3));
        assert_eq!(crossed_thresholds(1200, 1000, 3), (vec![100], 7));
        assert_eq!(crossed_thresholds(1000, 1000, 0), (vec![50, 80, 100], 7));
        assert_eq!(crossed_thresholds(5, 0, 0), (vec![], 0));
    }

    #[test]
    fn schedules_parse_and_jitter_stays_within_ten_percent() {
        let s = RetrySchedule::parse("5s, 5m,2h,250ms").unwrap();
        assert_eq!(
            s.0,
            vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(7200),
                Duration::from_millis(250)
            ]
        );
        assert!(RetrySchedule::parse("5x").is_err());
        assert!(RetrySchedule::parse("s").is_err());
        for _ in 0..100 {
            let d = s.next_delay(2, None).unwrap();
            assert!(
                d >= Duration::from_secs(270) && d <= Duration::from_secs(330),
                "{d:?}"
            );
        }
        assert_eq!(s.next_delay(0, None), None);
        assert_eq!(
            s.next_delay(5, None),
            None,
            "exhausted after 1 + 4 attempts"
        );
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(RetrySchedule::default().0.len(), 7);
    }

    #[test]
    fn internal_destinations_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://172.20.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://localhost:8080/",
            "http://api.localhost/",
        ] {
            assert!(validate_endpoint_url(url, false).is_err(), "{url}");
            assert!(validate_endpoint_url(url, true).is_ok(), "{url}");
        }
        assert!(validate_endpoint_url("https://hooks.partner.example/oytel", false).is_ok());
        assert!(validate_endpoint_url("https://8.8.8.8/", false).is_ok());
        assert!(validate_endpoint_url("ftp://x.example/", true).is_err());
    }

    #[test]
    fn endpoints_are_validated_updated_and_rotated() {
        let scope = Scope {
            partner_id: "ptn_1".into(),
            environment: oytel_types::Environment::Sandbox,
        };
        let now = Utc::now();
        let request = oytel_types::CreateWebhookEndpoint::new("https://h.example/x")
            .events(vec![EventType::EsimActivated, EventType::EsimActivated])
            .description("  main  ");
        let e = new_endpoint(&scope, &request, false, now).unwrap();
        assert_eq!(e.event_types, vec![EventType::EsimActivated]);
        assert_eq!(e.description.as_deref(), Some("main"));
        assert!(e.enabled && e.secret.starts_with("whsec_"));
        let mut bad = request.clone();
        bad.url = "http://10.0.0.1/".into();
        assert!(
            matches!(new_endpoint(&scope, &bad, false, now), Err(CoreError::Validation(f)) if f.field == "url")
        );
        let off = updated_endpoint(
            e.clone(),
            &oytel_types::UpdateWebhookEndpoint::new().enabled(false),
            false,
            now,
        )
        .unwrap();
        assert!(!off.enabled && off.disabled_reason.is_some());
        let on = updated_endpoint(
            off,
            &oytel_types::UpdateWebhookEndpoint::new()
                .enabled(true)
                .events(vec![]),
            false,
            now,
        )
        .unwrap();
        assert!(on.enabled && on.disabled_reason.is_none() && on.event_types.is_empty());
        let rotated = rotated_endpoint(on.clone(), now);
        assert_eq!(rotated.previous_secret.as_deref(), Some(on.secret.as_str()));
        assert_ne!(rotated.secret, on.secret);
        assert_eq!(
            rotated.previous_secret_expires_at,
            Some(now + chrono::Duration::hours(24))
        );
    }

    #[test]
    fn secrets_are_fresh_and_well_formed() {
        let a = generate_secret();
        assert!(oytel_webhooks::Secret::parse(&a).is_ok());
        assert!(a.starts_with("whsec_"));
        assert_ne!(a, generate_secret());
    }

    #[test]
    fn an_endpoint_listing_nothing_gets_the_first_release_s_types_and_no_later_ones() {
        assert!(subscribed(&[], EventType::EsimExpired));
        assert!(!subscribed(
            &[EventType::EsimActivated],
            EventType::EsimExpired
        ));
        for later in [EventType::EsimSuspended, EventType::EsimResumed] {
            assert!(
                !subscribed(&[], later),
                "{later:?} is sent only when listed"
            );
            assert!(subscribed(&[later], later));
        }
    }
}
