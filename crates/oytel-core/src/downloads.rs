//! What the SM-DP+ reports about a profile's download (ES2+ `handleDownloadProgressInfo`),
//! and what each report changes: the eSIM's `profile`, its state, and the events partners
//! get. A report is recorded once per call identifier; a repeat changes nothing.
//!
//! | notification point | status | the profile | the eSIM | event |
//! |---|---|---|---|---|
//! | 1 eligibility check | failed | `error`, with the reason | — | `esim.installation_failed` |
//! | 2 confirmation failure | any | `error`, with the reason | — | `esim.installation_failed` |
//! | 3 download | success | `downloaded`, with the EID | — | `esim.profile_downloaded` |
//! | 3 download, 4 installation | failed | `error`, with the reason | — | `esim.installation_failed` |
//! | 4 installation | success | `installed` | `provisioned` → `active` | `esim.activated` |
//! | the deletion point (configured; 5 by default) | success | `deleted` | — | — |
//! | any other point, or a success at 1 | — | unchanged (the report is kept) | — | — |
//!
//! A report about a profile that is `deleted` changes nothing more, nor one older than the
//! last report applied (the SM-DP+ may deliver them out of order).

use chrono::{DateTime, Utc};
use oytel_types::{EsimProfile, EventType, ProfileState};

/// The notification point where the SM-DP+ reports a deletion, unless configured.
pub const DEFAULT_DELETION_POINT: u32 = 5;

/// A report from the SM-DP+.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileNotice {
    /// The SM-DP+'s `functionRequesterIdentifier`.
    pub requester_id: String,
    /// Its `functionCallIdentifier`: a report is applied once per identifier.
    pub call_id: String,
    /// The profile.
    pub iccid: String,
    /// The phone's eUICC, where named.
    pub eid: Option<String>,
    /// `notificationPointId`.
    pub point: u32,
    /// Whether the point went well (`Executed-Success` or `Executed-WithWarning`).
    pub success: bool,
    /// The result in words: `success`, or the failure's codes described.
    pub result: String,
    /// When it happened, by the SM-DP+'s clock.
    pub happened_at: DateTime<Utc>,
    /// When we received it.
    pub received_at: DateTime<Utc>,
    /// What it changes ([`effect`]).
    pub effect: Effect,
}

/// What a report changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    /// The profile's new state; none: nothing changes.
    pub state: Option<ProfileState>,
    /// The event partners get (besides `esim.activated`, which the activation sends).
    pub event: Option<EventType>,
    /// Whether a `provisioned` eSIM becomes `active`.
    pub activates: bool,
}

/// The profile of a new eSIM whose profile an SM-DP+ released for it.
pub fn released() -> EsimProfile {
    EsimProfile {
        state: ProfileState::Released,
        eid: None,
        updated_at: None,
        last_result: None,
    }
}

/// The effect of a report at `point` (the module's table).
pub fn effect(point: u32, success: bool, deletion_point: u32) -> Effect {
    let nothing = Effect {
        state: None,
        event: None,
        activates: false,
    };
    let failed = Effect {
        state: Some(ProfileState::Error),
        event: Some(EventType::EsimInstallationFailed),
        activates: false,
    };
    match (point, success) {
        (p, true) if p == deletion_point => Effect {
            state: Some(ProfileState::Deleted),
            ..nothing
        },
        (1, true) => nothing,
        (1, false) | (2, _) | (3, false) | (4, false) => failed,
        (3, true) => Effect {
            state: Some(ProfileState::Downloaded),
            event: Some(EventType::EsimProfileDownloaded),
            activates: false,
        },
        (4, true) => Effect {
            state: Some(ProfileState::Installed),
            event: None,
            activates: true,
        },
        _ => nothing,
    }
}

/// The profile after `notice`, or `None` when it changes nothing (see the module's table).
pub fn apply(profile: &EsimProfile, notice: &ProfileNotice) -> Option<EsimProfile> {
    let state = notice.effect.state?;
    if profile.state == ProfileState::Deleted
        || profile.updated_at.is_some_and(|at| at > notice.happened_at)
    {
        return None;
    }
    Some(EsimProfile {
        state,
        eid: notice.eid.clone().or_else(|| profile.eid.clone()),
        updated_at: Some(notice.happened_at),
        last_result: Some(notice.result.clone()),
    })
}

/// What recording a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// Applied to the eSIM.
    Applied {
        /// The eSIM.
        esim_id: String,
    },
    /// Kept; it changes nothing (another point, a late or repeated state).
    Kept,
    /// This call identifier was recorded before: nothing done again.
    Repeated,
    /// No eSIM has this ICCID (kept, for the operator to look at).
    UnknownIccid,
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn notice(point: u32, success: bool, at: DateTime<Utc>) -> ProfileNotice {
        ProfileNotice {
            requester_id: "smdp".into(),
            call_id: "n-1".into(),
            iccid: "8944000000000000017".into(),
            eid: (point == 3).then(|| "89049032000000000000000000000001".into()),
            point,
            success,
            result: if success {
                "success".into()
            } else {
                "8.1/6.4".into()
            },
            happened_at: at,
            received_at: at,
            effect: effect(point, success, DEFAULT_DELETION_POINT),
        }
    }

    #[test]
    fn each_point_does_what_the_table_says() {
        let d = DEFAULT_DELETION_POINT;
        let rows = [
            (
                1,
                false,
                Some("error"),
                Some("esim.installation_failed"),
                false,
            ),
            (1, true, None, None, false),
            (
                2,
                true,
                Some("error"),
                Some("esim.installation_failed"),
                false,
            ),
            (
                3,
                true,
                Some("downloaded"),
                Some("esim.profile_downloaded"),
                false,
            ),
            (
                3,
                false,
                Some("error"),
                Some("esim.installation_failed"),
                false,
            ),
            (4, true, Some("installed"), None, true),
            (
                4,
                false,
                Some("error"),
                Some("esim.installation_failed"),
                false,
            ),
            (d, true, Some("deleted"), None, false),
            (7, true, None, None, false),
        ];
        for (point, success, state, event, activates) in rows {
            let e = effect(point, success, d);
            assert_eq!(
                (
                    e.state.map(ProfileState::as_str),
                    e.event.map(EventType::as_str),
                    e.activates
                ),
                (state, event, activates),
                "point {point}, success {success}"
            );
        }
    }

    #[test]
    fn a_download_names_the_eid_and_later_points_keep_it() {
        let t = Utc::now();
        let downloaded = apply(&released(), &notice(3, true, t)).unwrap();
        assert_eq!(downloaded.state, ProfileState::Downloaded);
        let eid = downloaded.eid.clone();
        assert!(eid.is_some());
        let installed = apply(&downloaded, &notice(4, true, t + Duration::seconds(5))).unwrap();
        assert_eq!(
            (installed.state, installed.eid),
            (ProfileState::Installed, eid)
        );
    }

    #[test]
    fn a_late_report_or_one_after_deletion_changes_nothing() {
        let t = Utc::now();
        let installed = apply(&released(), &notice(4, true, t)).unwrap();
        assert_eq!(
            apply(&installed, &notice(3, true, t - Duration::seconds(1))),
            None
        );
        let deleted = apply(&installed, &notice(5, true, t + Duration::seconds(1))).unwrap();
        assert_eq!(
            apply(&deleted, &notice(4, false, t + Duration::seconds(2))),
            None
        );
        assert_eq!(
            apply(&released(), &notice(9, true, t)),
            None,
            "an unknown point"
        );
    }
}
