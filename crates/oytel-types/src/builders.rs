//! Building requests: a constructor with what a request needs, a setter for each thing it
//! may carry. Request and query types are `#[non_exhaustive]`, so that a field added later
//! does not break a caller; build them this way (or from `Default` where every field is
//! optional).
//!
//! ```
//! use oytel_types::{CreateWebhookEndpoint, EsimStatus, EventType, ListEsimsQuery, ProvisionRequest};
//!
//! let order = ProvisionRequest::new("eu-roam-50", "jane@example.com", "Jane Doe")
//!     .term_months(3)
//!     .reference_id("checkout-7f3a");
//! let active = ListEsimsQuery::new().status(EsimStatus::Active).limit(50);
//! let hook = CreateWebhookEndpoint::new("https://example.com/oytel")
//!     .events(vec![EventType::EsimActivated]);
//! # let _ = (order, active, hook);
//! ```

use chrono::{DateTime, Utc};

use crate::{
    Amount, CancelRequest, CreateWebhookEndpoint, EsimStatus, EventType, ListEsimsQuery,
    ListOrdersQuery, ListTransactionsQuery, PageQuery, PlansQuery, ProvisionRequest,
    SandboxUsageRequest, TopUpRequest, UpdateAccount, UpdateWebhookEndpoint,
};

/// Setters that set a field to what they are given: `(field: argument type => value)`.
macro_rules! setters {
    ($ty:ty { $($(#[$doc:meta])* $field:ident: $arg:ty => $value:expr;)* }) => {
        impl $ty {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $field(mut self, $field: $arg) -> Self {
                    self.$field = $value;
                    self
                }
            )*
        }
    };
}

/// `new()`, the same as `default()`, for the requests whose fields are all optional.
macro_rules! empty {
    ($($ty:ty),*) => {$(
        impl $ty {
            /// Nothing set (what `Default` gives).
            pub fn new() -> Self {
                Self::default()
            }
        }
    )*};
}

empty!(
    CancelRequest,
    UpdateAccount,
    PlansQuery,
    ListEsimsQuery,
    ListOrdersQuery,
    ListTransactionsQuery,
    PageQuery,
    UpdateWebhookEndpoint
);

impl ProvisionRequest {
    /// An order of `plan_id` for a customer, for one month.
    pub fn new(
        plan_id: impl Into<String>,
        customer_email: impl Into<String>,
        customer_name: impl Into<String>,
    ) -> ProvisionRequest {
        ProvisionRequest {
            plan_id: plan_id.into(),
            term_months: 1,
            customer_email: customer_email.into(),
            customer_name: customer_name.into(),
            reference_id: None,
            webhook_url: None,
        }
    }
}

setters!(ProvisionRequest {
    /// The term: 1, 3, 6 or 12 months.
    term_months: u32 => term_months;
    /// Your own reference (at most 128 characters).
    reference_id: impl Into<String> => Some(reference_id.into());
    /// An `https` URL that receives this eSIM's webhook events.
    webhook_url: impl Into<String> => Some(webhook_url.into());
});

setters!(CancelRequest {
    /// Why (kept with the eSIM).
    reason: impl Into<String> => Some(reason.into());
});

setters!(UpdateAccount {
    /// The live balance below which `account.balance_low` is sent; `None` removes it.
    low_balance_threshold: Option<Amount> => Some(low_balance_threshold);
});

setters!(PlansQuery {
    /// Plans working in this country (ISO 3166-1 alpha-2, e.g. `GB`).
    country: impl Into<String> => Some(country.into());
    /// Plans of this region (e.g. `europe`).
    region: impl Into<String> => Some(region.into());
});

setters!(ListEsimsQuery {
    /// Items per page, 1 to 100.
    limit: u32 => Some(limit);
    /// The `next_cursor` of the previous page.
    cursor: impl Into<String> => Some(cursor.into());
    /// Only eSIMs in this state.
    status: EsimStatus => Some(status);
    /// Only eSIMs with this reference.
    reference_id: impl Into<String> => Some(reference_id.into());
    /// Only eSIMs of this customer.
    customer_email: impl Into<String> => Some(customer_email.into());
});

setters!(ListOrdersQuery {
    /// Items per page, 1 to 100.
    limit: u32 => Some(limit);
    /// The `next_cursor` of the previous page.
    cursor: impl Into<String> => Some(cursor.into());
    /// Only orders with this reference.
    reference_id: impl Into<String> => Some(reference_id.into());
});

setters!(ListTransactionsQuery {
    /// Items per page, 1 to 100.
    limit: u32 => Some(limit);
    /// The `next_cursor` of the previous page.
    cursor: impl Into<String> => Some(cursor.into());
    /// Only transactions at or after this time.
    from: DateTime<Utc> => Some(from);
    /// Only transactions before this time.
    to: DateTime<Utc> => Some(to);
});

setters!(PageQuery {
    /// Items per page, 1 to 100.
    limit: u32 => Some(limit);
    /// The `next_cursor` of the previous page.
    cursor: impl Into<String> => Some(cursor.into());
});

impl CreateWebhookEndpoint {
    /// An endpoint at `url` (https), receiving the default events.
    pub fn new(url: impl Into<String>) -> CreateWebhookEndpoint {
        CreateWebhookEndpoint {
            url: url.into(),
            events: Vec::new(),
            description: None,
        }
    }
}

setters!(CreateWebhookEndpoint {
    /// The events it receives (none: the default ones).
    events: Vec<EventType> => events;
    /// What it is for.
    description: impl Into<String> => Some(description.into());
});

setters!(UpdateWebhookEndpoint {
    /// A new address.
    url: impl Into<String> => Some(url.into());
    /// The events it receives.
    events: Vec<EventType> => Some(events);
    /// What it is for.
    description: impl Into<String> => Some(description.into());
    /// `true` re-enables a disabled endpoint; `false` pauses it.
    enabled: bool => Some(enabled);
});

impl SandboxUsageRequest {
    /// `data_mb` of data used, no calls, no SMS.
    pub fn new(data_mb: u64) -> SandboxUsageRequest {
        SandboxUsageRequest {
            data_mb,
            calls: 0,
            sms: 0,
        }
    }
}

setters!(SandboxUsageRequest {
    /// Calls made.
    calls: u64 => calls;
    /// SMS sent.
    sms: u64 => sms;
});

impl TopUpRequest {
    /// A purchase of `topup_id` (from the eSIM's offers).
    pub fn new(topup_id: impl Into<String>) -> TopUpRequest {
        TopUpRequest {
            topup_id: topup_id.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_order_is_the_json_a_partner_would_write() {
        let order = ProvisionRequest::new("eu-roam-50", "jane@example.com", "Jane Doe")
            .term_months(3)
            .reference_id("checkout-7f3a");
        assert_eq!(
            serde_json::to_value(&order).unwrap(),
            serde_json::json!({
                "plan_id": "eu-roam-50", "term_months": 3,
                "customer_email": "jane@example.com", "customer_name": "Jane Doe",
                "reference_id": "checkout-7f3a"
            })
        );
    }

    #[test]
    fn a_threshold_is_set_or_removed() {
        let set = UpdateAccount::new().low_balance_threshold(Some(Amount::from_cents(5_000)));
        assert_eq!(
            serde_json::to_value(&set).unwrap(),
            serde_json::json!({"low_balance_threshold": 50.0})
        );
        let removed = UpdateAccount::new().low_balance_threshold(None);
        assert_eq!(
            serde_json::to_value(&removed).unwrap(),
            serde_json::json!({"low_balance_threshold": null})
        );
        assert_eq!(
            serde_json::to_value(UpdateAccount::new()).unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn queries_start_empty() {
        assert_eq!(ListEsimsQuery::new(), ListEsimsQuery::default());
        let q = ListEsimsQuery::new().status(EsimStatus::Active).limit(5);
        assert_eq!(
            (q.status, q.limit, q.cursor),
            (Some(EsimStatus::Active), Some(5), None)
        );
    }
}
