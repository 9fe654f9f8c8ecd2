//! The clock the domain reads: whole seconds, because the API shows whole seconds and a
//! timestamp written must read back equal.

use chrono::{DateTime, SubsecRound, Utc};

/// The current time, to the second (the API shows whole seconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}
