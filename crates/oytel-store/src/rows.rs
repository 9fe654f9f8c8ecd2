//! Row types shared by the adapters' queries, and their conversion to the core's records.

use chrono::{DateTime, Utc};
use oytel_core::billing::{LedgerKind, RefundReason};
use oytel_core::catalog::Term;
use oytel_core::ports::{
    ApiKeyInfo, EsimRecord, EsimStatusRecord, LedgerEntry, OrderRecord, PackageRecord, Partner,
    Sequenced, StoreError, TopUpRecord,
};
use oytel_core::{Environment, EsimStatus};
use oytel_types::{PackageKind, PackageState, TopUpKind};

pub(crate) fn environment(text: &str) -> Result<Environment, StoreError> {
    text.parse()
        .map_err(|e: String| StoreError::Other(format!("corrupt row: {e}")))
}

fn status(text: &str) -> Result<EsimStatus, StoreError> {
    text.parse()
        .map_err(|e: String| StoreError::Other(format!("corrupt row: {e}")))
}

/// A stored number as the record's type; a value out of its range (a negative count, a term
/// that is not 1, 3, 6 or 12 months) is a corrupt row, never read as a default.
fn number<T: TryFrom<i64>>(field: &str, value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Other(format!("corrupt row: {field} = {value}")))
}

/// A stored term.
fn term(value: i64) -> Result<Term, StoreError> {
    u32::try_from(value)
        .ok()
        .and_then(Term::from_months)
        .ok_or_else(|| StoreError::Other(format!("corrupt row: term_months = {value}")))
}

/// A row with its insertion sequence number (what list cursors point at).
pub(crate) trait Sequential {
    fn seq(&self) -> i64;
}

/// A row converted to its record, with its sequence number.
pub(crate) fn sequenced<R: Sequential, T: TryFrom<R, Error = StoreError>>(
    row: R,
) -> Result<Sequenced<T>, StoreError> {
    let seq = row.seq();
    Ok(Sequenced {
        seq,
        row: T::try_from(row)?,
    })
}

impl Sequential for OrderRow {
    fn seq(&self) -> i64 {
        self.seq
    }
}

impl Sequential for EsimRow {
    fn seq(&self) -> i64 {
        self.seq
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PartnerRow {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<PartnerRow> for Partner {
    fn from(r: PartnerRow) -> Partner {
        Partner {
            id: r.id,
            name: r.name,
            email: r.email,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub partner_id: String,
    pub environment: String,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKeyInfo {
    type Error = StoreError;
    fn try_from(r: ApiKeyRow) -> Result<ApiKeyInfo, StoreError> {
        Ok(ApiKeyInfo {
            id: r.id,
            partner_id: r.partner_id,
            environment: environment(&r.environment)?,
            hint: r.hint,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            expires_at: r.expires_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LedgerRow {
    pub seq: i64,
    pub id: String,
    pub partner_id: String,
    pub amount_cents: i64,
    pub balance_after_cents: i64,
    pub kind: String,
    pub order_id: Option<String>,
    pub purchase_id: Option<String>,
    pub esim_id: Option<String>,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

impl Sequential for LedgerRow {
    fn seq(&self) -> i64 {
        self.seq
    }
}

impl TryFrom<LedgerRow> for LedgerEntry {
    type Error = StoreError;
    fn try_from(r: LedgerRow) -> Result<LedgerEntry, StoreError> {
        Ok(LedgerEntry {
            id: r.id,
            partner_id: r.partner_id,
            amount_cents: r.amount_cents,
            balance_after_cents: r.balance_after_cents,
            kind: LedgerKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Other(format!("corrupt row: kind = {}", r.kind)))?,
            order_id: r.order_id,
            purchase_id: r.purchase_id,
            esim_id: r.esim_id,
            description: r.description,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OrderRow {
    pub seq: i64,
    pub id: String,
    pub partner_id: String,
    pub environment: String,
    pub esim_id: String,
    pub plan_id: String,
    pub term_months: i64,
    pub amount_cents: i64,
    pub currency: String,
    pub customer_email: String,
    pub customer_name: String,
    pub reference_id: Option<String>,
    pub balance_after_cents: i64,
    pub request_id: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<OrderRow> for OrderRecord {
    type Error = StoreError;
    fn try_from(r: OrderRow) -> Result<OrderRecord, StoreError> {
        Ok(OrderRecord {
            id: r.id,
            partner_id: r.partner_id,
            environment: environment(&r.environment)?,
            esim_id: r.esim_id,
            plan_id: r.plan_id,
            term: term(r.term_months)?,
            amount_cents: r.amount_cents,
            currency: r.currency,
            customer_email: r.customer_email,
            customer_name: r.customer_name,
            reference_id: r.reference_id,
            balance_after_cents: r.balance_after_cents,
            request_id: r.request_id,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EsimRow {
    pub seq: i64,
    /// The columns the status read takes too.
    #[sqlx(flatten)]
    pub status: EsimStatusRow,
    pub partner_id: String,
    pub environment: String,
    pub order_id: String,
    pub msisdn: String,
    pub matching_id: String,
    pub activation_code: String,
    pub qr_token: String,
    pub customer_email: String,
    pub customer_name: String,
    pub reference_id: Option<String>,
    pub webhook_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub profile_state: Option<String>,
    pub eid: Option<String>,
    pub profile_updated_at: Option<DateTime<Utc>>,
    pub profile_result: Option<String>,
}

impl TryFrom<EsimRow> for EsimRecord {
    type Error = StoreError;
    fn try_from(r: EsimRow) -> Result<EsimRecord, StoreError> {
        let s = EsimStatusRecord::try_from(r.status)?;
        Ok(EsimRecord {
            id: s.id,
            partner_id: r.partner_id,
            environment: environment(&r.environment)?,
            order_id: r.order_id,
            plan_id: s.plan_id,
            plan_name: s.plan_name,
            validity_days: s.validity_days,
            term: s.term,
            iccid: s.iccid,
            msisdn: r.msisdn,
            matching_id: r.matching_id,
            activation_code: r.activation_code,
            qr_token: r.qr_token,
            status: s.status,
            customer_email: r.customer_email,
            customer_name: r.customer_name,
            reference_id: r.reference_id,
            webhook_url: r.webhook_url,
            data_limit_mb: s.data_limit_mb,
            data_used_mb: s.data_used_mb,
            calls_made: s.calls_made,
            sms_sent: s.sms_sent,
            activated_at: s.activated_at,
            expires_at: s.expires_at,
            created_at: r.created_at,
            profile: r
                .profile_state
                .map(|state| {
                    Ok::<_, StoreError>(oytel_types::EsimProfile {
                        state: oytel_types::ProfileState::parse(&state).ok_or_else(|| {
                            StoreError::Other(format!("corrupt row: profile_state = {state}"))
                        })?,
                        eid: r.eid,
                        updated_at: r.profile_updated_at,
                        last_result: r.profile_result,
                    })
                })
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EsimStatusRow {
    pub id: String,
    pub iccid: String,
    pub status: String,
    pub plan_id: String,
    pub plan_name: String,
    pub validity_days: i64,
    pub term_months: i64,
    pub data_limit_mb: i64,
    pub data_used_mb: i64,
    pub calls_made: i64,
    pub sms_sent: i64,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

impl TryFrom<EsimStatusRow> for EsimStatusRecord {
    type Error = StoreError;
    fn try_from(r: EsimStatusRow) -> Result<EsimStatusRecord, StoreError> {
        Ok(EsimStatusRecord {
            id: r.id,
            iccid: r.iccid,
            status: status(&r.status)?,
            plan_id: r.plan_id,
            plan_name: r.plan_name,
            validity_days: number("validity_days", r.validity_days)?,
            term: term(r.term_months)?,
            data_limit_mb: number("data_limit_mb", r.data_limit_mb)?,
            data_used_mb: number("data_used_mb", r.data_used_mb)?,
            calls_made: number("calls_made", r.calls_made)?,
            sms_sent: number("sms_sent", r.sms_sent)?,
            activated_at: r.activated_at,
            expires_at: r.expires_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct IdempotencyRow {
    pub operation: String,
    pub request_hash: String,
    pub resource_kind: Option<String>,
    pub resource_id: Option<String>,
    pub order_id: Option<String>,
    pub locked_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Event types as stored: wire names separated by commas; empty means all.
pub(crate) fn event_types_text(types: &[oytel_types::EventType]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn event_types(text: &str) -> Vec<oytel_types::EventType> {
    text.split(',')
        .filter_map(oytel_types::EventType::parse)
        .collect()
}

fn event_type(text: &str) -> Result<oytel_types::EventType, StoreError> {
    oytel_types::EventType::parse(text)
        .ok_or_else(|| StoreError::Other(format!("corrupt row: event type `{text}`")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    pub id: String,
    pub partner_id: String,
    pub environment: String,
    pub esim_id: Option<String>,
    pub event_type: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub traceparent: Option<String>,
}

impl TryFrom<EventRow> for oytel_core::ports::EventRecord {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(oytel_core::ports::EventRecord {
            id: r.id,
            partner_id: r.partner_id,
            environment: environment(&r.environment)?,
            esim_id: r.esim_id,
            event_type: event_type(&r.event_type)?,
            payload: r.payload,
            created_at: r.created_at,
            traceparent: r.traceparent,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EndpointRow {
    pub id: String,
    pub partner_id: String,
    pub environment: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<EndpointRow> for oytel_core::ports::EndpointRecord {
    type Error = StoreError;
    fn try_from(r: EndpointRow) -> Result<Self, StoreError> {
        Ok(oytel_core::ports::EndpointRecord {
            id: r.id,
            partner_id: r.partner_id,
            environment: environment(&r.environment)?,
            url: r.url,
            description: r.description,
            event_types: event_types(&r.event_types),
            secret: r.secret,
            previous_secret: r.previous_secret,
            previous_secret_expires_at: r.previous_secret_expires_at,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            failing_since: r.failing_since,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AttemptRow {
    pub seq: i64,
    pub id: String,
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub url: String,
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivery_status: String,
    pub created_at: DateTime<Utc>,
}

impl Sequential for AttemptRow {
    fn seq(&self) -> i64 {
        self.seq
    }
}

impl TryFrom<AttemptRow> for oytel_core::ports::AttemptRecord {
    type Error = StoreError;
    fn try_from(r: AttemptRow) -> Result<Self, StoreError> {
        use oytel_types::DeliveryStatus::*;
        let delivery_status = [Pending, Delivered, Failed, Cancelled]
            .into_iter()
            .find(|s| s.as_str() == r.delivery_status)
            .ok_or_else(|| {
                StoreError::Other(format!("corrupt row: status `{}`", r.delivery_status))
            })?;
        Ok(oytel_core::ports::AttemptRecord {
            id: r.id,
            delivery_id: r.delivery_id,
            event_id: r.event_id,
            event_type: event_type(&r.event_type)?,
            url: r.url,
            attempt: number("attempt", r.attempt)?,
            status_code: r.status_code.and_then(|c| u16::try_from(c).ok()),
            duration_ms: number("duration_ms", r.duration_ms)?,
            error: r.error,
            next_attempt_at: r.next_attempt_at,
            delivery_status,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SecretRow {
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

impl From<SecretRow> for oytel_core::ports::SigningSecret {
    fn from(r: SecretRow) -> Self {
        oytel_core::ports::SigningSecret {
            secret: r.secret,
            previous_secret: r.previous_secret,
            previous_secret_expires_at: r.previous_secret_expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PackageRow {
    pub id: String,
    pub esim_id: String,
    pub position: i64,
    pub kind: String,
    pub order_id: Option<String>,
    pub purchase_id: Option<String>,
    pub plan_id: String,
    pub term_months: i64,
    pub data_mb: i64,
    pub data_used_mb: i64,
    pub price_cents: i64,
    pub state: String,
    pub activated_at: Option<DateTime<Utc>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub refund_reason: Option<String>,
    pub refunded_cents: i64,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<PackageRow> for PackageRecord {
    type Error = StoreError;
    fn try_from(r: PackageRow) -> Result<PackageRecord, StoreError> {
        let corrupt = |what: String| StoreError::Other(format!("corrupt row: {what}"));
        Ok(PackageRecord {
            id: r.id,
            esim_id: r.esim_id,
            position: number("position", r.position)?,
            kind: match r.kind.as_str() {
                "plan" => PackageKind::Plan,
                "renewal" => PackageKind::Renewal,
                other => return Err(corrupt(format!("package kind = {other}"))),
            },
            order_id: r.order_id,
            purchase_id: r.purchase_id,
            plan_id: r.plan_id,
            term: term(r.term_months)?,
            data_mb: number("data_mb", r.data_mb)?,
            data_used_mb: number("data_used_mb", r.data_used_mb)?,
            price_cents: r.price_cents,
            state: PackageState::parse(&r.state)
                .ok_or_else(|| corrupt(format!("package state = {}", r.state)))?,
            activated_at: r.activated_at,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            ended_at: r.ended_at,
            refund_reason: r
                .refund_reason
                .map(|why| {
                    RefundReason::parse(&why)
                        .ok_or_else(|| corrupt(format!("refund_reason = {why}")))
                })
                .transpose()?,
            refunded_cents: r.refunded_cents,
            created_at: r.created_at,
            purchase_ids: Vec::new(),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TopUpRow {
    pub id: String,
    pub partner_id: String,
    pub environment: String,
    pub esim_id: String,
    pub package_id: String,
    pub topup_id: String,
    pub kind: String,
    pub data_mb: i64,
    pub term_months: Option<i64>,
    pub amount_cents: i64,
    pub currency: String,
    pub balance_after_cents: i64,
    pub request_id: String,
    pub created_at: DateTime<Utc>,
}

/// The stored name of a top-up kind.
pub(crate) fn topup_kind_text(kind: TopUpKind) -> &'static str {
    match kind {
        TopUpKind::Addon => "addon",
        TopUpKind::Renewal => "renewal",
    }
}

impl TryFrom<TopUpRow> for TopUpRecord {
    type Error = StoreError;
    fn try_from(r: TopUpRow) -> Result<TopUpRecord, StoreError> {
        Ok(TopUpRecord {
            id: r.id,
            partner_id: r.partner_id,
            environment: environment(&r.environment)?,
            esim_id: r.esim_id,
            package_id: r.package_id,
            topup_id: r.topup_id,
            kind: [TopUpKind::Addon, TopUpKind::Renewal]
                .into_iter()
                .find(|k| topup_kind_text(*k) == r.kind)
                .ok_or_else(|| {
                    StoreError::Other(format!("corrupt row: topup kind = {}", r.kind))
                })?,
            data_mb: number("data_mb", r.data_mb)?,
            term: r.term_months.map(term).transpose()?,
            amount_cents: r.amount_cents,
            currency: r.currency,
            balance_after_cents: r.balance_after_cents,
            request_id: r.request_id,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ReservationRow {
    pub id: String,
    pub partner_id: String,
    pub environment: String,
    pub profile_type: String,
    pub state: String,
    pub iccid: Option<String>,
    pub matching_id: Option<String>,
    pub smdp_address: Option<String>,
    pub esim_id: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub retire: bool,
}

pub(crate) fn reservation_state(
    text: &str,
) -> Result<oytel_core::profiles::ReservationState, StoreError> {
    oytel_core::profiles::ReservationState::parse(text)
        .ok_or_else(|| StoreError::Other(format!("corrupt row: reservation state `{text}`")))
}

impl TryFrom<ReservationRow> for oytel_core::profiles::Reservation {
    type Error = StoreError;
    fn try_from(r: ReservationRow) -> Result<Self, StoreError> {
        Ok(oytel_core::profiles::Reservation {
            id: r.id,
            scope: oytel_core::Scope {
                partner_id: r.partner_id,
                environment: environment(&r.environment)?,
            },
            profile_type: r.profile_type,
            state: reservation_state(&r.state)?,
            iccid: r.iccid,
            matching_id: r.matching_id,
            smdp_address: r.smdp_address,
            esim_id: r.esim_id,
            attempts: number("attempts", r.attempts)?,
            last_error: r.last_error,
            retire: r.retire,
            created_at: r.created_at,
            updated_at: r.updated_at,
            next_attempt_at: r.next_attempt_at,
        })
    }
}
