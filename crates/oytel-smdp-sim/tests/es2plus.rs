//! Our ES2+ client against the simulator, both over real mutual TLS on port 0 with
//! certificates made for the run: every function, the notifications, and every fault the
//! client must survive.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use oytel_es2plus::client::{new_call_id, ClientConfig, Es2Error, Es2PlusClient};
use oytel_es2plus::{DownloadProgressInfo, ExecutionStatus, FinalProfileStatus, NotificationPoint};
use oytel_smdp_sim::testing::{Pki, Sim};
use oytel_smdp_sim::{tls, NotifyConfig};
use rcgen::ExtendedKeyUsagePurpose;
use serde_json::{json, Value};

/// Our client, with the certificate `identity` (or none) and trusting `ca`.
fn client(
    sim: &Sim,
    identity: Option<(String, String)>,
    ca: &str,
    timeout_ms: u64,
    attempts: u32,
) -> Es2PlusClient {
    let mut config = ClientConfig::new(&sim.base, "oytel-operator");
    config.identity_pem = identity.map(|(cert, key)| format!("{cert}{key}").into_bytes());
    config.ca_pem = Some(ca.as_bytes().to_vec());
    config.timeout = Duration::from_millis(timeout_ms);
    config.attempts = attempts;
    config.backoff = Duration::from_millis(20);
    Es2PlusClient::new(&config).expect("a client")
}

fn operator(pki: &Pki) -> Option<(String, String)> {
    Some(pki.issue("oytel-operator", ExtendedKeyUsagePurpose::ClientAuth))
}

#[tokio::test]
async fn a_profile_is_ordered_released_and_cancelled_over_mutual_tls() {
    let pki = Pki::new("ES2+ test CA");
    let sim = Sim::start(&pki, NotifyConfig::default()).await;
    let es2 = client(&sim, operator(&pki), &pki.ca_pem, 5_000, 3);

    let iccid = es2
        .download_order(&new_call_id(), "uk-5g", None)
        .await
        .expect("downloadOrder")
        .value;
    assert_eq!(sim.state(iccid.as_str()).await, "Allocated");
    let confirmed = es2
        .confirm_order(&new_call_id(), &iccid, None)
        .await
        .expect("confirmOrder");
    assert_eq!(confirmed.warning, None);
    let (matching_id, address) = (confirmed.value.matching_id, confirmed.value.smdp_address);
    assert_eq!(address.as_deref(), Some("smdp.sim.test"));
    assert_eq!(
        oytel_core::numbers::activation_code(address.as_deref().unwrap_or_default(), &matching_id),
        format!("LPA:1$smdp.sim.test${matching_id}")
    );
    assert_eq!(sim.state(iccid.as_str()).await, "Released");

    // An SM-DP+ before v2.2 wants 19-digit ICCIDs padded with `F`: the simulator reads both.
    let mut padded = ClientConfig::new(&sim.base, "oytel-operator");
    padded.identity_pem = operator(&pki).map(|(cert, key)| format!("{cert}{key}").into_bytes());
    padded.ca_pem = Some(pki.ca_pem.as_bytes().to_vec());
    padded.pad_iccid = true;
    let es2_padded = Es2PlusClient::new(&padded).expect("a client");
    es2_padded
        .cancel_order(
            &new_call_id(),
            &iccid,
            Some(&matching_id),
            FinalProfileStatus::Available,
        )
        .await
        .expect("cancelOrder");
    assert_eq!(sim.state(iccid.as_str()).await, "Available");
    assert_eq!(
        sim.stock("uk-5g", "Available").await,
        3,
        "the profile is back in stock"
    );

    // A profile confirmed without release waits for releaseProfile.
    let second = es2
        .download_order(&new_call_id(), "uk-5g", None)
        .await
        .expect("downloadOrder")
        .value;
    let request =
        json!({"header": es2.header(&new_call_id()), "iccid": second, "releaseFlag": false});
    let answer: Value = sim
        .control
        .post(format!("{}/gsma/rsp2/es2plus/confirmOrder", sim.base))
        .header("X-Admin-Protocol", oytel_es2plus::ADMIN_PROTOCOL)
        .json(&request)
        .send()
        .await
        .expect("confirmOrder")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        answer["header"]["functionExecutionStatus"]["status"],
        "Executed-Success"
    );
    assert_eq!(sim.state(second.as_str()).await, "Confirmed");
    es2.release_profile(&new_call_id(), &second)
        .await
        .expect("releaseProfile");
    assert_eq!(sim.state(second.as_str()).await, "Released");
}

#[tokio::test]
async fn without_our_certificate_or_with_another_ca_no_call_gets_through() {
    let pki = Pki::new("ES2+ test CA");
    let stranger = Pki::new("Another CA");
    let sim = Sim::start(&pki, NotifyConfig::default()).await;

    let no_certificate = client(&sim, None, &pki.ca_pem, 2_000, 1);
    let refused = no_certificate
        .download_order(&new_call_id(), "uk-5g", None)
        .await;
    assert!(
        matches!(refused, Err(Es2Error::Unreachable(_))),
        "{refused:?}"
    );
    assert_eq!(refused.unwrap_err().code(), "SMDP_UNAVAILABLE");

    let foreign_certificate = client(&sim, operator(&stranger), &pki.ca_pem, 2_000, 1);
    let refused = foreign_certificate
        .download_order(&new_call_id(), "uk-5g", None)
        .await;
    assert!(
        matches!(refused, Err(Es2Error::Unreachable(_))),
        "{refused:?}"
    );

    let distrusting = client(&sim, operator(&pki), &stranger.ca_pem, 2_000, 1);
    let refused = distrusting
        .download_order(&new_call_id(), "uk-5g", None)
        .await;
    assert!(
        matches!(refused, Err(Es2Error::Unreachable(_))),
        "{refused:?}"
    );

    assert_eq!(
        sim.calls("downloadOrder").await,
        0,
        "nothing reached the SM-DP+"
    );
    assert_eq!(sim.stock("uk-5g", "Available").await, 3);
}

#[tokio::test]
async fn a_refusal_carries_the_smdp_codes_and_reserves_nothing() {
    let pki = Pki::new("ES2+ test CA");
    let sim = Sim::start(&pki, NotifyConfig::default()).await;
    let es2 = client(&sim, operator(&pki), &pki.ca_pem, 5_000, 3);

    let unknown = es2
        .download_order(&new_call_id(), "eu-4g", None)
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), "SMDP_REJECTED");
    assert!(
        unknown
            .to_string()
            .contains("8.2.5/3.9 (profile type: unknown)"),
        "{unknown}"
    );

    sim.post(
        "/control/faults",
        json!({"function": "downloadOrder", "reject":
            {"subject_code": "8.2.5", "reason_code": "3.7", "message": "stock exhausted"}}),
    )
    .await;
    let refused = es2
        .download_order(&new_call_id(), "uk-5g", None)
        .await
        .unwrap_err();
    match &refused {
        Es2Error::Rejected {
            function,
            status,
            data,
        } => {
            assert_eq!(*function, "downloadOrder");
            assert_eq!(*status, ExecutionStatus::Failed);
            let data = data.as_ref().expect("codes");
            assert_eq!(
                (data.subject_code.as_str(), data.reason_code.as_str()),
                ("8.2.5", "3.7")
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        sim.calls("downloadOrder").await,
        2,
        "a refusal is not retried"
    );
    assert_eq!(
        sim.stock("uk-5g", "Available").await,
        3,
        "nothing was reserved"
    );
}

#[tokio::test]
async fn a_slow_answer_is_retried_as_the_same_call_and_reserves_one_profile() {
    let pki = Pki::new("ES2+ test CA");
    let sim = Sim::start(&pki, NotifyConfig::default()).await;
    // Margins wide enough for a loaded machine: 1.5 s per attempt, answers 4 s late.
    let es2 = client(&sim, operator(&pki), &pki.ca_pem, 1_500, 3);

    // The SM-DP+ acts on the first call and answers after our timeout; the retry, the same
    // call, gets the first answer.
    sim.post(
        "/control/faults",
        json!({"function": "downloadOrder", "delay_ms": 4000}),
    )
    .await;
    let iccid = es2
        .download_order(&new_call_id(), "uk-5g", None)
        .await
        .expect("the retry's answer")
        .value;
    let stats = sim.get("/control/stats").await;
    let calls = stats["calls"]["downloadOrder"].as_u64().unwrap_or(0);
    assert!(calls >= 2, "at least one retry: {calls} calls");
    assert_eq!(
        stats["replays"].as_u64(),
        Some(calls - 1),
        "every retry was answered from the first call"
    );
    assert_eq!(
        sim.stock("uk-5g", "Allocated").await,
        1,
        "one profile reserved, not two"
    );
    assert_eq!(sim.state(iccid.as_str()).await, "Allocated");

    // Slow every time: the caller learns that it may have acted, and must reconcile.
    sim.post(
        "/control/faults",
        json!({"function": "confirmOrder", "delay_ms": 4000, "count": 2}),
    )
    .await;
    let slow = client(&sim, operator(&pki), &pki.ca_pem, 1_500, 2);
    let call = new_call_id();
    let timed_out = slow.confirm_order(&call, &iccid, None).await.unwrap_err();
    assert_eq!(timed_out, Es2Error::Timeout(Duration::from_millis(1_500)));
    assert!(timed_out.outcome_unknown());
    assert_eq!(timed_out.code(), "SMDP_TIMEOUT");
    // Reconciling with the same call identifier gets what the SM-DP+ did.
    let confirmed = es2
        .confirm_order(&call, &iccid, None)
        .await
        .expect("the first answer")
        .value;
    assert!(!confirmed.matching_id.is_empty());
    assert_eq!(sim.stock("uk-5g", "Released").await, 1);
}

#[tokio::test]
async fn a_server_error_is_retried_and_a_client_error_is_not() {
    let pki = Pki::new("ES2+ test CA");
    let sim = Sim::start(&pki, NotifyConfig::default()).await;
    let es2 = client(&sim, operator(&pki), &pki.ca_pem, 5_000, 3);

    sim.post(
        "/control/faults",
        json!({"function": "downloadOrder", "http_status": 503}),
    )
    .await;
    es2.download_order(&new_call_id(), "uk-5g", None)
        .await
        .expect("the retry succeeds");
    assert_eq!(
        sim.stock("uk-5g", "Allocated").await,
        1,
        "the 503 did nothing; the retry reserved one"
    );
    assert_eq!(sim.calls("downloadOrder").await, 2);

    sim.post(
        "/control/faults",
        json!({"function": "downloadOrder", "http_status": 400}),
    )
    .await;
    let refused = es2
        .download_order(&new_call_id(), "uk-5g", None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "SMDP_PROTOCOL_ERROR");
    assert_eq!(sim.calls("downloadOrder").await, 3, "a 400 is not retried");
}

#[tokio::test]
async fn extra_headers_are_asked_for_and_sent_with_every_call() {
    let pki = Pki::new("ES2+ test CA");
    let sim = Sim::start(&pki, NotifyConfig::default()).await;
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = asked.clone();
    let es2 =
        client(&sim, operator(&pki), &pki.ca_pem, 5_000, 3).with_extra_headers(move |headers| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let value = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b{n}-01");
            headers.insert("traceparent", value.parse().unwrap());
        });
    sim.post(
        "/control/faults",
        json!({"function": "downloadOrder", "http_status": 503}),
    )
    .await;
    es2.download_order(&new_call_id(), "uk-5g", None)
        .await
        .expect("the retry succeeds");
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "asked once per attempt"
    );
    assert_eq!(
        sim.traceparent("downloadOrder").await.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b1-01")
    );
}

#[tokio::test]
async fn a_repeated_call_identifier_gets_the_first_answer_and_nothing_twice() {
    let pki = Pki::new("ES2+ test CA");
    let sim = Sim::start(&pki, NotifyConfig::default()).await;
    let es2 = client(&sim, operator(&pki), &pki.ca_pem, 5_000, 1);
    let call = new_call_id();
    let first = es2
        .download_order(&call, "uk-5g", None)
        .await
        .expect("first")
        .value;
    let again = es2
        .download_order(&call, "uk-5g", None)
        .await
        .expect("again")
        .value;
    assert_eq!(first, again);
    assert_eq!(sim.stock("uk-5g", "Allocated").await, 1);
    // A refusal waiting for the next call does not change the answer to a repeated one...
    sim.post(
        "/control/faults",
        json!({"function": "downloadOrder", "reject":
            {"subject_code": "8.2.5", "reason_code": "3.7"}}),
    )
    .await;
    let replayed = es2
        .download_order(&call, "uk-5g", None)
        .await
        .expect("replayed");
    assert_eq!(replayed.value, first);
    // ...it meets the next new call, and stays that call's answer.
    let refused_call = new_call_id();
    let refused = es2
        .download_order(&refused_call, "uk-5g", None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "SMDP_REJECTED");
    let still = es2
        .download_order(&refused_call, "uk-5g", None)
        .await
        .unwrap_err();
    assert_eq!(still, refused);
    assert_eq!(sim.stock("uk-5g", "Allocated").await, 1);
    // The same identifier for another function is refused.
    let misuse = es2.release_profile(&call, &first).await.unwrap_err();
    assert!(misuse.to_string().contains("1.6/3.3"), "{misuse}");
}

#[tokio::test]
async fn an_smdp_that_is_down_is_unreachable_after_the_attempts() {
    let pki = Pki::new("ES2+ test CA");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let mut config = ClientConfig::new(format!("https://localhost:{port}"), "oytel-operator");
    config.ca_pem = Some(pki.ca_pem.as_bytes().to_vec());
    config.attempts = 2;
    config.backoff = Duration::from_millis(10);
    let es2 = Es2PlusClient::new(&config).expect("a client");
    let down = es2
        .download_order(&new_call_id(), "uk-5g", None)
        .await
        .unwrap_err();
    assert!(matches!(down, Es2Error::Unreachable(_)), "{down:?}");
    assert!(
        Es2PlusClient::new(&ClientConfig::new("http://smdp.example.com", "x")).is_err(),
        "plain HTTP only where allowed"
    );
}

/// The operator's side of notifications: an HTTPS listener that requires the SM-DP+'s
/// client certificate and keeps what it was told.
async fn operator_listener(
    pki: &Pki,
) -> (
    String,
    Arc<Mutex<Vec<DownloadProgressInfo>>>,
    tokio::task::JoinHandle<()>,
) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/gsma/rsp2/es2plus/handleDownloadProgressInfo",
        axum::routing::post(move |axum::Json(info): axum::Json<DownloadProgressInfo>| {
            let kept = kept.clone();
            async move {
                kept.lock().expect("lock").push(info);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let (cert, key) = pki.issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let config = tls::server_config(cert.as_bytes(), key.as_bytes(), Some(pki.ca_pem.as_bytes()))
        .expect("TLS");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        let _ = tls::serve(listener, app, Some(config)).await;
    });
    (format!("https://localhost:{port}"), received, task)
}

#[tokio::test]
async fn the_phone_steps_reach_the_operator_as_download_progress_notifications() {
    let pki = Pki::new("ES2+ test CA");
    let (url, received, listener) = operator_listener(&pki).await;
    let (cert, key) = pki.issue("smdp.sim.test", ExtendedKeyUsagePurpose::ClientAuth);
    let sim = Sim::start(
        &pki,
        NotifyConfig {
            base_url: Some(url),
            identity_pem: Some(format!("{cert}{key}").into_bytes()),
            ca_pem: Some(pki.ca_pem.as_bytes().to_vec()),
            deletion_point: 5,
        },
    )
    .await;
    let es2 = client(&sim, operator(&pki), &pki.ca_pem, 5_000, 3);

    let iccid = es2
        .download_order(&new_call_id(), "uk-5g", None)
        .await
        .expect("downloadOrder")
        .value;
    es2.confirm_order(&new_call_id(), &iccid, None)
        .await
        .expect("confirmOrder");
    let path = |step: &str| format!("/control/profiles/{iccid}/{step}");
    sim.post(
        &path("download"),
        json!({"eid": "89049032123451234512345678901235"}),
    )
    .await;
    sim.post(&path("install"), json!({})).await;
    sim.post(&path("delete"), json!({})).await;
    assert_eq!(sim.state(iccid.as_str()).await, "Unavailable");

    let failing = es2
        .download_order(&new_call_id(), "uk-5g", None)
        .await
        .expect("downloadOrder")
        .value;
    es2.confirm_order(&new_call_id(), &failing, None)
        .await
        .expect("confirmOrder");
    sim.post(
        &format!("/control/profiles/{failing}/fail"),
        json!({"point": 3, "subject_code": "8.1", "reason_code": "6.4", "message": "too many attempts"}),
    )
    .await;
    assert_eq!(sim.state(failing.as_str()).await, "Error");

    let seen = received.lock().expect("lock").clone();
    let points: Vec<(String, NotificationPoint, bool)> = seen
        .iter()
        .map(|n| {
            (
                n.iccid.to_string(),
                NotificationPoint::from_id(n.notification_point_id),
                n.notification_point_status.status.executed(),
            )
        })
        .collect();
    assert_eq!(
        points,
        vec![
            (iccid.to_string(), NotificationPoint::Download, true),
            (iccid.to_string(), NotificationPoint::Installation, true),
            (iccid.to_string(), NotificationPoint::Other(5), true),
            (failing.to_string(), NotificationPoint::Download, false),
        ]
    );
    assert_eq!(
        seen[0].eid.as_deref(),
        Some("89049032123451234512345678901235")
    );
    assert_eq!(seen[0].profile_type, "uk-5g");
    let reason = seen[3]
        .notification_point_status
        .status_code_data
        .clone()
        .expect("codes");
    assert_eq!(reason.reason_code, "6.4");
    listener.abort();
}

/// An SM-DP+ that does not replay a call identifier: the first attempt acts and answers too
/// late; the retry of the same call is refused. That refusal does not mean nothing was
/// reserved, and the client must not say it does.
#[tokio::test]
async fn a_refusal_after_an_attempt_that_may_have_acted_is_an_unknown_outcome() {
    let calls = Arc::new(Mutex::new(0u32));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/gsma/rsp2/es2plus/downloadOrder",
        axum::routing::post(move || {
            let calls = counted.clone();
            async move {
                let first = {
                    let mut n = calls.lock().unwrap();
                    *n += 1;
                    *n == 1
                };
                if first {
                    tokio::time::sleep(Duration::from_millis(1_500)).await;
                    return axum::Json(json!({"header": {"functionExecutionStatus":
                        {"status": "Executed-Success"}}, "iccid": "8999000000000000013"}));
                }
                axum::Json(
                    json!({"header": {"functionExecutionStatus": {"status": "Failed",
                    "statusCodeData": {"subjectCode": "1.6", "reasonCode": "3.3",
                        "message": "functionCallIdentifier already used"}}}}),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = ClientConfig::new(&base, "oytel-operator");
    config.allow_http = true;
    config.timeout = Duration::from_millis(300);
    config.backoff = Duration::from_millis(20);
    let es2 = Es2PlusClient::new(&config).unwrap();
    let err = es2
        .download_order(&new_call_id(), "uk-5g", None)
        .await
        .unwrap_err();
    assert!(err.outcome_unknown(), "{err:?}");
    assert_eq!(err.code(), "SMDP_TIMEOUT");
    assert!(err.to_string().contains("1.6/3.3"), "{err}");
    assert_eq!(*calls.lock().unwrap(), 2, "refused: no third attempt");
    server.abort();
}
