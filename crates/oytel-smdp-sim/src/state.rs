//! The simulated SM-DP+'s profiles and what each ES2+ function does to them (SGP.22 §3.1,
//! §5.3), kept apart from HTTP so the rules read as a table and test as one.
//!
//! | function / device step | from | to | refused with (`subjectCode`/`reasonCode`) |
//! |---|---|---|---|
//! | `downloadOrder` by type | an `Available` profile of the type | `Allocated`, or `Linked` with an EID | none of the type: `8.2.5/3.7`; unknown type: `8.2.5/3.9` |
//! | `downloadOrder` by ICCID | `Available` | `Allocated`, or `Linked` with an EID | unknown: `8.2.1/3.9`; not available: `8.2.1/3.3` |
//! | `confirmOrder` | `Allocated`, `Linked` | `Confirmed`, or `Released` with `releaseFlag` (linked to the EID given, if any) | unknown: `8.2.1/3.9`; another state: `8.2.1/3.3`; matching ID in use: `8.2.6/3.3`; another EID than the linked one: `8.1.1/3.10` |
//! | `releaseProfile` | `Confirmed` | `Released` | unknown: `8.2.1/3.9`; another state: `8.2.1/3.5` |
//! | `cancelOrder` | `Allocated`, `Linked`, `Confirmed`, `Released`, `Error` | `Available` or `Unavailable` | unknown: `8.2.1/3.9`; downloaded or installed: `8.2.1/3.5`; another matching ID: `8.2.6/3.10` |
//! | device: download | `Released` | `Downloaded` (notification point 3) | a phone with another EID than the linked one: refused |
//! | device: install | `Downloaded` | `Installed` (point 4) | |
//! | device: fail at a point | `Released`, `Downloaded` | `Error` (that point, `Failed`) | |
//! | device: delete | `Installed` | `Unavailable` (the deletion point) | |
//!
//! A function called again with the same `functionRequesterIdentifier` and
//! `functionCallIdentifier` gets its first answer and changes nothing (see `lib.rs`).

use std::collections::BTreeMap;

use oytel_core::numbers::{generate_matching_id, luhn_check_digit};
use oytel_es2plus::{FinalProfileStatus, FunctionExecutionStatus, Iccid};
use serde::Serialize;

/// A profile's state at the SM-DP+.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProfileState {
    /// In stock.
    Available,
    /// Reserved by `downloadOrder`.
    Allocated,
    /// Linked to an EID.
    Linked,
    /// Confirmed, not yet released.
    Confirmed,
    /// Ready for download.
    Released,
    /// Downloaded to a phone.
    Downloaded,
    /// Installed on the eUICC.
    Installed,
    /// A download or installation failed.
    Error,
    /// Retired.
    Unavailable,
}

/// One profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Its ICCID.
    pub iccid: String,
    /// Its type.
    pub profile_type: String,
    /// Where it is in its life.
    pub state: ProfileState,
    /// The eUICC it is linked to.
    pub eid: Option<String>,
    /// The matching ID of its order.
    pub matching_id: Option<String>,
}

/// A refusal: `Failed` with its codes.
pub type Refusal = FunctionExecutionStatus;

fn refuse(subject: &str, reason: &str, message: impl Into<String>) -> Refusal {
    FunctionExecutionStatus::failed(subject, reason, &message.into())
}

/// Every profile, by ICCID.
#[derive(Debug, Default)]
pub struct Inventory {
    profiles: BTreeMap<Iccid, Profile>,
    serial: u64,
    /// The first digits of new ICCIDs (`89`, the country code, the issuer); `8999` (a test
    /// range) when empty.
    pub iccid_prefix: String,
}

/// The ICCID prefix of new profiles unless configured: `89` (telecom), `99` (a test range).
pub const DEFAULT_ICCID_PREFIX: &str = "8999";

impl Inventory {
    /// Adds `count` new `Available` profiles of `profile_type` with fresh 19-digit ICCIDs.
    pub fn add(&mut self, profile_type: &str, count: u32) {
        let prefix = match self.iccid_prefix.as_str() {
            "" => DEFAULT_ICCID_PREFIX.to_owned(),
            prefix => prefix.to_owned(),
        };
        let width = 18usize.saturating_sub(prefix.len());
        for _ in 0..count {
            self.serial += 1;
            let body = format!("{prefix}{:0width$}", self.serial);
            let iccid = format!("{body}{}", luhn_check_digit(&body));
            self.insert(&iccid, profile_type);
        }
    }

    /// Adds one profile with a given ICCID (no-op when it exists).
    pub fn insert(&mut self, iccid: &str, profile_type: &str) {
        if let Some(key) = Iccid::parse(iccid) {
            self.profiles.entry(key).or_insert_with(|| Profile {
                iccid: iccid.to_owned(),
                profile_type: profile_type.to_owned(),
                state: ProfileState::Available,
                eid: None,
                matching_id: None,
            });
        }
    }

    /// The profile of `iccid`.
    pub fn get(&self, iccid: &Iccid) -> Option<&Profile> {
        self.profiles.get(iccid)
    }

    /// Every profile.
    pub fn all(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    fn known(&mut self, iccid: &Iccid) -> Result<&mut Profile, Refusal> {
        self.profiles
            .get_mut(iccid)
            .ok_or_else(|| refuse("8.2.1", "3.9", format!("profile {iccid} is unknown")))
    }

    /// `downloadOrder`: reserves a profile of `profile_type`, or `iccid`.
    pub fn download_order(
        &mut self,
        iccid: Option<&Iccid>,
        profile_type: Option<&str>,
        eid: Option<&str>,
    ) -> Result<Iccid, Refusal> {
        let chosen = match (iccid, profile_type) {
            (Some(iccid), _) => {
                let profile = self.known(iccid)?;
                if profile.state != ProfileState::Available {
                    return Err(refuse(
                        "8.2.1",
                        "3.3",
                        format!("profile {iccid} is not available"),
                    ));
                }
                iccid.clone()
            }
            (None, Some(kind)) => {
                if !self.profiles.values().any(|p| p.profile_type == kind) {
                    return Err(refuse(
                        "8.2.5",
                        "3.9",
                        format!("profile type {kind} is unknown"),
                    ));
                }
                self.profiles
                    .iter()
                    .find(|(_, p)| p.profile_type == kind && p.state == ProfileState::Available)
                    .map(|(k, _)| k.clone())
                    .ok_or_else(|| {
                        refuse(
                            "8.2.5",
                            "3.7",
                            format!("no profile of type {kind} is available"),
                        )
                    })?
            }
            (None, None) => {
                return Err(refuse("8.2", "2.2", "give an iccid or a profileType"));
            }
        };
        let profile = self.known(&chosen)?;
        profile.state = if eid.is_some() {
            ProfileState::Linked
        } else {
            ProfileState::Allocated
        };
        profile.eid = eid.map(str::to_owned);
        Ok(chosen)
    }

    /// `confirmOrder`: links and confirms (or releases) an allocated profile; returns the
    /// matching ID (the one given, or a new one).
    pub fn confirm_order(
        &mut self,
        iccid: &Iccid,
        eid: Option<&str>,
        matching_id: Option<&str>,
        release: bool,
    ) -> Result<(String, Option<String>), Refusal> {
        if let Some(wanted) = matching_id {
            let taken = self
                .profiles
                .iter()
                .any(|(k, p)| k != iccid && p.matching_id.as_deref() == Some(wanted));
            if taken {
                return Err(refuse(
                    "8.2.6",
                    "3.3",
                    format!("matching ID {wanted} is in use"),
                ));
            }
        }
        let profile = self.known(iccid)?;
        if !matches!(
            profile.state,
            ProfileState::Allocated | ProfileState::Linked
        ) {
            return Err(refuse(
                "8.2.1",
                "3.3",
                format!("profile {iccid} is {:?}, not Allocated", profile.state),
            ));
        }
        if let (Some(given), Some(linked)) = (eid, profile.eid.as_deref()) {
            if given != linked {
                return Err(refuse(
                    "8.1.1",
                    "3.10",
                    "the profile is linked to another EID",
                ));
            }
        }
        let matching_id = matching_id.map_or_else(generate_matching_id, str::to_owned);
        if let Some(eid) = eid {
            profile.eid = Some(eid.to_owned());
        }
        profile.matching_id = Some(matching_id.clone());
        profile.state = if release {
            ProfileState::Released
        } else {
            ProfileState::Confirmed
        };
        Ok((matching_id, profile.eid.clone()))
    }

    /// `releaseProfile`.
    pub fn release_profile(&mut self, iccid: &Iccid) -> Result<(), Refusal> {
        let profile = self.known(iccid)?;
        if profile.state != ProfileState::Confirmed {
            return Err(refuse(
                "8.2.1",
                "3.5",
                format!("profile {iccid} is {:?}, not Confirmed", profile.state),
            ));
        }
        profile.state = ProfileState::Released;
        Ok(())
    }

    /// `cancelOrder`.
    pub fn cancel_order(
        &mut self,
        iccid: &Iccid,
        matching_id: Option<&str>,
        end: FinalProfileStatus,
    ) -> Result<(), Refusal> {
        let profile = self.known(iccid)?;
        use ProfileState::*;
        if !matches!(
            profile.state,
            Allocated | Linked | Confirmed | Released | Error
        ) {
            return Err(refuse(
                "8.2.1",
                "3.5",
                format!(
                    "profile {iccid} is {:?}: it can no longer be cancelled",
                    profile.state
                ),
            ));
        }
        if let (Some(given), Some(held)) = (matching_id, profile.matching_id.as_deref()) {
            if given != held {
                return Err(refuse(
                    "8.2.6",
                    "3.10",
                    "the matching ID is not this order's",
                ));
            }
        }
        profile.state = match end {
            FinalProfileStatus::Available => Available,
            FinalProfileStatus::Unavailable => Unavailable,
        };
        profile.eid = None;
        profile.matching_id = None;
        Ok(())
    }

    /// A device step: moves `iccid` from one of `from` to `to`; the profile after the move.
    pub fn device_step(
        &mut self,
        iccid: &Iccid,
        from: &[ProfileState],
        to: ProfileState,
        eid: Option<&str>,
    ) -> Result<Profile, String> {
        let profile = self
            .profiles
            .get_mut(iccid)
            .ok_or_else(|| format!("profile {iccid} is unknown"))?;
        if !from.contains(&profile.state) {
            return Err(format!(
                "profile {iccid} is {:?}; this step needs {from:?}",
                profile.state
            ));
        }
        if let (Some(given), Some(linked)) = (eid, profile.eid.as_deref()) {
            if given != linked {
                return Err(format!("profile {iccid} is linked to another EID"));
            }
        }
        profile.state = to;
        if let Some(eid) = eid {
            profile.eid = Some(eid.to_owned());
        }
        if profile.eid.is_none() {
            profile.eid = Some(new_eid());
        }
        Ok(profile.clone())
    }

    /// Profiles by type and state: `{type: {state: count}}`.
    pub fn stock(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut stock: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for profile in self.profiles.values() {
            *stock
                .entry(profile.profile_type.clone())
                .or_default()
                .entry(format!("{:?}", profile.state))
                .or_default() += 1;
        }
        stock
    }
}

/// A 32-digit EID for a simulated phone.
fn new_eid() -> String {
    use rand::Rng as _;
    let n: u64 = rand::thread_rng().gen_range(0..10u64.pow(15));
    format!("89049032000000000{n:015}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stocked() -> Inventory {
        let mut inventory = Inventory::default();
        inventory.add("uk-5g", 2);
        inventory
    }

    fn code(refusal: Refusal) -> String {
        let data = refusal.status_code_data.expect("a refusal has codes");
        format!("{}/{}", data.subject_code, data.reason_code)
    }

    #[test]
    fn a_profile_goes_from_stock_to_released_and_back_when_cancelled() {
        let mut inventory = stocked();
        let iccid = inventory.download_order(None, Some("uk-5g"), None).unwrap();
        assert_eq!(
            inventory.get(&iccid).unwrap().state,
            ProfileState::Allocated
        );
        let (matching_id, _) = inventory.confirm_order(&iccid, None, None, true).unwrap();
        assert_eq!(matching_id.len(), 23);
        assert_eq!(inventory.get(&iccid).unwrap().state, ProfileState::Released);
        inventory
            .cancel_order(&iccid, Some(&matching_id), FinalProfileStatus::Available)
            .unwrap();
        assert_eq!(
            inventory.get(&iccid).unwrap().state,
            ProfileState::Available
        );
        assert_eq!(inventory.get(&iccid).unwrap().matching_id, None);
    }

    #[test]
    fn an_order_without_release_waits_for_release_profile() {
        let mut inventory = stocked();
        let iccid = inventory.download_order(None, Some("uk-5g"), None).unwrap();
        inventory
            .confirm_order(&iccid, Some("8904"), Some("MY-ID"), false)
            .unwrap();
        assert_eq!(
            inventory.get(&iccid).unwrap().state,
            ProfileState::Confirmed
        );
        inventory.release_profile(&iccid).unwrap();
        assert_eq!(
            code(inventory.release_profile(&iccid).unwrap_err()),
            "8.2.1/3.5"
        );
    }

    #[test]
    fn refusals_carry_the_codes_of_sgp22() {
        let mut inventory = stocked();
        assert_eq!(
            code(
                inventory
                    .download_order(None, Some("eu-4g"), None)
                    .unwrap_err()
            ),
            "8.2.5/3.9"
        );
        assert_eq!(
            code(inventory.download_order(None, None, None).unwrap_err()),
            "8.2/2.2"
        );
        let first = inventory.download_order(None, Some("uk-5g"), None).unwrap();
        inventory.download_order(None, Some("uk-5g"), None).unwrap();
        assert_eq!(
            code(
                inventory
                    .download_order(None, Some("uk-5g"), None)
                    .unwrap_err()
            ),
            "8.2.5/3.7"
        );
        assert_eq!(
            code(
                inventory
                    .download_order(Some(&first), None, None)
                    .unwrap_err()
            ),
            "8.2.1/3.3"
        );
        let unknown = Iccid::parse("8999000000000000000").unwrap();
        assert_eq!(
            code(
                inventory
                    .confirm_order(&unknown, None, None, true)
                    .unwrap_err()
            ),
            "8.2.1/3.9"
        );
        inventory
            .confirm_order(&first, None, Some("TAKEN"), true)
            .unwrap();
        let second = inventory
            .all()
            .find(|p| p.state == ProfileState::Allocated)
            .unwrap()
            .iccid
            .clone();
        let second = Iccid::parse(&second).unwrap();
        assert_eq!(
            code(
                inventory
                    .confirm_order(&second, None, Some("TAKEN"), true)
                    .unwrap_err()
            ),
            "8.2.6/3.3"
        );
        assert_eq!(
            code(
                inventory
                    .cancel_order(&first, Some("OTHER"), FinalProfileStatus::Available)
                    .unwrap_err()
            ),
            "8.2.6/3.10"
        );
    }

    #[test]
    fn a_downloaded_profile_cannot_be_cancelled_and_the_device_steps_follow_the_states() {
        let mut inventory = stocked();
        let iccid = inventory.download_order(None, Some("uk-5g"), None).unwrap();
        inventory.confirm_order(&iccid, None, None, true).unwrap();
        assert!(inventory
            .device_step(
                &iccid,
                &[ProfileState::Downloaded],
                ProfileState::Installed,
                None
            )
            .is_err());
        let downloaded = inventory
            .device_step(
                &iccid,
                &[ProfileState::Released],
                ProfileState::Downloaded,
                None,
            )
            .unwrap();
        assert!(downloaded.eid.is_some(), "a phone has an EID");
        assert_eq!(
            code(
                inventory
                    .cancel_order(&iccid, None, FinalProfileStatus::Available)
                    .unwrap_err()
            ),
            "8.2.1/3.5"
        );
    }

    #[test]
    fn an_order_for_a_known_phone_is_linked_and_keeps_to_that_phone() {
        let mut inventory = stocked();
        let iccid = inventory
            .download_order(None, Some("uk-5g"), Some("8904A"))
            .unwrap();
        assert_eq!(inventory.get(&iccid).unwrap().state, ProfileState::Linked);
        assert_eq!(
            code(
                inventory
                    .confirm_order(&iccid, Some("8904B"), None, true)
                    .unwrap_err()
            ),
            "8.1.1/3.10"
        );
        inventory
            .confirm_order(&iccid, Some("8904A"), None, true)
            .unwrap();
        assert!(inventory
            .device_step(
                &iccid,
                &[ProfileState::Released],
                ProfileState::Downloaded,
                Some("8904B")
            )
            .is_err());
    }

    #[test]
    fn a_failed_download_can_be_cancelled_back_into_stock() {
        let mut inventory = stocked();
        let iccid = inventory.download_order(None, Some("uk-5g"), None).unwrap();
        inventory.confirm_order(&iccid, None, None, true).unwrap();
        inventory
            .device_step(&iccid, &[ProfileState::Released], ProfileState::Error, None)
            .unwrap();
        inventory
            .cancel_order(&iccid, None, FinalProfileStatus::Available)
            .unwrap();
        assert_eq!(
            inventory.get(&iccid).unwrap().state,
            ProfileState::Available
        );
    }

    #[test]
    fn generated_iccids_are_19_digits_with_a_luhn_check_digit() {
        let inventory = stocked();
        for profile in inventory.all() {
            assert_eq!(profile.iccid.len(), 19);
            let (body, check) = profile.iccid.split_at(18);
            assert_eq!(luhn_check_digit(body).to_string(), check);
        }
    }
}
