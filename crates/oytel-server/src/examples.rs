//! Examples of the main answers for the spec, built as typed values (so they always fit
//! their schemas) from the shipped catalog and fixed ids, times and numbers (so the spec stays
//! the same from build to build). `openapi::spec` puts each on its component schema.

use chrono::{DateTime, TimeZone, Utc};
use oytel_types::*;

/// Every example, by the name of the schema it illustrates.
pub fn examples() -> Vec<(&'static str, serde_json::Value)> {
    let mut all = first_release();
    all.extend(after_the_sale());
    all
}

fn at(month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, 10, 30, 0)
        .single()
        .unwrap_or_default()
}

fn meta() -> ResponseMeta {
    ResponseMeta {
        request_id: "req_8Xq2LmA0pZ3vN7kQ1sRt".into(),
        environment: Environment::Sandbox,
        timestamp: at(1, 15),
    }
}

/// The answers of the first release's routes.
fn first_release() -> Vec<(&'static str, serde_json::Value)> {
    let (at, expires) = (at(1, 15), at(2, 15));
    let catalog = oytel_core::catalog::Catalog::default_catalog();
    let plan = catalog
        .get("uk-massive-650")
        .map(|p| p.to_wire(&catalog.currency, Environment::Sandbox));
    let esim_plan = EsimPlan {
        id: "uk-massive-650".into(),
        name: "UK Massive 650".into(),
        data_allowance: "650GB".into(),
        validity_days: 30,
        term_months: 1,
    };
    let meta = meta();
    let code = "LPA:1$smdp.oytel.online$QX7TZ-8H2LM-4KD9P-R1VYC";
    let qr = "https://api.oytel.online/qr/Y3k9TqP0bV7sLmN2xW4cR8dF6gH1jK5a.png";
    let provisioned = ProvisionResponse {
        success: true,
        order_id: "ord_5Hn2Kp8Qr1Vx7Zc3Wm9B".into(),
        esim_id: "esim_123456".into(),
        iccid: "8944700902485622493".into(),
        qr_code_url: qr.into(),
        activation_code: code.into(),
        mobile_number: "+447123456789".into(),
        expires_at: expires,
        status: EsimStatus::Provisioned,
        reference_id: Some("order-123".into()),
        esim: ProvisionedEsim {
            esim_id: "esim_123456".into(),
            iccid: "8944700902485622493".into(),
            qr_code_url: qr.into(),
            activation_code: code.into(),
            mobile_number: "+447123456789".into(),
            status: EsimStatus::Provisioned,
            expires_at: expires,
            plan: esim_plan.clone(),
            network_info: NetworkInfo {
                operator: "Oytel Mobile".into(),
                apn: "oytel".into(),
                network: "5G".into(),
            },
            activation_instructions: ActivationInstructions {
                ios: vec![
                    "Open Settings > Mobile Data > Add eSIM".into(),
                    "Scan the QR code".into(),
                ],
                android: vec![
                    "Open Settings > Network & internet > SIMs > Add eSIM".into(),
                    "Scan the QR code".into(),
                ],
                manual: vec![
                    "Enter the SM-DP+ address and activation code shown after `LPA:1$`".into(),
                ],
            },
        },
        billing: Billing {
            cost_usd: Amount::from_cents(2995),
            cost_cents: 2995,
            currency: "USD".into(),
            remaining_balance: Amount::from_cents(10_000),
            remaining_balance_cents: 10_000,
            environment: Environment::Sandbox,
        },
        meta: meta.clone(),
    };
    let status = StatusResponse {
        success: true,
        esim_id: "esim_123456".into(),
        status: EsimStatus::Active,
        usage: Usage {
            data_used_mb: 1024,
            data_limit_mb: 650_000,
            calls_made: 45,
            sms_sent: 12,
        },
        expires_at: expires,
        esim: EsimStatusDetails {
            esim_id: "esim_123456".into(),
            iccid: "8944700902485622493".into(),
            status: EsimStatus::Active,
            plan: esim_plan,
            activation: Activation {
                activated: true,
                activated_at: Some(at),
            },
            usage: Some(UsageDetails {
                used_mb: 1024,
                total_mb: 650_000,
                remaining_mb: 648_976,
                usage_percentage: 0.15,
                calls_made: 45,
                sms_sent: 12,
            }),
            connection: Some(Connection {
                status: "connected".into(),
                current_network: None,
            }),
            expires_at: expires,
        },
        meta,
    };
    let error = ErrorBody {
        success: false,
        error: "plan `nope` does not exist".into(),
        code: ErrorCode::PlanNotFound,
        request_id: Some("req_8Xq2LmA0pZ3vN7kQ1sRt".into()),
        details: Some(ErrorDetails {
            field: Some("plan_id".into()),
            ..ErrorDetails::default()
        }),
    };
    let event = WebhookEvent {
        id: "evt_27UH4WbU6Z5A5EzD8u03".into(),
        event: EventType::EsimProvisioned,
        timestamp: at,
        data: WebhookEventData {
            esim_id: "esim_123456".into(),
            customer_email: "user@example.com".into(),
            plan_id: "uk-massive-650".into(),
            iccid: Some("8944700902485622493".into()),
            reference_id: Some("order-123".into()),
            status: Some(EsimStatus::Provisioned),
            threshold_percent: None,
            data_used_mb: None,
            data_limit_mb: None,
            topup: None,
            profile: None,
        },
    };
    let mut out = vec![
        ("ProvisionResponse", serde_json::to_value(provisioned)),
        ("StatusResponse", serde_json::to_value(status)),
        ("ErrorBody", serde_json::to_value(error)),
        ("WebhookEvent", serde_json::to_value(event)),
    ];
    if let Some(plan) = plan {
        let plans = PlansResponse {
            success: true,
            meta: PlansMeta {
                total: 1,
                currency: "USD".into(),
                environment: Environment::Sandbox,
            },
            plans: vec![plan],
        };
        out.push(("PlansResponse", serde_json::to_value(plans)));
    }
    out.into_iter()
        .filter_map(|(name, value)| value.ok().map(|v| (name, v)))
        .collect()
}

/// The answers of the after-sale routes: packages, top-ups, a cancellation.
fn after_the_sale() -> Vec<(&'static str, serde_json::Value)> {
    let catalog = oytel_core::catalog::Catalog::default_catalog();
    let offers = TopUpOffersResponse {
        success: true,
        esim_id: "esim_123456".into(),
        topups: oytel_core::packages::offers(&catalog, "eu-roam-50")
            .iter()
            .map(|o| o.to_wire(&catalog.currency))
            .collect(),
    };
    let package = |position: u32, state, data_mb: u64, cents: i64| Package {
        package_id: format!("pkg_{position}Hn2Kp8Qr1Vx7Zc3Wm9"),
        position,
        kind: if position == 1 {
            PackageKind::Plan
        } else {
            PackageKind::Renewal
        },
        state,
        plan_id: "eu-roam-50".into(),
        term_months: 1,
        data_allowance_mb: data_mb,
        data_allowance: oytel_core::catalog::format_allowance(data_mb),
        data_used_mb: 0,
        data_remaining_mb: data_mb,
        price: Amount::from_cents(cents),
        price_cents: cents,
        currency: "USD".into(),
        order_id: (position == 1).then(|| "ord_5Hn2Kp8Qr1Vx7Zc3Wm9B".into()),
        purchase_ids: vec![format!("top_{position}Qw8Er5Ty2Ui9Op3As6D")],
        starts_at: (state != PackageState::Queued).then(|| at(1, 15)),
        ends_at: (state != PackageState::Queued).then(|| at(2, 15)),
        activated_at: None,
        ended_at: None,
        refunded_cents: 0,
        created_at: at(1, 15),
    };
    let first = package(1, PackageState::Active, 55_000, 2495 + 899);
    let queued = package(2, PackageState::Queued, 50_000, 2495);
    let packages = PackagesResponse {
        success: true,
        esim_id: "esim_123456".into(),
        status: EsimStatus::Provisioned,
        packages: vec![first.clone(), queued.clone()],
    };
    let topped_up = TopUpResponse {
        success: true,
        purchase: TopUpPurchase {
            purchase_id: "top_1Qw8Er5Ty2Ui9Op3As6D".into(),
            esim_id: "esim_123456".into(),
            topup_id: "eu-boost-5".into(),
            kind: TopUpKind::Addon,
            package_id: first.package_id.clone(),
            data_allowance_mb: 5_000,
            term_months: None,
            created_at: at(1, 15),
        },
        package: first.clone(),
        billing: Billing {
            cost_usd: Amount::from_cents(899),
            cost_cents: 899,
            currency: "USD".into(),
            remaining_balance: Amount::from_cents(10_000),
            remaining_balance_cents: 10_000,
            environment: Environment::Sandbox,
        },
        meta: meta(),
    };
    let refunded = |p: &Package| PackageRefund {
        package_id: p.package_id.clone(),
        state: PackageState::Refunded,
        amount: p.price,
        amount_cents: p.price_cents,
        transaction_ids: Vec::new(),
        explanation: oytel_core::billing::RefundReason::Unused.explanation(),
    };
    let total = first.price_cents + queued.price_cents;
    let cancelled = CancelResponse {
        success: true,
        esim_id: "esim_123456".into(),
        status: EsimStatus::Cancelled,
        cancelled_at: at(1, 20),
        reason: Some("trip cancelled".into()),
        refund: RefundInfo {
            refunded: true,
            amount: Amount::from_cents(total),
            amount_cents: total,
            currency: "USD".into(),
            transaction_id: None,
            explanation: "2 of 2 packages refunded in full; see `packages` for each".into(),
            packages: vec![
                refunded(&first),
                PackageRefund {
                    explanation: oytel_core::billing::RefundReason::Queued.explanation(),
                    ..refunded(&queued)
                },
            ],
        },
        meta: meta(),
    };
    [
        ("TopUpOffersResponse", serde_json::to_value(offers)),
        ("PackagesResponse", serde_json::to_value(packages)),
        ("TopUpResponse", serde_json::to_value(topped_up)),
        ("CancelResponse", serde_json::to_value(cancelled)),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.ok().map(|v| (name, v)))
    .collect()
}
