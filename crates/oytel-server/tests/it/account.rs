use crate::helpers::{TestApp, START_BALANCE_CENTS};

#[tokio::test]
async fn account_shows_balance_minimum_and_limits_per_environment() {
    let app = TestApp::spawn().await;
    let (status, live) = app.get(&app.partner.live_key, "/api/v1/account").await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["partner_id"], app.partner.id.as_str());
    assert_eq!(live["name"], "Partner A");
    assert_eq!(live["environment"], "production");
    assert!(live["key_id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(live["balance"]["available_cents"], START_BALANCE_CENTS);
    assert_eq!(live["balance"]["available"], 1000.0);
    assert_eq!(live["balance"]["minimum"], 25.0);
    assert_eq!(live["balance"]["currency"], "USD");
    // Test partners have their own raised limits; the account shows what applies.
    let raised = oytel_server::testing::RAISED_LIMITS;
    assert_eq!(
        live["limits"]["provision_per_hour"],
        raised.provision_per_hour.unwrap()
    );
    assert_eq!(
        live["limits"]["status_per_hour"],
        raised.status_per_hour.unwrap()
    );
    assert_eq!(
        live["limits"]["burst_per_second"],
        raised.burst_per_second.unwrap()
    );

    let (_, sandbox) = app.get(&app.partner.sandbox_key, "/api/v1/account").await;
    assert_eq!(sandbox["environment"], "sandbox");
    assert_eq!(sandbox["balance"]["available"], 100.0);
    assert_eq!(sandbox["balance"]["minimum"], 0.0);
    assert_ne!(sandbox["key_id"], live["key_id"]);
    app.stop().await;
}
