//! The plan catalog. Prices are integer cents per month for each term length; a term costs
//! its monthly price times its months. Data add-ons (top-ups) belong to a region and are
//! sold for the eSIMs whose plan is of that region.
//!
//! A catalog file is refused as a whole when any rule below breaks (the server does not start
//! with it, and says which plan and why):
//!
//! | field | rule |
//! |---|---|
//! | `currency` | an ISO 4217 code (`USD`) |
//! | a plan's or add-on's `id` | lowercase letters, digits and `-`; unique; add-ons not `renewal-…` |
//! | `monthly_price_cents` | a price for exactly the terms 1, 3, 6 and 12, each 1 to [`MAX_PRICE_CENTS`] |
//! | an add-on's `price_cents` | 1 to [`MAX_PRICE_CENTS`] |
//! | allowances and validity | above 0 |
//! | `countries` | at least one ISO 3166-1 alpha-2 code |
//! | an add-on's `region` | the region of some plan |
//! | a plan's `profile_type` (optional: its region when absent) | 1 to 64 letters, digits, `-`, `_`, `.` |

use std::collections::{BTreeMap, HashSet};

use oytel_types::{Amount, Environment, Plan, PlanFeatures, PlanPricing};
use serde::Deserialize;

/// The catalog shipped with the server (`catalog/plans.json` in this crate).
pub const DEFAULT_CATALOG_JSON: &str = include_str!("../catalog/plans.json");

/// The largest price in a catalog, in minor units (1,000,000.00): far above any eSIM, and
/// small enough that a twelve-month term and every sum of charges stay exact in an `i64`
/// (the fuzzer found a catalog whose yearly price wrapped round to a credit).
pub const MAX_PRICE_CENTS: i64 = 100_000_000;

/// A term length that can be ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Term {
    /// One month.
    OneMonth,
    /// Three months.
    ThreeMonths,
    /// Six months.
    SixMonths,
    /// Twelve months.
    TwelveMonths,
}

impl Term {
    /// Every term, shortest first.
    pub const ALL: [Term; 4] = [
        Term::OneMonth,
        Term::ThreeMonths,
        Term::SixMonths,
        Term::TwelveMonths,
    ];

    /// The term of `months` months, if it is one that can be ordered.
    pub fn from_months(months: u32) -> Option<Term> {
        Term::ALL.into_iter().find(|t| t.months() == months)
    }

    /// Its length in months.
    pub fn months(self) -> u32 {
        match self {
            Term::OneMonth => 1,
            Term::ThreeMonths => 3,
            Term::SixMonths => 6,
            Term::TwelveMonths => 12,
        }
    }
}

/// A data allowance for people: whole gigabytes as `650GB`, anything else as `500MB`.
pub fn format_allowance(mb: u64) -> String {
    if mb % 1000 == 0 {
        format!("{}GB", mb / 1000)
    } else {
        format!("{mb}MB")
    }
}

/// What a plan includes, as the catalog file states it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// UK data, for UK plans.
    #[serde(default)]
    pub uk_data: Option<String>,
    /// Roaming data.
    #[serde(default)]
    pub roaming_data: Option<String>,
    /// `4G` or `5G`.
    pub network: String,
    /// Tethering allowed.
    pub hotspot: bool,
    /// Includes calls and SMS.
    pub calls_and_sms: bool,
}

/// A plan as the catalog file states it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogPlan {
    /// Plan id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Coverage for people.
    pub coverage: String,
    /// ISO 3166-1 alpha-2 codes where it works.
    pub countries: Vec<String>,
    /// Region.
    pub region: String,
    /// Allowance, MB (1 GB = 1000 MB).
    pub data_allowance_mb: u64,
    /// Days one month is valid for.
    pub validity_days: u32,
    /// Monthly price in cents by term length in months (`"1"`, `"3"`, `"6"`, `"12"`).
    pub monthly_price_cents: BTreeMap<String, i64>,
    /// What it includes.
    pub features: Features,
    /// Featured.
    #[serde(default)]
    pub popular: bool,
    /// Can be ordered.
    pub available: bool,
    /// The SM-DP+ profile type its eSIMs get (`downloadOrder`'s `profileType`); the plan's
    /// region when not named.
    #[serde(default)]
    pub profile_type: Option<String>,
}

/// Whether `kind` can name a profile type: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn valid_profile_type(kind: &str) -> bool {
    (1..=64).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl CatalogPlan {
    /// The SM-DP+ profile type of its eSIMs.
    pub fn profile_type(&self) -> &str {
        self.profile_type.as_deref().unwrap_or(&self.region)
    }

    /// The monthly price on a term.
    pub fn monthly_price(&self, term: Term) -> Amount {
        // `Catalog::from_json` checked that every term has a price.
        Amount::from_cents(
            self.monthly_price_cents
                .get(&term.months().to_string())
                .copied()
                .unwrap_or_default(),
        )
    }

    /// What a whole term costs: its monthly price times its months.
    pub fn term_price(&self, term: Term) -> Amount {
        Amount::from_cents(self.monthly_price(term).cents() * i64::from(term.months()))
    }

    /// The allowance for people: `650GB`, `500MB`.
    pub fn data_allowance(&self) -> String {
        format_allowance(self.data_allowance_mb)
    }

    /// Whether the plan works in `country` (ISO alpha-2, any case).
    pub fn covers(&self, country: &str) -> bool {
        self.countries
            .iter()
            .any(|c| c.eq_ignore_ascii_case(country))
    }

    /// The wire form of the plan, as seen by a key of `environment`.
    pub fn to_wire(&self, currency: &str, environment: Environment) -> Plan {
        Plan {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            coverage: self.coverage.clone(),
            countries: self.countries.clone(),
            region: self.region.clone(),
            data_allowance: self.data_allowance(),
            data_allowance_mb: self.data_allowance_mb,
            validity_days: self.validity_days,
            pricing: PlanPricing {
                one_month: self.monthly_price(Term::OneMonth),
                three_months: self.monthly_price(Term::ThreeMonths),
                six_months: self.monthly_price(Term::SixMonths),
                twelve_months: self.monthly_price(Term::TwelveMonths),
                base_price: self.monthly_price(Term::OneMonth),
                currency: currency.to_owned(),
            },
            features: PlanFeatures {
                uk_data: self.features.uk_data.clone(),
                roaming_data: self.features.roaming_data.clone(),
                validity_days: self.validity_days,
                network: self.features.network.clone(),
                hotspot: self.features.hotspot,
                calls_and_sms: self.features.calls_and_sms,
            },
            popular: self.popular,
            available: self.available,
            environment,
        }
    }
}

/// A data add-on as the catalog file states it: data added to the package in force of an
/// eSIM whose plan is of `region`, valid until that package ends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogAddon {
    /// Add-on id (the `topup_id` partners send).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The region of the plans it is sold for.
    pub region: String,
    /// Data, MB.
    pub data_mb: u64,
    /// Price, cents.
    pub price_cents: i64,
    /// Can be bought.
    pub available: bool,
}

/// The catalog: every plan, in display order, all priced in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// ISO 4217 code of every price.
    pub currency: String,
    /// The plans, in display order.
    pub plans: Vec<CatalogPlan>,
    /// The data add-ons, in display order (a catalog file without them sells none).
    #[serde(default)]
    pub addons: Vec<CatalogAddon>,
}

/// Why a catalog file was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid plan catalog: {0}")]
pub struct CatalogError(String);

impl Catalog {
    /// Parses and checks a catalog: unique ids, a positive price for every term, a positive
    /// allowance and validity, two-letter country codes.
    pub fn from_json(json: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog =
            serde_json::from_str(json).map_err(|e| CatalogError(e.to_string()))?;
        if catalog.currency.len() != 3 || !catalog.currency.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(CatalogError(format!(
                "currency `{}` is not an ISO 4217 code",
                catalog.currency
            )));
        }
        let mut ids = HashSet::new();
        for plan in &catalog.plans {
            let fail = |what: &str| Err(CatalogError(format!("plan `{}`: {what}", plan.id)));
            if plan.id.is_empty()
                || !plan
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return fail("ids are lowercase letters, digits and `-`");
            }
            if !ids.insert(plan.id.as_str()) {
                return fail("duplicate id");
            }
            for term in Term::ALL {
                match plan.monthly_price_cents.get(&term.months().to_string()) {
                    Some(cents) if (1..=MAX_PRICE_CENTS).contains(cents) => {}
                    _ => {
                        return fail(&format!(
                            "the price for {} months must be 1 to {MAX_PRICE_CENTS} cents",
                            term.months()
                        ))
                    }
                }
            }
            if plan.monthly_price_cents.len() != Term::ALL.len() {
                return fail("prices are for terms of 1, 3, 6 and 12 months only");
            }
            if plan.data_allowance_mb == 0 || plan.validity_days == 0 {
                return fail("allowance and validity must be positive");
            }
            if plan.countries.is_empty()
                || plan
                    .countries
                    .iter()
                    .any(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
            {
                return fail("countries are ISO 3166-1 alpha-2 codes, at least one");
            }
            if plan
                .profile_type
                .as_deref()
                .is_some_and(|k| !valid_profile_type(k))
            {
                return fail("a profile type is 1 to 64 letters, digits, `-`, `_` or `.`");
            }
        }
        let mut addon_ids = HashSet::new();
        for addon in &catalog.addons {
            let fail = |what: &str| Err(CatalogError(format!("add-on `{}`: {what}", addon.id)));
            if addon.id.is_empty()
                || addon.id.starts_with("renewal-")
                || !addon
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return fail("ids are lowercase letters, digits and `-`, not `renewal-…`");
            }
            if !addon_ids.insert(addon.id.as_str()) {
                return fail("duplicate id");
            }
            if addon.data_mb == 0 || !(1..=MAX_PRICE_CENTS).contains(&addon.price_cents) {
                return fail(&format!(
                    "data must be positive and the price 1 to {MAX_PRICE_CENTS} cents"
                ));
            }
            if !catalog.plans.iter().any(|p| p.region == addon.region) {
                return fail("no plan of its region");
            }
        }
        Ok(catalog)
    }

    /// The catalog shipped with the server.
    pub fn default_catalog() -> Catalog {
        // Checked by the `default_catalog_is_valid` test.
        Catalog::from_json(DEFAULT_CATALOG_JSON).expect("the shipped catalog is valid")
    }

    /// The plan with this id.
    pub fn get(&self, id: &str) -> Option<&CatalogPlan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// The add-ons on sale for eSIMs of `plan`, in display order.
    pub fn addons_for<'a>(
        &'a self,
        plan: &'a CatalogPlan,
    ) -> impl Iterator<Item = &'a CatalogAddon> + 'a {
        self.addons
            .iter()
            .filter(move |a| a.available && a.region == plan.region)
    }

    /// The add-on with this id.
    pub fn addon(&self, id: &str) -> Option<&CatalogAddon> {
        self.addons.iter().find(|a| a.id == id)
    }

    /// The plans working in `country` and belonging to `region`, where given.
    pub fn filter<'a>(
        &'a self,
        country: Option<&'a str>,
        region: Option<&'a str>,
    ) -> impl Iterator<Item = &'a CatalogPlan> + 'a {
        self.plans.iter().filter(move |p| {
            country.is_none_or(|c| p.covers(c))
                && region.is_none_or(|r| p.region.eq_ignore_ascii_case(r))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalog_is_valid_and_has_the_documented_prices() {
        let catalog = Catalog::default_catalog();
        assert!(catalog.plans.len() >= 12);
        let plan = catalog.get("uk-massive-650").expect("documented plan");
        let cents: Vec<i64> = Term::ALL
            .iter()
            .map(|t| plan.monthly_price(*t).cents())
            .collect();
        assert_eq!(cents, [2995, 2846, 2696, 2636]);
        assert_eq!(plan.validity_days, 30);
        assert_eq!(plan.features.uk_data.as_deref(), Some("650GB"));
        assert_eq!(plan.features.roaming_data.as_deref(), Some("35GB"));
        assert!(catalog.get("eu-roam-50").is_some());
    }

    #[test]
    fn a_term_costs_its_monthly_price_times_its_months() {
        let catalog = Catalog::default_catalog();
        let plan = catalog.get("uk-massive-650").unwrap();
        assert_eq!(plan.term_price(Term::OneMonth).cents(), 2995);
        assert_eq!(plan.term_price(Term::ThreeMonths).cents(), 3 * 2846);
        assert_eq!(plan.term_price(Term::TwelveMonths).cents(), 12 * 2636);
        assert_eq!(Term::from_months(6), Some(Term::SixMonths));
        assert_eq!(Term::from_months(2), None);
        assert_eq!(Term::from_months(0), None);
    }

    #[test]
    fn filters_by_country_and_region_case_insensitively() {
        let catalog = Catalog::default_catalog();
        let us: Vec<_> = catalog.filter(Some("us"), None).map(|p| &p.id).collect();
        assert!(us.iter().any(|id| *id == "usa-explorer-30"));
        assert!(!us.iter().any(|id| *id == "uk-lite-10"));
        let eu: Vec<_> = catalog.filter(None, Some("EUROPE")).collect();
        assert!(!eu.is_empty() && eu.iter().all(|p| p.region == "europe"));
        assert_eq!(catalog.filter(Some("XX"), None).count(), 0);
    }

    #[test]
    fn rejects_bad_catalogs() {
        let good = r#"{"currency":"USD","plans":[{"id":"a","name":"A","description":"d","coverage":"c",
            "countries":["GB"],"region":"uk","data_allowance_mb":1000,"validity_days":30,
            "monthly_price_cents":{"1":100,"3":90,"6":80,"12":70},
            "features":{"network":"5G","hotspot":true,"calls_and_sms":true},"available":true}]}"#;
        let catalog = Catalog::from_json(good).unwrap();
        assert_eq!(
            catalog.plans[0].profile_type(),
            "uk",
            "a plan's region by default"
        );
        let named = good.replace(
            r#""available":true"#,
            r#""available":true,"profile_type":"uk-5g.v2""#,
        );
        let named = Catalog::from_json(&named).unwrap();
        assert_eq!(named.plans[0].profile_type(), "uk-5g.v2");
        for (from, to) in [
            (r#""12":70"#, r#""12":0"#),
            (r#""12":70"#, r#""12":100000001"#),
            (r#""id":"a""#, r#""id":"A B""#),
            (r#"["GB"]"#, r#"["GBR"]"#),
            (r#""USD""#, r#""usd""#),
            (r#""validity_days":30"#, r#""validity_days":0"#),
            (
                r#""available":true"#,
                r#""available":true,"profile_type":"""#,
            ),
            (
                r#""available":true"#,
                r#""available":true,"profile_type":"a b""#,
            ),
        ] {
            let bad = good.replace(from, to);
            assert!(Catalog::from_json(&bad).is_err(), "{to}");
        }
        let plan = &good[good.find("[{").unwrap() + 1..good.rfind(']').unwrap()];
        let twice = format!(r#"{{"currency":"USD","plans":[{plan},{plan}]}}"#);
        let err = Catalog::from_json(&twice).unwrap_err().to_string();
        assert!(err.contains("duplicate id"), "{err}");
        let with_addon =
            |addon: &str| format!(r#"{}],"addons":[{addon}]}}"#, &good[..good.len() - 2]);
        let addon = r#"{"id":"b","name":"B","region":"uk","data_mb":1000,"price_cents":300,"available":true}"#;
        assert!(Catalog::from_json(&with_addon(addon)).is_ok());
        for (from, to) in [
            (r#""region":"uk""#, r#""region":"asia""#),
            (r#""id":"b""#, r#""id":"renewal-1m""#),
            (r#""price_cents":300"#, r#""price_cents":0"#),
            (
                r#""price_cents":300"#,
                r#""price_cents":9223372036854775807"#,
            ),
            (r#""data_mb":1000"#, r#""data_mb":0"#),
        ] {
            let bad = with_addon(&addon.replace(from, to));
            assert!(Catalog::from_json(&bad).is_err(), "{to}");
        }
    }

    #[test]
    fn add_ons_are_sold_for_the_plans_of_their_region() {
        let catalog = Catalog::default_catalog();
        let eu = catalog.get("eu-roam-50").unwrap();
        let ids: Vec<_> = catalog.addons_for(eu).map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["eu-boost-1", "eu-boost-5", "eu-boost-10"]);
        let uk = catalog.get("uk-lite-10").unwrap();
        assert!(catalog.addons_for(uk).all(|a| a.region == "uk"));
        assert!(catalog
            .plans
            .iter()
            .all(|p| catalog.addons_for(p).count() > 0));
    }
}
