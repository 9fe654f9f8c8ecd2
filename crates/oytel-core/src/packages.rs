//! Packages and top-ups: what an eSIM holds after its sale, and what buying more does. The
//! storage adapters apply these rules inside their transactions; the eSIM row keeps the
//! figures of the package in force (allowance, usage, end), written with the package's.
//!
//! ```text
//! queued ──start──▶ active ──allowance used──▶ depleted ──data add-on──▶ active
//!                     │                            │
//!                     └──── validity ends ─────────┴──▶ expired
//! queued | active | depleted ──eSIM cancelled──▶ refunded | cancelled   (billing::package_refund)
//! ```
//!
//! | rule | function |
//! |---|---|
//! | the first package is the provisioning's order, in force from the start; it counts as activated when the eSIM is | [`first_package`] |
//! | a package in force is active, or depleted and not followed yet; at most one per eSIM | [`in_force`] |
//! | a package ends expired (its validity), or depleted when a queued one follows it early | [`end`] |
//! | usage that reaches the allowance depletes the package | [`after_usage`] |
//! | a data add-on adds to the package in force and makes a depleted one active again | [`add_data`] |
//! | the eSIM row carries the allowance, usage and end of the package in force | [`put_in_force`] |
//! | a queued package starts when the one in force ends (its validity, or its allowance), at the earlier of now and that end; its validity runs from its start | [`start`] |
//! | what may be bought for an eSIM: its region's add-ons and a renewal of its plan per term | [`offers`], [`find_offer`] |
//! | where a top-up goes, or why it is refused (table below) | [`place_topup`] |
//!
//! | the eSIM | a data add-on | a renewal |
//! |---|---|---|
//! | provisioned, active or suspended | added to the package in force | queued (at most [`MAX_QUEUED`]) |
//! | expired, its profile installed (it was activated) | refused: nothing in force | starts at once; the eSIM is active again |
//! | expired, never installed | refused | refused: provision a new eSIM |
//! | cancelled | refused | refused |

use chrono::{DateTime, Duration, Months, Utc};
use oytel_types::{
    Environment, Package, PackageKind, PackageState, TopUpKind, TopUpOffer, TopUpPurchase,
};

use crate::billing::RefundReason;
use crate::catalog::{format_allowance, Catalog, Term};
use crate::ports::{EsimRecord, OrderRecord};
use crate::{Amount, CoreError, EsimStatus};

/// The most renewals an eSIM may hold queued.
pub const MAX_QUEUED: usize = 12;

/// One package of an eSIM, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord {
    /// `pkg_…`
    pub id: String,
    /// Its eSIM.
    pub esim_id: String,
    /// 1 for the first, then in the order bought.
    pub position: u32,
    /// How it was bought.
    pub kind: PackageKind,
    /// The order that bought it (the first package).
    pub order_id: Option<String>,
    /// The top-up purchase that bought it (a renewal).
    pub purchase_id: Option<String>,
    /// The plan.
    pub plan_id: String,
    /// Validity from its start.
    pub term: Term,
    /// Allowance with its add-ons, MB.
    pub data_mb: u64,
    /// Used while in force, MB.
    pub data_used_mb: u64,
    /// Paid for it (its purchase and its add-ons), cents.
    pub price_cents: i64,
    /// Its state.
    pub state: PackageState,
    /// When the eSIM first used it.
    pub activated_at: Option<DateTime<Utc>>,
    /// When it came into force.
    pub starts_at: Option<DateTime<Utc>>,
    /// When its validity ends.
    pub ends_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why its cancellation refunded it or not, once the eSIM is cancelled.
    pub refund_reason: Option<RefundReason>,
    /// What its cancellation gave back, cents.
    pub refunded_cents: i64,
    /// When it was bought.
    pub created_at: DateTime<Utc>,
    /// The top-up purchases that bought it or added data to it (filled on reads).
    pub purchase_ids: Vec<String>,
}

impl PackageRecord {
    /// The wire form.
    pub fn to_wire(&self, currency: &str) -> Package {
        Package {
            package_id: self.id.clone(),
            position: self.position,
            kind: self.kind,
            state: self.state,
            plan_id: self.plan_id.clone(),
            term_months: self.term.months(),
            data_allowance_mb: self.data_mb,
            data_allowance: format_allowance(self.data_mb),
            data_used_mb: self.data_used_mb,
            data_remaining_mb: self.data_mb.saturating_sub(self.data_used_mb),
            price: Amount::from_cents(self.price_cents),
            price_cents: self.price_cents,
            currency: currency.to_owned(),
            order_id: self.order_id.clone(),
            purchase_ids: self.purchase_ids.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            activated_at: self.activated_at,
            ended_at: self.ended_at,
            refunded_cents: self.refunded_cents,
            created_at: self.created_at,
        }
    }
}

/// A top-up purchase, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUpRecord {
    /// `top_…`
    pub id: String,
    /// Partner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// The eSIM.
    pub esim_id: String,
    /// The package it made or added to.
    pub package_id: String,
    /// What was bought.
    pub topup_id: String,
    /// Its kind.
    pub kind: TopUpKind,
    /// Data, MB.
    pub data_mb: u64,
    /// A renewal's validity.
    pub term: Option<Term>,
    /// Price, cents.
    pub amount_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The balance after its charge, cents (sandbox: the sandbox balance).
    pub balance_after_cents: i64,
    /// The request that bought it.
    pub request_id: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl TopUpRecord {
    /// A purchase of `offer` for `esim_id`, made now by `request_id`: its package and the
    /// balance after its charge are the store's to fill.
    pub fn new(
        scope: &crate::Scope,
        esim_id: &str,
        offer: &Offer,
        currency: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> TopUpRecord {
        TopUpRecord {
            id: crate::numbers::new_id("top"),
            partner_id: scope.partner_id.clone(),
            environment: scope.environment,
            esim_id: esim_id.to_owned(),
            package_id: String::new(),
            topup_id: offer.topup_id.clone(),
            kind: offer.kind,
            data_mb: offer.data_mb,
            term: offer.term,
            amount_cents: offer.price_cents,
            currency: currency.to_owned(),
            balance_after_cents: 0,
            request_id: request_id.to_owned(),
            created_at: now,
        }
    }

    /// The wire form.
    pub fn to_wire(&self) -> TopUpPurchase {
        TopUpPurchase {
            purchase_id: self.id.clone(),
            esim_id: self.esim_id.clone(),
            topup_id: self.topup_id.clone(),
            kind: self.kind,
            package_id: self.package_id.clone(),
            data_allowance_mb: self.data_mb,
            term_months: self.term.map(Term::months),
            created_at: self.created_at,
        }
    }
}

/// The first package of an eSIM being provisioned: its order's, in force from the start. Its
/// id follows the eSIM's (`esim_X` → `pkg_X`), as the migration that gave every earlier
/// eSIM its package made them.
pub fn first_package(order: &OrderRecord, esim: &EsimRecord) -> PackageRecord {
    PackageRecord {
        id: format!(
            "pkg_{}",
            esim.id.strip_prefix("esim_").unwrap_or(esim.id.as_str())
        ),
        esim_id: esim.id.clone(),
        position: 1,
        kind: PackageKind::Plan,
        order_id: Some(order.id.clone()),
        purchase_id: None,
        plan_id: order.plan_id.clone(),
        term: order.term,
        data_mb: esim.data_limit_mb,
        data_used_mb: esim.data_used_mb,
        price_cents: order.amount_cents,
        state: PackageState::Active,
        activated_at: esim.activated_at,
        starts_at: Some(esim.created_at),
        ends_at: Some(esim.expires_at),
        ended_at: None,
        refund_reason: None,
        refunded_cents: 0,
        created_at: esim.created_at,
        purchase_ids: Vec::new(),
    }
}

/// A renewal bought by `purchase` for `esim`, queued at `position`.
pub fn renewal(
    esim: &EsimRecord,
    purchase: &TopUpRecord,
    term: Term,
    position: u32,
) -> PackageRecord {
    PackageRecord {
        id: crate::numbers::new_id("pkg"),
        esim_id: esim.id.clone(),
        position,
        kind: PackageKind::Renewal,
        order_id: None,
        purchase_id: Some(purchase.id.clone()),
        plan_id: esim.plan_id.clone(),
        term,
        data_mb: purchase.data_mb,
        data_used_mb: 0,
        price_cents: purchase.amount_cents,
        state: PackageState::Queued,
        activated_at: None,
        starts_at: None,
        ends_at: None,
        ended_at: None,
        refund_reason: None,
        refunded_cents: 0,
        created_at: purchase.created_at,
        purchase_ids: Vec::new(),
    }
}

/// Whether `package` is the one in force: active, or depleted and not yet followed by a
/// queued package.
pub fn in_force(package: &PackageRecord) -> bool {
    matches!(package.state, PackageState::Active | PackageState::Depleted)
        && package.ended_at.is_none()
}

/// Ends `package` at `at` in `state` (expired; depleted when a queued package follows it).
pub fn end(package: &mut PackageRecord, state: PackageState, at: DateTime<Utc>) {
    package.state = state;
    package.ended_at = Some(at);
}

/// The package in force after its usage reached `data_used_mb`.
pub fn after_usage(package: &mut PackageRecord) {
    if package.state == PackageState::Active && package.data_used_mb >= package.data_mb {
        package.state = PackageState::Depleted;
    }
}

/// The package in force after a data add-on of `mb` costing `cents`.
pub fn add_data(package: &mut PackageRecord, mb: u64, cents: i64) {
    package.data_mb = package.data_mb.saturating_add(mb);
    package.price_cents = package.price_cents.saturating_add(cents);
    if package.state == PackageState::Depleted && package.data_used_mb < package.data_mb {
        package.state = PackageState::Active;
    }
}

/// Starts a queued package at `at`: its validity runs from then; it counts as activated at
/// once when the eSIM has been (`esim_activated`), else when the eSIM is.
pub fn start(package: &mut PackageRecord, at: DateTime<Utc>, esim_activated: bool) {
    package.state = PackageState::Active;
    package.starts_at = Some(at);
    package.ends_at = Some(term_end(at, package.term));
    package.activated_at = esim_activated.then_some(at);
}

/// Points `esim` at `package`, now in force: the eSIM row carries its allowance, usage and
/// end.
pub fn put_in_force(esim: &mut EsimRecord, package: &PackageRecord) {
    esim.data_limit_mb = package.data_mb;
    esim.data_used_mb = package.data_used_mb;
    if let Some(ends_at) = package.ends_at {
        esim.expires_at = ends_at;
    }
}

/// When a validity of `term` that starts at `at` ends.
pub fn term_end(at: DateTime<Utc>, term: Term) -> DateTime<Utc> {
    at.checked_add_months(Months::new(term.months()))
        .unwrap_or(at + Duration::days(30 * i64::from(term.months())))
}

/// A top-up that may be bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The `topup_id`.
    pub topup_id: String,
    /// Its kind.
    pub kind: TopUpKind,
    /// Its name.
    pub name: String,
    /// Data, MB.
    pub data_mb: u64,
    /// A renewal's term.
    pub term: Option<Term>,
    /// Price, cents.
    pub price_cents: i64,
}

impl Offer {
    /// The wire form.
    pub fn to_wire(&self, currency: &str) -> TopUpOffer {
        TopUpOffer {
            topup_id: self.topup_id.clone(),
            kind: self.kind,
            name: self.name.clone(),
            data_allowance_mb: self.data_mb,
            data_allowance: format_allowance(self.data_mb),
            term_months: self.term.map(Term::months),
            price: Amount::from_cents(self.price_cents),
            price_cents: self.price_cents,
            currency: currency.to_owned(),
        }
    }
}

/// The `topup_id` of a renewal of `term`.
fn renewal_id(term: Term) -> String {
    format!("renewal-{}m", term.months())
}

/// What may be bought for an eSIM of `plan_id`: its region's add-ons, then a renewal of the
/// plan for each term (none when the plan is no longer sold).
pub fn offers(catalog: &Catalog, plan_id: &str) -> Vec<Offer> {
    let Some(plan) = catalog.get(plan_id) else {
        return Vec::new();
    };
    let addons = catalog.addons_for(plan).map(|a| Offer {
        topup_id: a.id.clone(),
        kind: TopUpKind::Addon,
        name: a.name.clone(),
        data_mb: a.data_mb,
        term: None,
        price_cents: a.price_cents,
    });
    let renewals = Term::ALL
        .into_iter()
        .filter(|_| plan.available)
        .map(|term| Offer {
            topup_id: renewal_id(term),
            kind: TopUpKind::Renewal,
            name: format!("{} for {} month(s)", plan.name, term.months()),
            data_mb: plan.data_allowance_mb,
            term: Some(term),
            price_cents: plan.term_price(term).cents(),
        });
    addons.chain(renewals).collect()
}

/// The offer `topup_id` for an eSIM of `plan_id`, or why there is none.
pub fn find_offer(catalog: &Catalog, plan_id: &str, topup_id: &str) -> Result<Offer, CoreError> {
    if let Some(offer) = offers(catalog, plan_id)
        .into_iter()
        .find(|o| o.topup_id == topup_id)
    {
        return Ok(offer);
    }
    let shown: String = topup_id.chars().take(64).collect();
    let why = match (catalog.addon(topup_id), catalog.get(plan_id)) {
        (Some(addon), Some(plan)) if addon.region != plan.region => format!(
            "add-on `{shown}` is for {} plans; this eSIM's plan `{plan_id}` is of {}",
            addon.region, plan.region
        ),
        (Some(_), _) => format!("add-on `{shown}` is not sold now"),
        (None, Some(plan)) if !plan.available && topup_id.starts_with("renewal-") => {
            format!("plan `{plan_id}` is no longer sold, so it cannot be renewed")
        }
        _ => format!(
            "there is no top-up `{shown}` for this eSIM; GET /api/v1/esim/{{esim_id}}/topups lists them"
        ),
    };
    Err(CoreError::TopUpNotAvailable(why))
}

/// Where a top-up goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Data added to the package in force.
    AddToInForce,
    /// A new package, queued.
    Queue,
    /// A new package in force at once; the expired eSIM becomes active again.
    StartNow,
}

/// Where a top-up of `kind` goes for `esim`, holding `queued` queued packages, or why it is
/// refused (the module's second table).
pub fn place_topup(esim: &EsimRecord, queued: usize, kind: TopUpKind) -> Result<Placement, String> {
    let installed = esim.activated_at.is_some();
    match (esim.status, kind) {
        (EsimStatus::Cancelled, _) => Err(format!(
            "eSIM `{}` is cancelled and takes no top-up",
            esim.id
        )),
        (EsimStatus::Expired, TopUpKind::Addon) => Err(format!(
            "eSIM `{}` has expired: there is no package in force to add data to; buy a renewal",
            esim.id
        )),
        (EsimStatus::Expired, TopUpKind::Renewal) if installed => Ok(Placement::StartNow),
        (EsimStatus::Expired, TopUpKind::Renewal) => Err(format!(
            "eSIM `{}` expired without being installed; provision a new eSIM",
            esim.id
        )),
        (_, TopUpKind::Addon) => Ok(Placement::AddToInForce),
        (_, TopUpKind::Renewal) if queued >= MAX_QUEUED => Err(format!(
            "eSIM `{}` already holds {MAX_QUEUED} queued renewals",
            esim.id
        )),
        (_, TopUpKind::Renewal) => Ok(Placement::Queue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esim(status: EsimStatus, activated: bool) -> EsimRecord {
        let mut esim = crate::test_support::sample_esim("eu-roam-20");
        esim.status = status;
        esim.activated_at = activated.then(Utc::now);
        esim
    }

    fn order(e: &EsimRecord) -> OrderRecord {
        crate::test_support::provisioned(&e.plan_id, e.created_at).0
    }

    #[test]
    fn top_ups_go_where_their_table_says() {
        use EsimStatus::*;
        use Placement::*;
        use TopUpKind::*;
        for (status, activated, queued, kind, expected) in [
            (Provisioned, false, 0, Addon, Some(AddToInForce)),
            (Active, true, 0, Addon, Some(AddToInForce)),
            (Suspended, true, 0, Addon, Some(AddToInForce)),
            (Provisioned, false, 0, Renewal, Some(Queue)),
            (Active, true, MAX_QUEUED - 1, Renewal, Some(Queue)),
            (Active, true, MAX_QUEUED, Renewal, None),
            (Expired, true, 0, Renewal, Some(StartNow)),
            (Expired, true, 0, Addon, None),
            (Expired, false, 0, Renewal, None),
            (Cancelled, true, 0, Renewal, None),
            (Cancelled, false, 0, Addon, None),
        ] {
            let got = place_topup(&esim(status, activated), queued, kind).ok();
            assert_eq!(got, expected, "{status:?} activated={activated} {kind:?}");
        }
    }

    #[test]
    fn a_package_depletes_at_its_allowance_and_an_add_on_revives_it() {
        let e = esim(EsimStatus::Active, true);
        let mut package = first_package(&order(&e), &e);
        assert_eq!(package.id, format!("pkg_{}", &e.id[5..]));
        package.data_used_mb = package.data_mb - 1;
        after_usage(&mut package);
        assert_eq!(package.state, PackageState::Active);
        package.data_used_mb = package.data_mb;
        after_usage(&mut package);
        assert_eq!(package.state, PackageState::Depleted);
        let price = package.price_cents;
        add_data(&mut package, 1000, 300);
        assert_eq!(package.state, PackageState::Active);
        assert_eq!(package.price_cents, price + 300);
    }

    #[test]
    fn offers_are_the_regions_add_ons_and_a_renewal_per_term() {
        let catalog = Catalog::default_catalog();
        let ids: Vec<String> = offers(&catalog, "eu-roam-20")
            .into_iter()
            .map(|o| o.topup_id)
            .collect();
        assert_eq!(
            ids,
            [
                "eu-boost-1",
                "eu-boost-5",
                "eu-boost-10",
                "renewal-1m",
                "renewal-3m",
                "renewal-6m",
                "renewal-12m"
            ]
        );
        let renewal = find_offer(&catalog, "eu-roam-20", "renewal-3m").unwrap();
        assert_eq!(renewal.price_cents, 3 * 1420);
        let err = find_offer(&catalog, "eu-roam-20", "uk-boost-5").unwrap_err();
        assert!(err.to_string().contains("is for uk plans"), "{err}");
        let err = find_offer(&catalog, "eu-roam-20", "nope").unwrap_err();
        assert!(err.to_string().contains("no top-up `nope`"), "{err}");
    }

    #[test]
    fn a_started_package_runs_its_term_from_its_start() {
        let e = esim(EsimStatus::Active, true);
        let at = e.expires_at;
        let mut package = PackageRecord {
            state: PackageState::Queued,
            starts_at: None,
            ends_at: None,
            term: Term::ThreeMonths,
            ..first_package(&order(&e), &e)
        };
        start(&mut package, at, true);
        assert_eq!(package.state, PackageState::Active);
        assert_eq!(
            package.ends_at,
            Some(at.checked_add_months(Months::new(3)).unwrap())
        );
        assert_eq!(package.activated_at, Some(at));
        start(&mut package, at, false);
        assert_eq!(package.activated_at, None);
    }
}
