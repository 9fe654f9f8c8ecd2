//! Resource handles: `client.plans()`, `client.orders()`, `client.esims()`,
//! `client.account()`, `client.webhooks()`, `client.sandbox()`. Every call returns a
//! [`Request`]: `.await` it, or set its options first ([`crate::request`]).

use oytel_types::{
    AccountResponse, CancelRequest, CancelResponse, CreateWebhookEndpoint, DeliveryAttempt, Esim,
    EsimResponse, ListEsimsQuery, ListOrdersQuery, ListTransactionsQuery, Order, OrderResponse,
    PackagesResponse, Page, PageQuery, Plan, PlanResponse, PlansQuery, PlansResponse,
    ProvisionRequest, ProvisionResponse, RedeliverResponse, SandboxUsageRequest, StatusResponse,
    TestEventResponse, TopUpOffersResponse, TopUpRequest, TopUpResponse, Transaction,
    UpdateAccount, UpdateWebhookEndpoint, WebhookEndpoint, WebhookEndpointCreated,
    WebhookEndpointResponse, WebhookSecretResponse,
};
use reqwest::{Method, StatusCode};

use crate::client::OytelClient;
use crate::error::{Error, Result};
use crate::paginate::Paginated;
use crate::request::{Answer, Call, Request};

/// The plan catalog. Lists are cached as the API allows (`Cache-Control: max-age`), then
/// revalidated with `If-None-Match`, so polling plans costs a `304` at most.
#[derive(Debug, Clone, Copy)]
pub struct Plans<'a> {
    pub(crate) client: &'a OytelClient,
}

impl Plans<'_> {
    /// Every plan.
    pub fn list(&self) -> Request<PlansResponse> {
        self.list_filtered(&PlansQuery::default())
    }

    /// The plans working in a country and/or belonging to a region.
    pub fn list_filtered(&self, query: &PlansQuery) -> Request<PlansResponse> {
        let mut fresh = None;
        let call = Call::get(&["api", "v1", "plans"])
            .query(query)
            .map(|mut call| {
                let cache_key = call.query.clone().unwrap_or_default();
                if let Some((is_fresh, etag, plans)) = self.client.cached_plans(&cache_key) {
                    call.if_none_match = etag;
                    fresh = is_fresh.then_some(plans);
                }
                call
            });
        Request::new(self.client, call, decode_plans).ready(fresh)
    }

    /// One plan.
    pub fn get(&self, plan_id: &str) -> Request<Plan> {
        Request::new(
            self.client,
            Ok(Call::get(&["api", "v1", "plans", plan_id])),
            |_, _, answer| Ok(answer.json::<PlanResponse>()?.plan),
        )
    }
}

/// Reads a plans answer: a `304` is the cached list, kept fresh again; a list is cached.
fn decode_plans(client: &OytelClient, call: &Call, answer: Answer) -> Result<PlansResponse> {
    let cache_key = call.query.clone().unwrap_or_default();
    if answer.status == StatusCode::NOT_MODIFIED {
        return client
            .refresh_plans(&cache_key, &answer.headers)
            .ok_or_else(|| Error::Decode {
                status: 304,
                message: "not modified, but nothing is cached".into(),
                request_id: answer.request_id(),
            });
    }
    let plans: PlansResponse = answer.json()?;
    client.cache_plans(&cache_key, &answer.headers, plans.clone());
    Ok(plans)
}

/// Orders: provisioning an eSIM is placing an order.
#[derive(Debug, Clone, Copy)]
pub struct Orders<'a> {
    pub(crate) client: &'a OytelClient,
}

impl Orders<'_> {
    /// Orders an eSIM: one call creates the order, the eSIM and the charge. It is sent with
    /// a fresh `Idempotency-Key` (or yours: `.idempotency_key(checkout_id)`), reused for
    /// its own retries; if it still fails, its error names the key
    /// ([`Error::idempotency_key`]): send the order again with that key and the server
    /// answers the first outcome, never a second eSIM.
    pub fn create(&self, request: &ProvisionRequest) -> Request<ProvisionResponse> {
        Request::json(
            self.client,
            Call::paid(&["api", "v1", "esim", "provision"], request),
        )
    }

    /// [`create`](Self::create) with your own `Idempotency-Key` (e.g. your checkout id).
    pub fn create_with_key(
        &self,
        request: &ProvisionRequest,
        idempotency_key: &str,
    ) -> Request<ProvisionResponse> {
        self.create(request).idempotency_key(idempotency_key)
    }

    /// One order.
    pub fn get(&self, order_id: &str) -> Request<Order> {
        Request::new(
            self.client,
            Ok(Call::get(&["api", "v1", "orders", order_id])),
            |_, _, answer| Ok(answer.json::<OrderResponse>()?.order),
        )
    }

    /// One page of orders, newest first.
    pub fn list(&self, query: &ListOrdersQuery) -> Request<Page<Order>> {
        Request::json(
            self.client,
            Call::get(&["api", "v1", "orders"]).query(query),
        )
    }

    /// Every order matching `query`, page after page ([`Paginated`]).
    pub fn list_all(&self, query: ListOrdersQuery) -> Paginated<Order> {
        Paginated::new(self.client, query, |client, query| {
            client.orders().list(&query)
        })
    }
}

/// eSIMs.
#[derive(Debug, Clone, Copy)]
pub struct Esims<'a> {
    pub(crate) client: &'a OytelClient,
}

impl Esims<'_> {
    /// An eSIM, with its activation code and `qr_code_url`.
    pub fn get(&self, esim_id: &str) -> Request<Esim> {
        Request::new(
            self.client,
            Ok(Call::get(&["api", "v1", "esim", esim_id])),
            |_, _, answer| Ok(answer.json::<EsimResponse>()?.esim),
        )
    }

    /// An eSIM's status, usage and expiry.
    pub fn status(&self, esim_id: &str) -> Request<StatusResponse> {
        Request::json(
            self.client,
            Ok(Call::get(&["api", "v1", "esim", esim_id, "status"])),
        )
    }

    /// Suspends an active eSIM (`esim.suspended`); a suspended one stays as it is, so the
    /// call is retried safely.
    pub fn suspend(&self, esim_id: &str) -> Request<StatusResponse> {
        let path = ["api", "v1", "esim", esim_id, "suspend"];
        Request::json(
            self.client,
            Call::repeatable(Method::POST, &path, None::<&()>),
        )
    }

    /// Resumes a suspended eSIM (`esim.resumed`); an active one stays as it is. An eSIM the
    /// operator suspended gives `ErrorCode::SuspendedByOperator`.
    pub fn resume(&self, esim_id: &str) -> Request<StatusResponse> {
        let path = ["api", "v1", "esim", esim_id, "resume"];
        Request::json(
            self.client,
            Call::repeatable(Method::POST, &path, None::<&()>),
        )
    }

    /// Cancels an eSIM, with a refund by the server's rules (see `RefundInfo`). A paid call:
    /// sent with an idempotency key, as [`Orders::create`] is; a second cancellation of the
    /// same eSIM answers the first anyway.
    pub fn cancel(&self, esim_id: &str, request: &CancelRequest) -> Request<CancelResponse> {
        let path = ["api", "v1", "esim", esim_id, "cancel"];
        Request::json(self.client, Call::paid(&path, request))
    }

    /// [`cancel`](Self::cancel) with your own `Idempotency-Key`.
    pub fn cancel_with_key(
        &self,
        esim_id: &str,
        request: &CancelRequest,
        idempotency_key: &str,
    ) -> Request<CancelResponse> {
        self.cancel(esim_id, request)
            .idempotency_key(idempotency_key)
    }

    /// The eSIM's packages, the first first (the plan it was provisioned with, then the
    /// renewals bought), each with its state, allowance, usage and validity.
    pub fn packages(&self, esim_id: &str) -> Request<PackagesResponse> {
        Request::json(
            self.client,
            Ok(Call::get(&["api", "v1", "esim", esim_id, "packages"])),
        )
    }

    /// The top-ups that may be bought for this eSIM now: its region's data add-ons and a
    /// renewal of its plan per term, with prices.
    pub fn topups(&self, esim_id: &str) -> Request<TopUpOffersResponse> {
        Request::json(
            self.client,
            Ok(Call::get(&["api", "v1", "esim", esim_id, "topups"])),
        )
    }

    /// Buys a top-up (`topup_id` from [`topups`](Self::topups)): charged like a
    /// provisioning, and a paid call like [`Orders::create`] (retry a failure with its
    /// error's [`idempotency_key`](Error::idempotency_key)).
    pub fn buy_topup(&self, esim_id: &str, topup_id: &str) -> Request<TopUpResponse> {
        let path = ["api", "v1", "esim", esim_id, "topups"];
        let request = TopUpRequest::new(topup_id);
        Request::json(self.client, Call::paid(&path, &request))
    }

    /// [`buy_topup`](Self::buy_topup) with your own `Idempotency-Key`: a repeat answers the
    /// first purchase.
    pub fn buy_topup_with_key(
        &self,
        esim_id: &str,
        topup_id: &str,
        idempotency_key: &str,
    ) -> Request<TopUpResponse> {
        self.buy_topup(esim_id, topup_id)
            .idempotency_key(idempotency_key)
    }

    /// One page of eSIMs, newest first.
    pub fn list(&self, query: &ListEsimsQuery) -> Request<Page<Esim>> {
        Request::json(self.client, Call::get(&["api", "v1", "esims"]).query(query))
    }

    /// Every eSIM matching `query`, page after page ([`Paginated`]).
    pub fn list_all(&self, query: ListEsimsQuery) -> Paginated<Esim> {
        Paginated::new(self.client, query, |client, query| {
            client.esims().list(&query)
        })
    }
}

/// The caller's account.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    pub(crate) client: &'a OytelClient,
}

impl Account<'_> {
    /// Partner, environment, balance, minimum balance and limits.
    pub fn get(&self) -> Request<AccountResponse> {
        Request::json(self.client, Ok(Call::get(&["api", "v1", "account"])))
    }

    /// Changes the account (the low-balance threshold; live keys only). Setting a value
    /// again changes nothing, so it is retried safely.
    pub fn update(&self, update: &UpdateAccount) -> Request<AccountResponse> {
        let path = ["api", "v1", "account"];
        Request::json(
            self.client,
            Call::repeatable(Method::PATCH, &path, Some(update)),
        )
    }

    /// A page of the statement: the live balance's credits and charges, newest first,
    /// between `query.from` and `query.to` when given (empty for a sandbox key).
    pub fn transactions(&self, query: &ListTransactionsQuery) -> Request<Page<Transaction>> {
        Request::json(
            self.client,
            Call::get(&["api", "v1", "account", "transactions"]).query(query),
        )
    }

    /// Every transaction of the statement matching `query`, page after page
    /// ([`Paginated`]).
    pub fn transactions_all(&self, query: ListTransactionsQuery) -> Paginated<Transaction> {
        Paginated::new(self.client, query, |client, query| {
            client.account().transactions(&query)
        })
    }
}

impl OytelClient {
    /// The plan catalog.
    pub fn plans(&self) -> Plans<'_> {
        Plans { client: self }
    }

    /// Orders (provisioning).
    pub fn orders(&self) -> Orders<'_> {
        Orders { client: self }
    }

    /// eSIMs.
    pub fn esims(&self) -> Esims<'_> {
        Esims { client: self }
    }

    /// The caller's account.
    pub fn account(&self) -> Account<'_> {
        Account { client: self }
    }
}

/// Webhook endpoints, signing secrets, redelivery and the delivery log.
#[derive(Debug, Clone, Copy)]
pub struct Webhooks<'a> {
    pub(crate) client: &'a OytelClient,
}

const ENDPOINTS: [&str; 4] = ["api", "v1", "webhooks", "endpoints"];

impl Webhooks<'_> {
    /// Creates an endpoint; the answer holds its secret, shown only then. Sent once (a
    /// retry could create a second endpoint).
    pub fn create_endpoint(
        &self,
        request: &CreateWebhookEndpoint,
    ) -> Request<WebhookEndpointCreated> {
        Request::json(
            self.client,
            Call::once(Method::POST, &ENDPOINTS, Some(request)),
        )
    }

    /// Every endpoint.
    pub fn list_endpoints(&self) -> Request<Vec<WebhookEndpoint>> {
        Request::new(self.client, Ok(Call::get(&ENDPOINTS)), |_, _, answer| {
            Ok(answer.json::<Page<WebhookEndpoint>>()?.data)
        })
    }

    /// Every endpoint, as a stream ([`Paginated`]) like the other lists.
    pub fn list_all_endpoints(&self) -> Paginated<WebhookEndpoint> {
        Paginated::new(self.client, PageQuery::default(), |client, page| {
            Request::json(client, Call::get(&ENDPOINTS).query(&page))
        })
    }

    /// One endpoint.
    pub fn get_endpoint(&self, id: &str) -> Request<WebhookEndpoint> {
        let path = ["api", "v1", "webhooks", "endpoints", id];
        Request::new(self.client, Ok(Call::get(&path)), endpoint)
    }

    /// Changes an endpoint (`enabled: Some(true)` re-enables it). Setting the same values
    /// again changes nothing, so it is retried safely.
    pub fn update_endpoint(
        &self,
        id: &str,
        change: &UpdateWebhookEndpoint,
    ) -> Request<WebhookEndpoint> {
        let path = ["api", "v1", "webhooks", "endpoints", id];
        Request::new(
            self.client,
            Call::repeatable(Method::PATCH, &path, Some(change)),
            endpoint,
        )
    }

    /// Deletes an endpoint.
    pub fn delete_endpoint(&self, id: &str) -> Request<()> {
        let path = ["api", "v1", "webhooks", "endpoints", id];
        Request::new(
            self.client,
            Call::once(Method::DELETE, &path, None::<&()>),
            |_, _, _| Ok(()),
        )
    }

    /// Gives an endpoint a new secret; the old one signs beside it for 24 hours. Sent once
    /// (a second rotation would replace the secret just received).
    pub fn rotate_endpoint_secret(&self, id: &str) -> Request<WebhookSecretResponse> {
        let path = ["api", "v1", "webhooks", "endpoints", id, "rotate-secret"];
        Request::json(self.client, Call::once(Method::POST, &path, None::<&()>))
    }

    /// Sends a `webhook.test` event to an endpoint.
    pub fn test_endpoint(&self, id: &str) -> Request<TestEventResponse> {
        let path = ["api", "v1", "webhooks", "endpoints", id, "test"];
        Request::json(self.client, Call::once(Method::POST, &path, None::<&()>))
    }

    /// A page of an endpoint's delivery attempts (or of all, with `None`), newest first.
    pub fn attempts(
        &self,
        endpoint_id: Option<&str>,
        page: &PageQuery,
    ) -> Request<Page<DeliveryAttempt>> {
        let call = match endpoint_id {
            Some(id) => Call::get(&["api", "v1", "webhooks", "endpoints", id, "attempts"]),
            None => Call::get(&["api", "v1", "webhooks", "attempts"]),
        };
        Request::json(self.client, call.query(page))
    }

    /// Every delivery attempt of an endpoint (or of all, with `None`), newest first
    /// ([`Paginated`]).
    pub fn attempts_all(&self, endpoint_id: Option<&str>) -> Paginated<DeliveryAttempt> {
        match endpoint_id {
            Some(id) => {
                let id = id.to_owned();
                Paginated::new(self.client, PageQuery::default(), move |client, page| {
                    client.webhooks().attempts(Some(&id), &page)
                })
            }
            None => Paginated::new(self.client, PageQuery::default(), |client, page| {
                client.webhooks().attempts(None, &page)
            }),
        }
    }

    /// Sends an event again to its current destinations.
    pub fn redeliver(&self, event_id: &str) -> Request<RedeliverResponse> {
        let path = ["api", "v1", "webhooks", "events", event_id, "redeliver"];
        Request::json(self.client, Call::once(Method::POST, &path, None::<&()>))
    }

    /// The secret signing deliveries to per-eSIM `webhook_url`s.
    pub fn signing_secret(&self) -> Request<WebhookSecretResponse> {
        Request::json(
            self.client,
            Ok(Call::get(&["api", "v1", "webhooks", "secret"])),
        )
    }

    /// Rotates that secret; the old one signs beside the new one for 24 hours. Sent once.
    pub fn rotate_signing_secret(&self) -> Request<WebhookSecretResponse> {
        let path = ["api", "v1", "webhooks", "secret", "rotate"];
        Request::json(self.client, Call::once(Method::POST, &path, None::<&()>))
    }
}

fn endpoint(_: &OytelClient, _: &Call, answer: Answer) -> Result<WebhookEndpoint> {
    Ok(answer.json::<WebhookEndpointResponse>()?.endpoint)
}

/// Sandbox simulation (sandbox keys only): activation, usage, expiry on demand.
#[derive(Debug, Clone, Copy)]
pub struct Sandbox<'a> {
    pub(crate) client: &'a OytelClient,
}

impl Sandbox<'_> {
    /// Sent once: a simulated step is not repeated behind your back.
    fn act(
        &self,
        esim_id: &str,
        action: &str,
        body: Option<&SandboxUsageRequest>,
    ) -> Request<StatusResponse> {
        let path = ["api", "v1", "sandbox", "esim", esim_id, action];
        Request::json(self.client, Call::once(Method::POST, &path, body))
    }

    /// The customer installs the eSIM (`esim.activated`).
    pub fn activate(&self, esim_id: &str) -> Request<StatusResponse> {
        self.act(esim_id, "activate", None)
    }

    /// The eSIM uses data, calls and SMS (`usage.threshold` at 50, 80 and 100 %).
    pub fn add_usage(&self, esim_id: &str, usage: &SandboxUsageRequest) -> Request<StatusResponse> {
        self.act(esim_id, "usage", Some(usage))
    }

    /// The term ends (`esim.expired`).
    pub fn expire(&self, esim_id: &str) -> Request<StatusResponse> {
        self.act(esim_id, "expire", None)
    }
}

impl OytelClient {
    /// Webhook endpoints, secrets, redelivery and the delivery log.
    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks { client: self }
    }

    /// Sandbox simulation.
    pub fn sandbox(&self) -> Sandbox<'_> {
        Sandbox { client: self }
    }
}
