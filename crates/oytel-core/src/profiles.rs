//! Where an eSIM's profile comes from, and the saga that reserves one at an SM-DP+ so that a
//! fault at any step leaves nothing charged and no profile held for nobody.
//!
//! | source | serves | how a profile is had |
//! |---|---|---|
//! | builtin | sandbox keys; live keys when no SM-DP+ is configured | made inside the provisioning transaction (ICCID, matching ID), so it needs no saga |
//! | an SM-DP+ ([`ProfileSource`], over ES2+) | live keys when one is configured; sandbox keys too when asked | reserved before the transaction, by the saga below |
//!
//! An SM-DP+ is outside our database: no transaction can hold its reservation and our charge
//! together. So each step is written to a journal, a [`Reservation`], before the call it
//! guards, and the provisioning transaction itself marks the reservation sold. Whoever finds
//! a reservation that is not sold (the request that made it, or after a crash the
//! [`reconcile`] pass) knows what the SM-DP+ may hold and puts it back:
//!
//! | state | written | what the SM-DP+ holds | if the request cannot go on |
//! |---|---|---|---|
//! | `ordering` | before `downloadOrder` | nothing, or a profile we have not heard of | `cancelled` when the call surely did nothing; otherwise `cancelling`, the ICCID learnt by repeating the call with its identifier |
//! | `ordered` | `downloadOrder` answered the ICCID | an allocated profile | `cancelling` |
//! | `released` | `confirmOrder` answered the matching ID | a profile released for download | `cancelling` |
//! | `sold` | by the provisioning transaction (charge, order, eSIM) | the eSIM's profile | — |
//! | `cancelling` | a failure, or a reservation found stale; or a sold one whose eSIM was cancelled before its download ([`retired_on_cancel`]) | a profile to put back (or to retire) | `cancelOrder` to `Available` (or `Unavailable`), retried with backoff until the SM-DP+ confirms or refuses (a refusal is kept in `last_error`) |
//! | `cancelled` | the SM-DP+ confirmed, or nothing was held | nothing of ours | — |
//!
//! A reservation is stale when it has not moved for [`STALE_AFTER`] (or as configured: always
//! longer than any request may take, whose calls' attempts and timeouts end first). Taking it over is a
//! conditional change of state, and so is selling it: when the request is slower than the
//! reconciler, its transaction finds the reservation gone and commits nothing.
//!
//! Every call to the SM-DP+ names the reservation in its `functionCallIdentifier`
//! ([`call_id`]), so a call repeated after a crash is the same call.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ports::Storage;
use crate::Scope;

/// How long a reservation may stay unchanged before the reconciler takes it over.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// The reconciler's waits between attempts to put a profile back, the last one repeated.
pub const PUT_BACK_BACKOFF: [Duration; 5] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
];

/// A profile released for download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedProfile {
    /// The matching ID of the activation code.
    pub matching_id: String,
    /// The SM-DP+ address of the activation code, where the SM-DP+ names one.
    pub smdp_address: Option<String>,
}

/// Why the SM-DP+ did not do what was asked. The partner sees the kind as a stable code and
/// the text in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Nothing reached the SM-DP+ (refused, TLS, DNS): it did nothing.
    #[error("the SM-DP+ could not be reached; nothing was ordered or charged")]
    Unreachable(String),
    /// No answer in time, or the connection broke after the request: it may have acted.
    #[error("the SM-DP+ did not answer in time; nothing was charged")]
    Timeout(String),
    /// The SM-DP+ refused, for the reason given.
    #[error("the SM-DP+ refused: {0}")]
    Rejected(String),
    /// An answer that is not ES2+.
    #[error("the SM-DP+ gave an answer that could not be understood; nothing was charged")]
    Protocol(String),
}

impl ProfileError {
    /// Whether the SM-DP+ may have acted although no answer says so.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ProfileError::Timeout(_) | ProfileError::Protocol(_))
    }

    /// What happened, with the detail that stays in our logs.
    pub fn detail(&self) -> &str {
        match self {
            ProfileError::Unreachable(d)
            | ProfileError::Timeout(d)
            | ProfileError::Rejected(d)
            | ProfileError::Protocol(d) => d,
        }
    }
}

/// An SM-DP+, as the domain needs it: the ES2+ adapter in the server implements it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ProfileSource: Send + Sync + 'static {
    /// Reserves a profile of `profile_type` (`downloadOrder`): its ICCID. Repeating a call
    /// with the same `call_id` is the same call.
    async fn order(&self, call_id: &str, profile_type: &str) -> Result<String, ProfileError>;
    /// Confirms the profile and releases it for download (`confirmOrder`, `releaseFlag`).
    async fn release(&self, call_id: &str, iccid: &str) -> Result<ReleasedProfile, ProfileError>;
    /// Cancels the order of a profile (`cancelOrder`): back in stock (`Available`) when it
    /// was never sold, or retired (`Unavailable`) when a cancelled eSIM's customer holds its
    /// activation code.
    async fn put_back(
        &self,
        call_id: &str,
        iccid: &str,
        to: FinalState,
    ) -> Result<(), ProfileError>;
}

/// Where a cancelled order leaves its profile at the SM-DP+.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalState {
    /// Back in stock, for another order (`Available`).
    Available,
    /// Never to be used again (`Unavailable`).
    Unavailable,
}

/// Whether cancelling an eSIM with `profile` retires that profile at the SM-DP+:
///
/// | the profile | at the SM-DP+ |
/// |---|---|
/// | `released`, `error` (never on a phone) | retired: `cancelOrder` to `Unavailable` (the customer holds its activation code, so it is not sold again) |
/// | `downloaded`, `installed` | nothing: it is on the phone; the network side bars the subscription |
/// | `deleted`, or a builtin profile | nothing |
pub fn retired_on_cancel(profile: Option<&oytel_types::EsimProfile>) -> bool {
    use oytel_types::ProfileState;
    matches!(
        profile.map(|p| p.state),
        Some(ProfileState::Released | ProfileState::Error)
    )
}

/// Where a reservation stands (the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReservationState {
    /// `downloadOrder` is being called.
    Ordering,
    /// Allocated: the ICCID is known.
    Ordered,
    /// Released for download: the matching ID is known.
    Released,
    /// Sold with an eSIM.
    Sold,
    /// To be put back.
    Cancelling,
    /// Put back, or never held.
    Cancelled,
}

impl ReservationState {
    /// Every state, in the order of the table.
    pub const ALL: [ReservationState; 6] = [
        ReservationState::Ordering,
        ReservationState::Ordered,
        ReservationState::Released,
        ReservationState::Sold,
        ReservationState::Cancelling,
        ReservationState::Cancelled,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationState::Ordering => "ordering",
            ReservationState::Ordered => "ordered",
            ReservationState::Released => "released",
            ReservationState::Sold => "sold",
            ReservationState::Cancelling => "cancelling",
            ReservationState::Cancelled => "cancelled",
        }
    }

    /// The state of a stored text.
    pub fn parse(text: &str) -> Option<ReservationState> {
        ReservationState::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Whether a request is still working on it (so it goes stale if left).
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            ReservationState::Ordering | ReservationState::Ordered | ReservationState::Released
        )
    }
}

/// The journal of one attempt to reserve a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// `rsv_…`; also the stem of the SM-DP+ call identifiers ([`call_id`]).
    pub id: String,
    /// Whose request made it.
    pub scope: Scope,
    /// The plan's profile type.
    pub profile_type: String,
    /// Where it stands.
    pub state: ReservationState,
    /// The ICCID, once the SM-DP+ named it.
    pub iccid: Option<String>,
    /// The matching ID, once released.
    pub matching_id: Option<String>,
    /// The SM-DP+ address, where it named one.
    pub smdp_address: Option<String>,
    /// The eSIM it was sold with.
    pub esim_id: Option<String>,
    /// Failed attempts to put it back.
    pub attempts: u32,
    /// The last failure, in words (for the operator).
    pub last_error: Option<String>,
    /// Whether its profile is retired (`Unavailable`) rather than put back in stock: a sold
    /// profile whose eSIM was cancelled ([`retired_on_cancel`]).
    pub retire: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the reconciler tries again (`cancelling` only).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl Reservation {
    /// A new reservation, before `downloadOrder`.
    pub fn new(scope: &Scope, profile_type: &str, now: DateTime<Utc>) -> Reservation {
        Reservation {
            id: crate::numbers::new_id("rsv"),
            scope: scope.clone(),
            profile_type: profile_type.to_owned(),
            state: ReservationState::Ordering,
            iccid: None,
            matching_id: None,
            smdp_address: None,
            esim_id: None,
            attempts: 0,
            last_error: None,
            retire: false,
            created_at: now,
            updated_at: now,
            next_attempt_at: None,
        }
    }
}

/// The SM-DP+ functions a reservation calls, each with its own call identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `downloadOrder`.
    Order,
    /// `confirmOrder`.
    Release,
    /// `cancelOrder`.
    PutBack,
}

/// The `functionCallIdentifier` of `step` for reservation `id`: the same for every repeat.
pub fn call_id(id: &str, step: Step) -> String {
    let suffix = match step {
        Step::Order => "order",
        Step::Release => "release",
        Step::PutBack => "putback",
    };
    format!("{id}.{suffix}")
}

/// A released profile, ready for the provisioning transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The journal, in state `released`.
    pub reservation: Reservation,
    /// Its ICCID.
    pub iccid: String,
    /// Its matching ID.
    pub matching_id: String,
    /// The SM-DP+ address of its activation code, where the SM-DP+ named one.
    pub smdp_address: Option<String>,
}

/// Why a reservation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// The SM-DP+ did not do it.
    #[error(transparent)]
    Smdp(#[from] ProfileError),
    /// Our journal could not be written: nothing was asked of the SM-DP+ after it.
    #[error(transparent)]
    Store(#[from] crate::ports::StoreError),
}

/// Moves `r` from `from` to its new fields, unless someone else moved it first.
async fn advance(
    store: &dyn Storage,
    r: &mut Reservation,
    from: ReservationState,
) -> Result<bool, crate::ports::StoreError> {
    r.updated_at = crate::clock::now();
    store.advance_reservation(r, from).await
}

/// Reserves a profile of `profile_type` and releases it: the saga's steps up to `released`.
/// On failure, what may be held is put back (or left `cancelling` for [`reconcile`]).
pub async fn reserve(
    store: &dyn Storage,
    source: &dyn ProfileSource,
    scope: &Scope,
    profile_type: &str,
) -> Result<Held, ReserveError> {
    let mut r = Reservation::new(scope, profile_type, crate::clock::now());
    store.create_reservation(&r).await?;

    let iccid = match source
        .order(&call_id(&r.id, Step::Order), profile_type)
        .await
    {
        Ok(iccid) => iccid,
        Err(e) => {
            let from = r.state;
            r.last_error = Some(e.detail().to_owned());
            if e.outcome_unknown() {
                // It may hold one we never heard of: the reconciler repeats the call to
                // learn its ICCID, then puts it back.
                r.state = ReservationState::Cancelling;
                r.next_attempt_at = Some(crate::clock::now());
            } else {
                r.state = ReservationState::Cancelled;
            }
            let _ = advance(store, &mut r, from).await;
            return Err(e.into());
        }
    };
    r.iccid = Some(iccid.clone());
    r.state = ReservationState::Ordered;
    if !advance(store, &mut r, ReservationState::Ordering).await? {
        return Err(taken_over().into());
    }

    let released = match source.release(&call_id(&r.id, Step::Release), &iccid).await {
        Ok(released) => released,
        Err(e) => {
            give_back(store, source, r, e.detail()).await;
            return Err(e.into());
        }
    };
    r.matching_id = Some(released.matching_id.clone());
    r.smdp_address = released.smdp_address.clone();
    r.state = ReservationState::Released;
    if !advance(store, &mut r, ReservationState::Ordered).await? {
        return Err(taken_over().into());
    }
    Ok(Held {
        reservation: r,
        iccid,
        matching_id: released.matching_id,
        smdp_address: released.smdp_address,
    })
}

/// The error of a request whose reservation the reconciler took over (it was too slow).
fn taken_over() -> ProfileError {
    ProfileError::Timeout("the reservation went stale and was put back".into())
}

/// Puts back a held profile that will not be sold (the provisioning did not commit), or
/// leaves it `cancelling` for the reconciler when that fails.
pub async fn give_back(
    store: &dyn Storage,
    source: &dyn ProfileSource,
    mut r: Reservation,
    why: &str,
) {
    let from = r.state;
    r.state = ReservationState::Cancelling;
    r.last_error = Some(why.to_owned());
    r.next_attempt_at = Some(crate::clock::now());
    if !matches!(advance(store, &mut r, from).await, Ok(true)) {
        return;
    }
    let _ = put_back(store, source, r).await;
}

/// One attempt to put back a `cancelling` reservation: learn its ICCID if unknown, cancel
/// the order, and record the outcome (`cancelled`, or the next attempt's time).
async fn put_back(
    store: &dyn Storage,
    source: &dyn ProfileSource,
    mut r: Reservation,
) -> Result<PutBack, crate::ports::StoreError> {
    let outcome = async {
        let iccid = match &r.iccid {
            Some(iccid) => iccid.clone(),
            None => match source
                .order(&call_id(&r.id, Step::Order), &r.profile_type)
                .await
            {
                Ok(iccid) => iccid,
                // Refused: on an SM-DP+ that answers a repeated call identifier with its
                // first answer (as SGP.22 asks), the first call reserved nothing either. One
                // that does not leaves no way to learn the ICCID: the operator must look.
                Err(ProfileError::Rejected(why)) => {
                    r.last_error = Some(format!(
                        "unconfirmed: the repeated downloadOrder was refused ({why}); an SM-DP+ \
                         that does not replay a call identifier may still hold what the first \
                         call reserved"
                    ));
                    return Ok(None);
                }
                Err(e) => return Err(e),
            },
        };
        r.iccid = Some(iccid.clone());
        let to = if r.retire {
            FinalState::Unavailable
        } else {
            FinalState::Available
        };
        source
            .put_back(&call_id(&r.id, Step::PutBack), &iccid, to)
            .await
            .map(|()| Some(iccid))
    }
    .await;
    let mut unconfirmed = false;
    match outcome {
        Ok(held) => {
            unconfirmed = held.is_none();
            r.state = ReservationState::Cancelled;
            r.next_attempt_at = None;
        }
        // Refused as often as the backoff has steps (about 45 minutes, time enough to mend a
        // certificate or an identifier): the SM-DP+'s last word (the profile is on a phone,
        // or not ours to cancel). The refusal is kept for the operator.
        Err(e @ ProfileError::Rejected(_)) if r.attempts as usize + 1 >= PUT_BACK_BACKOFF.len() => {
            unconfirmed = true;
            r.state = ReservationState::Cancelled;
            r.next_attempt_at = None;
            r.last_error = Some(format!("unconfirmed: given up after refusals: {e}"));
        }
        Err(e) => {
            let wait = PUT_BACK_BACKOFF[(r.attempts as usize).min(PUT_BACK_BACKOFF.len() - 1)];
            r.attempts = r.attempts.saturating_add(1);
            r.last_error = Some(e.detail().to_owned());
            r.next_attempt_at = Some(
                crate::clock::now()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero()),
            );
        }
    }
    let done = match r.state {
        ReservationState::Cancelled if unconfirmed => PutBack::Unconfirmed,
        ReservationState::Cancelled => PutBack::Done,
        _ => PutBack::Later,
    };
    advance(store, &mut r, ReservationState::Cancelling).await?;
    Ok(done)
}

/// What one attempt to put a profile back came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PutBack {
    /// The SM-DP+ confirmed (or the reservation surely held nothing).
    Done,
    /// Closed without the SM-DP+'s confirmation: refused every time, or its ICCID could not
    /// be learnt. `last_error` says which; the operator looks at the SM-DP+.
    Unconfirmed,
    /// Failed; tried again later.
    Later,
}

/// What one reconciler pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Stale reservations taken over.
    pub taken_over: u32,
    /// Profiles put back (or found never held).
    pub put_back: u32,
    /// Attempts that failed, to be tried again later.
    pub failed: u32,
    /// Closed without the SM-DP+'s confirmation (see their `last_error`): the operator
    /// should look at the SM-DP+.
    pub unconfirmed: u32,
}

/// One pass of the reconciler: takes over reservations unchanged for `stale_after`
/// ([`STALE_AFTER`] unless configured) and tries to put back every `cancelling` one that is
/// due, up to `limit`.
pub async fn reconcile(
    store: &dyn Storage,
    source: &dyn ProfileSource,
    stale_after: Duration,
    limit: u32,
) -> Result<Reconciled, crate::ports::StoreError> {
    let now = crate::clock::now();
    let stale_before = now - chrono::Duration::from_std(stale_after).unwrap_or_default();
    let mut done = Reconciled::default();
    for mut r in store.due_reservations(now, stale_before, limit).await? {
        if r.state.in_flight() {
            let from = r.state;
            r.state = ReservationState::Cancelling;
            r.last_error = Some("left unfinished (the server stopped or was too slow)".into());
            r.next_attempt_at = Some(now);
            if !advance(store, &mut r, from).await? {
                continue;
            }
            done.taken_over += 1;
        }
        match put_back(store, source, r).await? {
            PutBack::Done => done.put_back += 1,
            PutBack::Unconfirmed => done.unconfirmed += 1,
            PutBack::Later => done.failed += 1,
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::ports::MockStorage;
    use crate::Environment;

    fn scope() -> Scope {
        Scope {
            partner_id: "ptn_1".into(),
            environment: Environment::Production,
        }
    }

    /// A store that keeps the journal's states in `journal`, in order.
    fn journal_store(journal: &Arc<Mutex<Vec<ReservationState>>>) -> MockStorage {
        let mut store = MockStorage::new();
        let j = journal.clone();
        store.expect_create_reservation().returning(move |r| {
            j.lock().unwrap().push(r.state);
            Ok(())
        });
        let j = journal.clone();
        store
            .expect_advance_reservation()
            .returning(move |r, from| {
                let mut j = j.lock().unwrap();
                assert_eq!(j.last(), Some(&from), "moved from a state it was not in");
                j.push(r.state);
                Ok(true)
            });
        store
    }

    fn states(journal: &Arc<Mutex<Vec<ReservationState>>>) -> Vec<&'static str> {
        journal.lock().unwrap().iter().map(|s| s.as_str()).collect()
    }

    #[tokio::test]
    async fn a_reservation_is_journalled_before_each_call_and_released_with_its_codes() {
        let journal = Arc::default();
        let store = journal_store(&journal);
        let mut source = MockProfileSource::new();
        source
            .expect_order()
            .withf(|call, kind| call.ends_with(".order") && kind == "uk-5g")
            .returning(|_, _| Ok("8944000000000000017".into()));
        source
            .expect_release()
            .withf(|call, iccid| call.ends_with(".release") && iccid == "8944000000000000017")
            .returning(|_, _| {
                Ok(ReleasedProfile {
                    matching_id: "MATCH-1".into(),
                    smdp_address: Some("smdp.example.com".into()),
                })
            });
        let held = reserve(&store, &source, &scope(), "uk-5g").await.unwrap();
        assert_eq!(
            (held.iccid.as_str(), held.matching_id.as_str()),
            ("8944000000000000017", "MATCH-1")
        );
        assert_eq!(states(&journal), ["ordering", "ordered", "released"]);
    }

    #[tokio::test]
    async fn an_order_that_surely_did_nothing_holds_nothing() {
        for error in [
            ProfileError::Unreachable("refused".into()),
            ProfileError::Rejected("8.2.5/3.7".into()),
        ] {
            let journal = Arc::default();
            let store = journal_store(&journal);
            let mut source = MockProfileSource::new();
            let e = error.clone();
            source.expect_order().returning(move |_, _| Err(e.clone()));
            source.expect_put_back().never();
            let err = reserve(&store, &source, &scope(), "uk-5g")
                .await
                .unwrap_err();
            assert!(
                matches!(err, ReserveError::Smdp(ref e) if *e == error),
                "{err:?}"
            );
            assert_eq!(states(&journal), ["ordering", "cancelled"]);
        }
    }

    #[tokio::test]
    async fn an_order_that_may_have_acted_is_left_for_the_reconciler() {
        let journal = Arc::default();
        let store = journal_store(&journal);
        let mut source = MockProfileSource::new();
        source
            .expect_order()
            .returning(|_, _| Err(ProfileError::Timeout("10 s".into())));
        source.expect_put_back().never();
        assert!(reserve(&store, &source, &scope(), "uk-5g").await.is_err());
        assert_eq!(states(&journal), ["ordering", "cancelling"]);
    }

    #[tokio::test]
    async fn a_failed_release_puts_the_allocated_profile_back_at_once() {
        let journal = Arc::default();
        let store = journal_store(&journal);
        let mut source = MockProfileSource::new();
        source
            .expect_order()
            .returning(|_, _| Ok("8944000000000000017".into()));
        source
            .expect_release()
            .returning(|_, _| Err(ProfileError::Rejected("8.2.1/3.8".into())));
        source
            .expect_put_back()
            .withf(|call, iccid, to| {
                call.ends_with(".putback")
                    && iccid == "8944000000000000017"
                    && *to == FinalState::Available
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        assert!(reserve(&store, &source, &scope(), "uk-5g").await.is_err());
        assert_eq!(
            states(&journal),
            ["ordering", "ordered", "cancelling", "cancelled"]
        );
    }

    #[tokio::test]
    async fn a_put_back_that_fails_is_tried_again_later_with_backoff() {
        let journal = Arc::default();
        let store = journal_store(&journal);
        let mut source = MockProfileSource::new();
        source
            .expect_put_back()
            .returning(|_, _, _| Err(ProfileError::Unreachable("refused".into())));
        let mut r = Reservation::new(&scope(), "uk-5g", crate::clock::now());
        r.state = ReservationState::Released;
        r.iccid = Some("8944000000000000017".into());
        journal.lock().unwrap().push(r.state);
        give_back(&store, &source, r, "the charge failed").await;
        assert_eq!(states(&journal), ["released", "cancelling", "cancelling"]);
    }

    #[tokio::test]
    async fn a_refused_put_back_is_retried_through_the_backoff_then_closed_unconfirmed() {
        let journal = Arc::default();
        let mut store = MockStorage::new();
        let j: Arc<Mutex<Vec<Reservation>>> = Arc::clone(&journal);
        store.expect_advance_reservation().returning(move |r, _| {
            j.lock().unwrap().push(r.clone());
            Ok(true)
        });
        let mut source = MockProfileSource::new();
        source
            .expect_put_back()
            .withf(|_, _, to| *to == FinalState::Unavailable)
            .times(PUT_BACK_BACKOFF.len())
            .returning(|_, _, _| Err(ProfileError::Rejected("cancelOrder: 1.2/1.2".into())));
        let mut r = Reservation::new(&scope(), "uk-5g", crate::clock::now());
        r.state = ReservationState::Cancelling;
        r.retire = true;
        r.iccid = Some("8944000000000000017".into());
        // A refusal may be ours to mend (a certificate, an identifier): asked again later.
        for _ in 1..PUT_BACK_BACKOFF.len() {
            assert_eq!(
                put_back(&store, &source, r.clone()).await.unwrap(),
                PutBack::Later
            );
            r = journal.lock().unwrap().last().cloned().unwrap();
            assert_eq!(r.state, ReservationState::Cancelling);
        }
        // The last step of the backoff: closed, and said to be unconfirmed.
        assert_eq!(
            put_back(&store, &source, r).await.unwrap(),
            PutBack::Unconfirmed
        );
        let last = journal.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.state, ReservationState::Cancelled);
        assert!(last.last_error.unwrap().starts_with("unconfirmed: "));
    }

    #[tokio::test]
    async fn a_taken_over_reservation_is_due_at_once_should_its_put_back_be_interrupted() {
        let journal: Arc<Mutex<Vec<Reservation>>> = Arc::default();
        let mut store = MockStorage::new();
        let j = journal.clone();
        store.expect_advance_reservation().returning(move |r, _| {
            j.lock().unwrap().push(r.clone());
            Ok(true)
        });
        let stale = Reservation::new(&scope(), "uk-5g", crate::clock::now());
        store
            .expect_due_reservations()
            .returning(move |_, _, _| Ok(vec![stale.clone()]));
        let mut source = MockProfileSource::new();
        source
            .expect_order()
            .returning(|_, _| Err(ProfileError::Unreachable("down".into())));
        reconcile(&store, &source, STALE_AFTER, 10).await.unwrap();
        let takeover = journal.lock().unwrap()[0].clone();
        assert_eq!(takeover.state, ReservationState::Cancelling);
        assert!(takeover.next_attempt_at.is_some(), "{takeover:?}");
    }

    #[tokio::test]
    async fn the_reconciler_learns_an_unknown_iccid_by_repeating_the_order_then_puts_it_back() {
        let journal: Arc<Mutex<Vec<ReservationState>>> = Arc::default();
        let mut store = journal_store(&journal);
        let stale = {
            let mut r = Reservation::new(&scope(), "uk-5g", crate::clock::now());
            r.id = "rsv_stale".into();
            r
        };
        journal.lock().unwrap().push(stale.state);
        store
            .expect_due_reservations()
            .returning(move |_, _, _| Ok(vec![stale.clone()]));
        let mut source = MockProfileSource::new();
        source
            .expect_order()
            .withf(|call, _| call == "rsv_stale.order")
            .times(1)
            .returning(|_, _| Ok("8944000000000000017".into()));
        source
            .expect_put_back()
            .withf(|call, iccid, to| {
                call == "rsv_stale.putback"
                    && iccid == "8944000000000000017"
                    && *to == FinalState::Available
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let done = reconcile(&store, &source, STALE_AFTER, 10).await.unwrap();
        assert_eq!(
            done,
            Reconciled {
                taken_over: 1,
                put_back: 1,
                failed: 0,
                unconfirmed: 0,
            }
        );
        assert_eq!(states(&journal), ["ordering", "cancelling", "cancelled"]);
    }

    #[test]
    fn call_identifiers_are_the_same_for_every_repeat_and_differ_by_step() {
        assert_eq!(call_id("rsv_1", Step::Order), call_id("rsv_1", Step::Order));
        assert_ne!(
            call_id("rsv_1", Step::Order),
            call_id("rsv_1", Step::Release)
        );
        for state in ReservationState::ALL {
            assert_eq!(ReservationState::parse(state.as_str()), Some(state));
        }
    }
}
