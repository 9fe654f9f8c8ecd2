//! The records the domain reads and writes through the storage port: plain data, one file
//! per area, re-exported here and by [`ports`](crate::ports).

mod accounts;
mod esims;
mod webhooks;

pub use accounts::{
    ApiKeyInfo, KeyOwner, LedgerEntry, LedgerFilter, NewApiKey, Partner, PartnerSummary,
};
pub use esims::{Cancellation, EsimFilter, EsimRecord, EsimStatusRecord, OrderRecord};
pub use webhooks::{
    AttemptOutcome, AttemptRecord, AttemptResult, ClaimLimits, DueDelivery, EndpointRecord,
    EventRecord, Figures, SigningSecret,
};
