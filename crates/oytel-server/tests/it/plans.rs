use crate::helpers::{assert_error, TestApp};

#[tokio::test]
async fn lists_the_catalog_with_documented_and_sdk_fields() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get(&app.partner.sandbox_key, "/api/v1/plans").await;
    assert_eq!(status, 200, "{body}");
    let plans = body["plans"].as_array().unwrap();
    assert!(plans.len() >= 12);
    assert_eq!(body["meta"]["total"], plans.len());
    let uk = plans.iter().find(|p| p["id"] == "uk-massive-650").unwrap();
    // The documented shape.
    assert_eq!(uk["name"], "UK Massive 650");
    assert_eq!(uk["pricing"]["1_month"], 29.95);
    assert_eq!(uk["pricing"]["3_months"], 28.46);
    assert_eq!(uk["pricing"]["6_months"], 26.96);
    assert_eq!(uk["pricing"]["12_months"], 26.36);
    assert_eq!(uk["features"]["uk_data"], "650GB");
    assert_eq!(uk["features"]["roaming_data"], "35GB");
    assert_eq!(uk["features"]["validity_days"], 30);
    // What the Python SDK reads.
    assert_eq!(uk["pricing"]["base_price"], 29.95);
    assert!(uk["coverage"].as_str().unwrap().contains("United Kingdom"));
    assert_eq!(uk["data_allowance"], "650GB");
    assert_eq!(uk["validity_days"], 30);
    assert_eq!(uk["environment"], "sandbox");
    assert!(plans.iter().any(|p| p["id"] == "eu-roam-50"));

    let (_, live) = app.get(&app.partner.live_key, "/api/v1/plans").await;
    assert_eq!(live["plans"][0]["environment"], "production");
    app.stop().await;
}

#[tokio::test]
async fn filters_by_country_and_region() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let (_, us) = app.get(key, "/api/v1/plans?country=us").await;
    let ids: Vec<_> = us["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"usa-explorer-30"));
    assert!(!ids.contains(&"uk-lite-10"));
    let (_, europe) = app.get(key, "/api/v1/plans?region=europe").await;
    assert!(europe["plans"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["region"] == "europe"));
    let (_, none) = app.get(key, "/api/v1/plans?country=ZZ").await;
    assert_eq!(none["plans"].as_array().unwrap().len(), 0);
    let (status, body) = app.get(key, "/api/v1/plans?colour=red").await;
    assert_error(status, &body, 400, "INVALID_QUERY");
    let (status, body) = app.get(key, "/api/v1/plans?country=GB&country=US").await;
    assert_error(status, &body, 400, "INVALID_QUERY");
    app.stop().await;
}

#[tokio::test]
async fn one_plan_and_unknown_plans() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let (status, body) = app.get(key, "/api/v1/plans/eu-roam-50").await;
    assert_eq!(status, 200);
    assert_eq!(body["plan"]["id"], "eu-roam-50");
    let (status, body) = app.get(key, "/api/v1/plans/nope").await;
    assert_error(status, &body, 404, "PLAN_NOT_FOUND");
    app.stop().await;
}

#[tokio::test]
async fn plans_are_cacheable_with_etags() {
    let app = TestApp::spawn().await;
    let get = |etag: Option<String>| {
        let mut request = app
            .client
            .get(app.url("/api/v1/plans"))
            .header("X-API-Key", &app.partner.sandbox_key);
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        request.send()
    };
    let first = get(None).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "private, max-age=300");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with("W/\"") && etag.len() > 10,
        "a weak tag: {etag}"
    );
    let again = get(Some(etag.clone())).await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let stale = get(Some("\"something-else\"".into())).await.unwrap();
    assert_eq!(stale.status(), 200);
    // A filtered list is another resource with another tag.
    let filtered = app
        .client
        .get(app.url("/api/v1/plans?region=uk"))
        .header("X-API-Key", &app.partner.sandbox_key)
        .send()
        .await
        .unwrap();
    assert_ne!(filtered.headers()["etag"].to_str().unwrap(), etag);
    app.stop().await;
}

/// The API documentation's base URL is `…/v1`: `/v1/…` is the same API as `/api/v1/…`, with
/// the same answers, errors and methods.
#[tokio::test]
async fn v1_paths_are_the_same_api() {
    let app = crate::helpers::TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let (status, short) = app.get(key, "/v1/plans?region=uk").await;
    assert_eq!(status, 200);
    let (_, long) = app.get(key, "/api/v1/plans?region=uk").await;
    assert_eq!(short["data"], long["data"]);
    let (status, p) = app
        .post(
            key,
            "/v1/esim/provision",
            &crate::helpers::order("eu-roam-50"),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let (status, s) = app
        .get(
            key,
            &format!("/v1/esim/{}/status", p["esim_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!((status, s["status"].as_str()), (200, Some("provisioned")));
    let (status, r) = app.get(key, "/v1/nothing-here").await;
    crate::helpers::assert_error(status, &r, 404, "NOT_FOUND");
    let deleted = app
        .client
        .delete(app.url("/v1/plans"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 405);
    app.stop().await;
}

#[tokio::test]
async fn large_answers_are_compressed_as_the_client_asks_and_small_ones_are_not() {
    use std::io::Read as _;
    let app = TestApp::spawn().await;
    // A client that shows the bytes as sent (whatever features reqwest is built with here).
    let raw = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    let get = |path: &str, encoding: Option<&str>, etag: Option<&str>| {
        let mut request = raw
            .get(app.url(path))
            .header("X-API-Key", &app.partner.sandbox_key);
        if let Some(encoding) = encoding {
            request = request.header("Accept-Encoding", encoding);
        }
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        request.send()
    };
    let plain = get("/api/v1/plans", None, None).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    let plain = plain.bytes().await.unwrap();
    assert!(
        plain.len() > 4096,
        "the plans answer is large: {} bytes",
        plain.len()
    );

    let gzip = get("/api/v1/plans", Some("gzip"), None).await.unwrap();
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    assert!(
        gzip.headers()["vary"]
            .to_str()
            .unwrap()
            .to_lowercase()
            .contains("accept-encoding")
            || gzip.headers().get_all("vary").iter().any(|v| v
                .to_str()
                .unwrap()
                .to_lowercase()
                .contains("accept-encoding"))
    );
    assert_eq!(
        gzip.headers()["etag"].to_str().unwrap(),
        etag,
        "one tag for both forms"
    );
    let packed = gzip.bytes().await.unwrap();
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain, "the same answer");
    println!("plans: {} bytes plain, {} gzip", plain.len(), packed.len());
    assert!(
        packed.len() * 3 < plain.len(),
        "{} of {} bytes",
        packed.len(),
        plain.len()
    );

    let brotli = get("/api/v1/plans", Some("gzip;q=0.5, br"), None)
        .await
        .unwrap();
    assert_eq!(brotli.headers()["content-encoding"], "br");
    let packed = brotli.bytes().await.unwrap();
    let mut unpacked = Vec::new();
    brotli::Decompressor::new(&packed[..], 4096)
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain);

    // Revalidation works the same compressed: a 304 without a body.
    let cached = get("/api/v1/plans", Some("gzip"), Some(&etag))
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert!(cached.bytes().await.unwrap().is_empty());

    // A small answer is sent as it is.
    let account = get("/api/v1/account", Some("gzip, br"), None)
        .await
        .unwrap();
    assert_eq!(account.status(), 200);
    assert!(account.headers().get("content-encoding").is_none());
    app.stop().await;
}
