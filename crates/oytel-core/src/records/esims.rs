//! Orders and eSIMs as stored.

use chrono::{DateTime, Utc};

use crate::catalog::Term;
use crate::{Environment, EsimStatus};

/// An order row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// `ord_…`
    pub id: String,
    /// Owner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// The eSIM it paid for.
    pub esim_id: String,
    /// Plan id.
    pub plan_id: String,
    /// The term paid for.
    pub term: Term,
    /// Price of the whole term, cents.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
    /// Customer email.
    pub customer_email: String,
    /// Customer name.
    pub customer_name: String,
    /// Partner's reference.
    pub reference_id: Option<String>,
    /// The balance of the environment right after the charge, cents.
    pub balance_after_cents: i64,
    /// The request that placed it.
    pub request_id: String,
    /// Placed.
    pub created_at: DateTime<Utc>,
}

/// What the status route shows of an eSIM: half the columns of [`EsimRecord`], for the read
/// partners make most often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsimStatusRecord {
    /// `esim_…`
    pub id: String,
    /// ICCID.
    pub iccid: String,
    /// State.
    pub status: EsimStatus,
    /// Plan id.
    pub plan_id: String,
    /// Plan name when ordered.
    pub plan_name: String,
    /// Validity days of the plan when ordered.
    pub validity_days: u32,
    /// The term paid for.
    pub term: Term,
    /// Data allowance, MB.
    pub data_limit_mb: u64,
    /// Data used, MB.
    pub data_used_mb: u64,
    /// Calls made.
    pub calls_made: u64,
    /// SMS sent.
    pub sms_sent: u64,
    /// First activation.
    pub activated_at: Option<DateTime<Utc>>,
    /// End of the term.
    pub expires_at: DateTime<Utc>,
}

impl From<EsimRecord> for EsimStatusRecord {
    fn from(e: EsimRecord) -> EsimStatusRecord {
        EsimStatusRecord {
            id: e.id,
            iccid: e.iccid,
            status: e.status,
            plan_id: e.plan_id,
            plan_name: e.plan_name,
            validity_days: e.validity_days,
            term: e.term,
            data_limit_mb: e.data_limit_mb,
            data_used_mb: e.data_used_mb,
            calls_made: e.calls_made,
            sms_sent: e.sms_sent,
            activated_at: e.activated_at,
            expires_at: e.expires_at,
        }
    }
}

/// An eSIM row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsimRecord {
    /// `esim_…`
    pub id: String,
    /// Owner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// The order that paid for it.
    pub order_id: String,
    /// Plan id.
    pub plan_id: String,
    /// Plan name when ordered.
    pub plan_name: String,
    /// Validity days of the plan when ordered.
    pub validity_days: u32,
    /// The term paid for.
    pub term: Term,
    /// ICCID.
    pub iccid: String,
    /// Mobile number, E.164.
    pub msisdn: String,
    /// SGP.22 matching id.
    pub matching_id: String,
    /// `LPA:1$…` activation code.
    pub activation_code: String,
    /// The secret token in the public QR URL.
    pub qr_token: String,
    /// State.
    pub status: EsimStatus,
    /// Customer email.
    pub customer_email: String,
    /// Customer name.
    pub customer_name: String,
    /// Partner's reference.
    pub reference_id: Option<String>,
    /// Per-eSIM webhook URL.
    pub webhook_url: Option<String>,
    /// Allowance, MB.
    pub data_limit_mb: u64,
    /// Used, MB.
    pub data_used_mb: u64,
    /// Calls made.
    pub calls_made: u64,
    /// SMS sent.
    pub sms_sent: u64,
    /// Activated.
    pub activated_at: Option<DateTime<Utc>>,
    /// Term ends.
    pub expires_at: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Its profile at the SM-DP+, where it came from one (none: a builtin profile).
    pub profile: Option<oytel_types::EsimProfile>,
}

/// Filters of an eSIM list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EsimFilter {
    /// State.
    pub status: Option<EsimStatus>,
    /// Partner's reference.
    pub reference_id: Option<String>,
    /// Customer email, case-insensitive.
    pub customer_email: Option<String>,
}

/// An eSIM's cancellation, with what it gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// The eSIM, cancelled.
    pub esim: EsimRecord,
    /// When it was cancelled.
    pub cancelled_at: DateTime<Utc>,
    /// The partner's reason, if it gave one.
    pub reason: Option<String>,
    /// Its packages after the cancellation, each with its refund (`billing::package_refund`).
    pub packages: Vec<crate::packages::PackageRecord>,
    /// The refund lines of the ledger (`led_…`, live refunds), with the package each is for.
    pub refund_entries: Vec<(String, String)>,
}
