//! From the core's records to the wire types. The server owns these conversions (the wire
//! crate knows nothing of records, the core nothing of URLs).

use oytel_core::billing::{LedgerKind, SANDBOX_BALANCE};
use oytel_core::catalog::format_allowance;
use oytel_core::ports::{
    AttemptRecord, Cancellation, EndpointRecord, EsimRecord, EsimStatusRecord, LedgerEntry,
    OrderRecord,
};
use oytel_core::provision::Provisioned;
use oytel_types::{
    Activation, ActivationInstructions, Amount, Billing, CancelResponse, Connection,
    DeliveryAttempt, EndpointStatus, Environment, Esim, EsimPlan, EsimStatus, EsimStatusDetails,
    NetworkInfo, Order, PackageRefund, ProvisionResponse, ProvisionedEsim, RefundInfo,
    ResponseMeta, StatusResponse, Transaction, TransactionKind, Usage, UsageDetails,
    WebhookEndpoint,
};

use crate::state::Settings;

/// The public URL of an eSIM's QR code image (`png` or `svg`).
pub fn qr_url(settings: &Settings, esim: &EsimRecord, extension: &str) -> String {
    format!("{}/qr/{}.{extension}", settings.public_url, esim.qr_token)
}

/// The parts of responses built alike from either eSIM record.
trait EsimParts {
    fn plan(&self) -> EsimPlan;
    fn usage(&self) -> Usage;
}

macro_rules! esim_parts {
    ($($record:ty),*) => {$(
        impl EsimParts for $record {
            fn plan(&self) -> EsimPlan {
                EsimPlan {
                    id: self.plan_id.clone(),
                    name: self.plan_name.clone(),
                    data_allowance: format_allowance(self.data_limit_mb),
                    validity_days: self.validity_days,
                    term_months: self.term.months(),
                }
            }

            fn usage(&self) -> Usage {
                Usage {
                    data_used_mb: self.data_used_mb,
                    data_limit_mb: self.data_limit_mb,
                    calls_made: self.calls_made,
                    sms_sent: self.sms_sent,
                }
            }
        }
    )*};
}

esim_parts!(EsimRecord, EsimStatusRecord);

fn usage_details(esim: &EsimStatusRecord) -> UsageDetails {
    // Hundredths of a percent, rounded down, from integers: 0.00 to 100.00.
    let percentage = (esim.data_used_mb.min(esim.data_limit_mb) * 10_000)
        .checked_div(esim.data_limit_mb)
        .map_or(0.0, |hundredths| hundredths as f64 / 100.0);
    UsageDetails {
        used_mb: esim.data_used_mb,
        total_mb: esim.data_limit_mb,
        remaining_mb: esim.data_limit_mb.saturating_sub(esim.data_used_mb),
        usage_percentage: percentage,
        calls_made: esim.calls_made,
        sms_sent: esim.sms_sent,
    }
}

fn network_info() -> NetworkInfo {
    NetworkInfo {
        operator: "Oytel Mobile".into(),
        apn: "oytel".into(),
        network: "5G".into(),
    }
}

fn instructions() -> ActivationInstructions {
    let steps = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    ActivationInstructions {
        ios: steps(&[
            "Open Settings > Mobile Data > Add eSIM",
            "Choose Use QR Code and scan the QR code",
            "Label the plan and choose it for mobile data",
        ]),
        android: steps(&[
            "Open Settings > Network & internet > SIMs > Add eSIM",
            "Scan the QR code",
            "Turn on the new SIM and allow mobile data",
        ]),
        manual: steps(&[
            "Choose to enter the details manually",
            "Enter the SM-DP+ address and activation code shown after `LPA:1$`",
        ]),
    }
}

/// The eSIM as `GET /api/v1/esim/{id}` shows it (taking the record: its strings move).
pub fn esim(settings: &Settings, esim: EsimRecord) -> Esim {
    Esim {
        qr_code_url: qr_url(settings, &esim, "png"),
        qr_code_svg_url: qr_url(settings, &esim, "svg"),
        plan: esim.plan(),
        usage: esim.usage(),
        esim_id: esim.id,
        order_id: esim.order_id,
        iccid: esim.iccid,
        status: esim.status,
        plan_id: esim.plan_id,
        customer_email: esim.customer_email,
        customer_name: esim.customer_name,
        reference_id: esim.reference_id,
        webhook_url: esim.webhook_url,
        mobile_number: esim.msisdn,
        activation_code: esim.activation_code,
        activated_at: esim.activated_at,
        expires_at: esim.expires_at,
        created_at: esim.created_at,
        environment: esim.environment,
        profile: esim.profile,
    }
}

/// The status response of an eSIM (taking the record: its strings move).
pub fn status(esim: EsimStatusRecord, meta: ResponseMeta) -> StatusResponse {
    let connection = (esim.status == EsimStatus::Active).then(|| Connection {
        status: "connected".into(),
        current_network: None,
    });
    StatusResponse {
        success: true,
        esim_id: esim.id.clone(),
        status: esim.status,
        usage: esim.usage(),
        expires_at: esim.expires_at,
        esim: EsimStatusDetails {
            plan: esim.plan(),
            usage: Some(usage_details(&esim)),
            esim_id: esim.id,
            iccid: esim.iccid,
            status: esim.status,
            activation: Activation {
                activated: esim.activated_at.is_some(),
                activated_at: esim.activated_at,
            },
            connection,
            expires_at: esim.expires_at,
        },
        meta,
    }
}

/// An order.
/// A cancellation as its answer: the sum of what its packages gave back, and each package.
pub fn cancellation(c: &Cancellation, currency: &str, meta: ResponseMeta) -> CancelResponse {
    let entries = |package_id: &str| -> Vec<String> {
        c.refund_entries
            .iter()
            .filter(|(p, _)| p == package_id)
            .map(|(_, led)| led.clone())
            .collect()
    };
    let packages: Vec<PackageRefund> = c
        .packages
        .iter()
        .map(|p| PackageRefund {
            package_id: p.id.clone(),
            state: p.state,
            amount: Amount::from_cents(p.refunded_cents),
            amount_cents: p.refunded_cents,
            transaction_ids: entries(&p.id),
            explanation: p
                .refund_reason
                .map(|r| r.explanation())
                .unwrap_or_else(|| "not refunded: the package had ended".into()),
        })
        .collect();
    let total: i64 = packages.iter().map(|p| p.amount_cents).sum();
    let explanation = match packages.as_slice() {
        [only] => only.explanation.clone(),
        all => {
            let refunded = all.iter().filter(|p| p.amount_cents > 0).count();
            format!(
                "{refunded} of {} packages refunded in full; see `packages` for each",
                all.len()
            )
        }
    };
    CancelResponse {
        success: true,
        esim_id: c.esim.id.clone(),
        status: c.esim.status,
        cancelled_at: c.cancelled_at,
        reason: c.reason.clone(),
        refund: RefundInfo {
            refunded: total > 0,
            amount: Amount::from_cents(total),
            amount_cents: total,
            currency: currency.to_owned(),
            transaction_id: c.refund_entries.first().map(|(_, led)| led.clone()),
            explanation,
            packages,
        },
        meta,
    }
}

/// A ledger row as a line of the partner's statement.
pub fn transaction(entry: &LedgerEntry, currency: &str) -> Transaction {
    Transaction {
        transaction_id: entry.id.clone(),
        kind: match entry.kind {
            LedgerKind::Credit => TransactionKind::Credit,
            LedgerKind::Charge => TransactionKind::Charge,
            LedgerKind::Refund => TransactionKind::Refund,
        },
        amount: Amount::from_cents(entry.amount_cents),
        amount_cents: entry.amount_cents,
        balance_after: Amount::from_cents(entry.balance_after_cents),
        balance_after_cents: entry.balance_after_cents,
        currency: currency.to_owned(),
        order_id: entry.order_id.clone(),
        purchase_id: entry.purchase_id.clone(),
        esim_id: entry.esim_id.clone(),
        description: entry.description.clone(),
        created_at: entry.created_at,
    }
}

pub fn order(order: &OrderRecord) -> Order {
    Order {
        order_id: order.id.clone(),
        esim_id: order.esim_id.clone(),
        status: "completed".into(),
        plan_id: order.plan_id.clone(),
        term_months: order.term.months(),
        amount_usd: Amount::from_cents(order.amount_cents),
        amount_cents: order.amount_cents,
        currency: order.currency.clone(),
        customer_email: order.customer_email.clone(),
        customer_name: order.customer_name.clone(),
        reference_id: order.reference_id.clone(),
        environment: order.environment,
        created_at: order.created_at,
    }
}

/// The answer to a provisioning request. A replay is built from the same rows as the
/// original, so it is the same response: its `meta` names the original request.
pub fn provisioned(settings: &Settings, done: &Provisioned) -> ProvisionResponse {
    let (order, record) = (&done.order, &done.esim);
    let qr_code_url = qr_url(settings, record, "png");
    let remaining = match order.environment {
        Environment::Sandbox => SANDBOX_BALANCE.cents(),
        Environment::Production => order.balance_after_cents,
    };
    ProvisionResponse {
        success: true,
        order_id: order.id.clone(),
        esim_id: record.id.clone(),
        iccid: record.iccid.clone(),
        qr_code_url: qr_code_url.clone(),
        activation_code: record.activation_code.clone(),
        mobile_number: record.msisdn.clone(),
        expires_at: record.expires_at,
        status: record.status,
        reference_id: order.reference_id.clone(),
        esim: ProvisionedEsim {
            esim_id: record.id.clone(),
            iccid: record.iccid.clone(),
            qr_code_url,
            activation_code: record.activation_code.clone(),
            mobile_number: record.msisdn.clone(),
            status: record.status,
            expires_at: record.expires_at,
            plan: record.plan(),
            network_info: network_info(),
            activation_instructions: instructions(),
        },
        billing: Billing {
            cost_usd: Amount::from_cents(order.amount_cents),
            cost_cents: order.amount_cents,
            currency: order.currency.clone(),
            remaining_balance: Amount::from_cents(remaining),
            remaining_balance_cents: remaining,
            environment: order.environment,
        },
        meta: ResponseMeta {
            request_id: order.request_id.clone(),
            environment: order.environment,
            timestamp: order.created_at,
        },
    }
}

/// A webhook endpoint, without its secrets.
pub fn endpoint(endpoint: &EndpointRecord) -> WebhookEndpoint {
    WebhookEndpoint {
        id: endpoint.id.clone(),
        url: endpoint.url.clone(),
        description: endpoint.description.clone(),
        events: endpoint.event_types.clone(),
        status: if endpoint.enabled {
            EndpointStatus::Enabled
        } else {
            EndpointStatus::Disabled
        },
        disabled_reason: endpoint.disabled_reason.clone(),
        previous_secret_expires_at: endpoint.previous_secret_expires_at,
        environment: endpoint.environment,
        created_at: endpoint.created_at,
        updated_at: endpoint.updated_at,
    }
}

/// A delivery attempt.
pub fn attempt(attempt: &AttemptRecord) -> DeliveryAttempt {
    DeliveryAttempt {
        id: attempt.id.clone(),
        delivery_id: attempt.delivery_id.clone(),
        event_id: attempt.event_id.clone(),
        event: attempt.event_type,
        url: attempt.url.clone(),
        attempt: attempt.attempt,
        status_code: attempt.status_code,
        duration_ms: attempt.duration_ms,
        error: attempt.error.clone(),
        next_attempt_at: attempt.next_attempt_at,
        delivery_status: attempt.delivery_status,
        created_at: attempt.created_at,
    }
}
