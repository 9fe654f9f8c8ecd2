//! Row types shared by the adapters' queries, and their conversion to the core's records.

use chrono::{DateTime, Utc};
use oytel_core::ports::{
    ApiKeyInfo, EsimRecord, LedgerEntry, OrderRecord, Partner, Sequenced, StoreError,
};
use oytel_core::{Environment, EsimStatus};

pub(crate) fn environment(text: &str) -> Result<Environment, StoreError> {
    text.parse()
        .map_err(|e: String| StoreError::Other(format!("corrupt row: {e}")))
}

fn status(text: &str) -> Result<EsimStatus, StoreError> {
    text.parse()
        .map_err(|e: String| StoreError::Other(format!("corrupt row: {e}")))
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
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
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LedgerRow {
    pub id: String,
    pub partner_id: String,
    pub amount_cents: i64,
    pub balance_after_cents: i64,
    pub kind: String,
    pub order_id: Option<String>,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

impl From<LedgerRow> for LedgerEntry {
    fn from(r: LedgerRow) -> LedgerEntry {
        LedgerEntry {
            id: r.id,
            partner_id: r.partner_id,
            amount_cents: r.amount_cents,
            balance_after_cents: r.balance_after_cents,
            kind: r.kind,
            order_id: r.order_id,
            description: r.description,
            created_at: r.created_at,
        }
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
            term_months: u32::try_from(r.term_months).unwrap_or_default(),
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
    pub id: String,
    pub partner_id: String,
    pub environment: String,
    pub order_id: String,
    pub plan_id: String,
    pub plan_name: String,
    pub validity_days: i64,
    pub term_months: i64,
    pub iccid: String,
    pub msisdn: String,
    pub matching_id: String,
    pub activation_code: String,
    pub qr_token: String,
    pub status: String,
    pub customer_email: String,
    pub customer_name: String,
    pub reference_id: Option<String>,
    pub webhook_url: Option<String>,
    pub data_limit_mb: i64,
    pub data_used_mb: i64,
    pub calls_made: i64,
    pub sms_sent: i64,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<EsimRow> for EsimRecord {
    type Error = StoreError;
    fn try_from(r: EsimRow) -> Result<EsimRecord, StoreError> {
        Ok(EsimRecord {
            id: r.id,
            partner_id: r.partner_id,
            environment: environment(&r.environment)?,
            order_id: r.order_id,
            plan_id: r.plan_id,
            plan_name: r.plan_name,
            validity_days: u32::try_from(r.validity_days).unwrap_or_default(),
            term_months: u32::try_from(r.term_months).unwrap_or_default(),
            iccid: r.iccid,
            msisdn: r.msisdn,
            matching_id: r.matching_id,
            activation_code: r.activation_code,
            qr_token: r.qr_token,
            status: status(&r.status)?,
            customer_email: r.customer_email,
            customer_name: r.customer_name,
            reference_id: r.reference_id,
            webhook_url: r.webhook_url,
            data_limit_mb: unsigned(r.data_limit_mb),
            data_used_mb: unsigned(r.data_used_mb),
            calls_made: unsigned(r.calls_made),
            sms_sent: unsigned(r.sms_sent),
            activated_at: r.activated_at,
            expires_at: r.expires_at,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct IdempotencyRow {
    pub request_hash: String,
    pub order_id: Option<String>,
    pub locked_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
