//! Resource handles: `client.plans()`, `client.orders()`, `client.esims()`,
//! `client.account()`.

use futures_util::stream::{self, Stream, TryStreamExt};
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

use crate::client::{new_idempotency_key, Call, OytelClient};
use crate::error::{Error, Result};

/// The plan catalog. Lists are cached as the API allows (`Cache-Control: max-age`), then
/// revalidated with `If-None-Match`, so polling plans costs a `304` at most.
#[derive(Debug, Clone, Copy)]
pub struct Plans<'a> {
    pub(crate) client: &'a OytelClient,
}

impl Plans<'_> {
    /// Every plan.
    pub async fn list(&self) -> Result<PlansResponse> {
        self.list_filtered(&PlansQuery::default()).await
    }

    /// The plans working in a country and/or belonging to a region.
    pub async fn list_filtered(&self, query: &PlansQuery) -> Result<PlansResponse> {
        let call = Call::get(&["api", "v1", "plans"]).query(query)?;
        let cache_key = call.query.clone().unwrap_or_default();
        let cached = self.client.cached_plans(&cache_key);
        if let Some((true, _, plans)) = &cached {
            return Ok(plans.clone());
        }
        let call = Call {
            if_none_match: cached.and_then(|(_, etag, _)| etag),
            ..call
        };
        let answer = self.client.execute(&call).await?;
        if answer.status == StatusCode::NOT_MODIFIED {
            if let Some(plans) = self.client.refresh_plans(&cache_key, &answer.headers) {
                return Ok(plans);
            }
            return Err(Error::Decode {
                status: 304,
                message: "not modified, but nothing is cached".into(),
                request_id: answer.request_id(),
            });
        }
        let plans: PlansResponse = answer.json()?;
        self.client
            .cache_plans(&cache_key, &answer.headers, plans.clone());
        Ok(plans)
    }

    /// One plan.
    pub async fn get(&self, plan_id: &str) -> Result<Plan> {
        let answer: PlanResponse = self
            .client
            .get_json(Call::get(&["api", "v1", "plans", plan_id]))
            .await?;
        Ok(answer.plan)
    }
}

/// Orders: provisioning an eSIM is placing an order.
#[derive(Debug, Clone, Copy)]
pub struct Orders<'a> {
    pub(crate) client: &'a OytelClient,
}

impl Orders<'_> {
    /// Orders an eSIM: one call creates the order, the eSIM and the charge. The SDK sends a
    /// fresh `Idempotency-Key` and reuses it for this call's retries, so a retried order is
    /// never charged twice.
    pub async fn create(&self, request: &ProvisionRequest) -> Result<ProvisionResponse> {
        self.create_with_key(request, &new_idempotency_key()).await
    }

    /// Orders an eSIM with your own `Idempotency-Key` (e.g. your checkout id), so that a retry
    /// after your own process restarts cannot order twice either.
    pub async fn create_with_key(
        &self,
        request: &ProvisionRequest,
        idempotency_key: &str,
    ) -> Result<ProvisionResponse> {
        let call = Call::post(
            &["api", "v1", "esim", "provision"],
            request,
            idempotency_key.to_owned(),
        )?;
        self.client.execute(&call).await?.json()
    }

    /// One order.
    pub async fn get(&self, order_id: &str) -> Result<Order> {
        let answer: OrderResponse = self
            .client
            .get_json(Call::get(&["api", "v1", "orders", order_id]))
            .await?;
        Ok(answer.order)
    }

    /// One page of orders, newest first.
    pub async fn list(&self, query: &ListOrdersQuery) -> Result<Page<Order>> {
        self.client
            .get_json(Call::get(&["api", "v1", "orders"]).query(query)?)
            .await
    }
}

/// eSIMs.
#[derive(Debug, Clone, Copy)]
pub struct Esims<'a> {
    pub(crate) client: &'a OytelClient,
}

impl<'a> Esims<'a> {
    /// An eSIM, with its activation code and `qr_code_url`.
    pub async fn get(&self, esim_id: &str) -> Result<Esim> {
        let answer: EsimResponse = self
            .client
            .get_json(Call::get(&["api", "v1", "esim", esim_id]))
            .await?;
        Ok(answer.esim)
    }

    /// An eSIM's status, usage and expiry.
    pub async fn status(&self, esim_id: &str) -> Result<StatusResponse> {
        self.client
            .get_json(Call::get(&["api", "v1", "esim", esim_id, "status"]))
            .await
    }

    /// Suspends an active eSIM (`esim.suspended`); a suspended one stays as it is, so the
    /// call is retried safely.
    pub async fn suspend(&self, esim_id: &str) -> Result<StatusResponse> {
        let path = ["api", "v1", "esim", esim_id, "suspend"];
        self.client
            .execute(&Call::repeatable_post(&path))
            .await?
            .json()
    }

    /// Cancels an eSIM, with a refund by the server's rules (see `RefundInfo`). Sent with a
    /// fresh `Idempotency-Key` and retried with it; a second cancellation of the same eSIM
    /// answers the first anyway.
    pub async fn cancel(&self, esim_id: &str, request: &CancelRequest) -> Result<CancelResponse> {
        self.cancel_with_key(esim_id, request, &new_idempotency_key())
            .await
    }

    /// Cancels an eSIM with your own `Idempotency-Key`.
    pub async fn cancel_with_key(
        &self,
        esim_id: &str,
        request: &CancelRequest,
        idempotency_key: &str,
    ) -> Result<CancelResponse> {
        let path = ["api", "v1", "esim", esim_id, "cancel"];
        let call = Call::post(&path, request, idempotency_key.to_owned())?;
        self.client.execute(&call).await?.json()
    }

    /// The eSIM's packages, the first first (the plan it was provisioned with, then the
    /// renewals bought), each with its state, allowance, usage and validity.
    pub async fn packages(&self, esim_id: &str) -> Result<PackagesResponse> {
        self.client
            .get_json(Call::get(&["api", "v1", "esim", esim_id, "packages"]))
            .await
    }

    /// The top-ups that may be bought for this eSIM now: its region's data add-ons and a
    /// renewal of its plan per term, with prices.
    pub async fn topups(&self, esim_id: &str) -> Result<TopUpOffersResponse> {
        self.client
            .get_json(Call::get(&["api", "v1", "esim", esim_id, "topups"]))
            .await
    }

    /// Buys a top-up (`topup_id` from [`topups`](Self::topups)): charged like a
    /// provisioning. Sent with a fresh `Idempotency-Key` and retried with it; to retry after
    /// this call returns an error, use [`buy_topup_with_key`](Self::buy_topup_with_key) with
    /// a key you keep, or a second top-up may be bought.
    pub async fn buy_topup(&self, esim_id: &str, topup_id: &str) -> Result<TopUpResponse> {
        self.buy_topup_with_key(esim_id, topup_id, &new_idempotency_key())
            .await
    }

    /// Buys a top-up with your own `Idempotency-Key`: a repeat answers the first purchase.
    pub async fn buy_topup_with_key(
        &self,
        esim_id: &str,
        topup_id: &str,
        idempotency_key: &str,
    ) -> Result<TopUpResponse> {
        let path = ["api", "v1", "esim", esim_id, "topups"];
        let request = TopUpRequest {
            topup_id: topup_id.to_owned(),
        };
        let call = Call::post(&path, &request, idempotency_key.to_owned())?;
        self.client.execute(&call).await?.json()
    }

    /// Resumes a suspended eSIM (`esim.resumed`); an active one stays as it is. An eSIM the
    /// operator suspended gives `ErrorCode::SuspendedByOperator`.
    pub async fn resume(&self, esim_id: &str) -> Result<StatusResponse> {
        let path = ["api", "v1", "esim", esim_id, "resume"];
        self.client
            .execute(&Call::repeatable_post(&path))
            .await?
            .json()
    }

    /// One page of eSIMs, newest first.
    pub async fn list(&self, query: &ListEsimsQuery) -> Result<Page<Esim>> {
        self.client
            .get_json(Call::get(&["api", "v1", "esims"]).query(query)?)
            .await
    }

    /// Every eSIM matching `query`, page after page, as a stream.
    ///
    /// ```no_run
    /// # async fn run(client: oytel_client::OytelClient) -> oytel_client::Result<()> {
    /// use futures_util::TryStreamExt;
    /// let all: Vec<_> = client.esims().list_all(Default::default()).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list_all(&self, query: ListEsimsQuery) -> impl Stream<Item = Result<Esim>> + 'a {
        let client = self.client;
        stream::try_unfold(Some(query), move |next| async move {
            let Some(query) = next else {
                return Ok(None);
            };
            let page = client.esims().list(&query).await?;
            let following = page.next_cursor.map(|cursor| ListEsimsQuery {
                cursor: Some(cursor),
                ..query
            });
            Ok(Some((
                stream::iter(page.data.into_iter().map(Ok)),
                following,
            )))
        })
        .try_flatten()
    }
}

/// The caller's account.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    pub(crate) client: &'a OytelClient,
}

impl Account<'_> {
    /// Partner, environment, balance, minimum balance and limits.
    pub async fn get(&self) -> Result<AccountResponse> {
        self.client
            .get_json(Call::get(&["api", "v1", "account"]))
            .await
    }

    /// Changes the account (the low-balance threshold; live keys only).
    pub async fn update(&self, update: &UpdateAccount) -> Result<AccountResponse> {
        let path = ["api", "v1", "account"];
        // Setting a value again changes nothing: safe to retry.
        let call = Call {
            repeatable: true,
            ..Call::once(Method::PATCH, &path, Some(update))?
        };
        self.client.execute(&call).await?.json()
    }

    /// A page of the statement: the live balance's credits and charges, newest first,
    /// between `query.from` and `query.to` when given (empty for a sandbox key).
    pub async fn transactions(&self, query: &ListTransactionsQuery) -> Result<Page<Transaction>> {
        self.client
            .get_json(Call::get(&["api", "v1", "account", "transactions"]).query(query)?)
            .await
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
    /// Creates an endpoint; the answer holds its secret, shown only then.
    pub async fn create_endpoint(
        &self,
        request: &CreateWebhookEndpoint,
    ) -> Result<WebhookEndpointCreated> {
        let call = Call::once(Method::POST, &ENDPOINTS, Some(request))?;
        self.client.execute(&call).await?.json()
    }

    /// Every endpoint.
    pub async fn list_endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        let page: Page<WebhookEndpoint> = self.client.get_json(Call::get(&ENDPOINTS)).await?;
        Ok(page.data)
    }

    /// One endpoint.
    pub async fn get_endpoint(&self, id: &str) -> Result<WebhookEndpoint> {
        let path = ["api", "v1", "webhooks", "endpoints", id];
        let answer: WebhookEndpointResponse = self.client.get_json(Call::get(&path)).await?;
        Ok(answer.endpoint)
    }

    /// Changes an endpoint (`enabled: Some(true)` re-enables it).
    pub async fn update_endpoint(
        &self,
        id: &str,
        change: &UpdateWebhookEndpoint,
    ) -> Result<WebhookEndpoint> {
        let path = ["api", "v1", "webhooks", "endpoints", id];
        let call = Call::once(Method::PATCH, &path, Some(change))?;
        let answer: WebhookEndpointResponse = self.client.execute(&call).await?.json()?;
        Ok(answer.endpoint)
    }

    /// Deletes an endpoint.
    pub async fn delete_endpoint(&self, id: &str) -> Result<()> {
        let path = ["api", "v1", "webhooks", "endpoints", id];
        self.client
            .execute(&Call::once(Method::DELETE, &path, None::<&()>)?)
            .await?;
        Ok(())
    }

    /// Gives an endpoint a new secret; the old one signs beside it for 24 hours.
    pub async fn rotate_endpoint_secret(&self, id: &str) -> Result<WebhookSecretResponse> {
        let path = ["api", "v1", "webhooks", "endpoints", id, "rotate-secret"];
        self.client
            .execute(&Call::once(Method::POST, &path, None::<&()>)?)
            .await?
            .json()
    }

    /// Sends a `webhook.test` event to an endpoint.
    pub async fn test_endpoint(&self, id: &str) -> Result<TestEventResponse> {
        let path = ["api", "v1", "webhooks", "endpoints", id, "test"];
        self.client
            .execute(&Call::once(Method::POST, &path, None::<&()>)?)
            .await?
            .json()
    }

    /// A page of an endpoint's delivery attempts (or of all, with `None`), newest first.
    pub async fn attempts(
        &self,
        endpoint_id: Option<&str>,
        page: &PageQuery,
    ) -> Result<Page<DeliveryAttempt>> {
        match endpoint_id {
            Some(id) => {
                let path = ["api", "v1", "webhooks", "endpoints", id, "attempts"];
                self.client.get_json(Call::get(&path).query(page)?).await
            }
            None => {
                let path = ["api", "v1", "webhooks", "attempts"];
                self.client.get_json(Call::get(&path).query(page)?).await
            }
        }
    }

    /// Sends an event again to its current destinations.
    pub async fn redeliver(&self, event_id: &str) -> Result<RedeliverResponse> {
        let path = ["api", "v1", "webhooks", "events", event_id, "redeliver"];
        self.client
            .execute(&Call::once(Method::POST, &path, None::<&()>)?)
            .await?
            .json()
    }

    /// The secret signing deliveries to per-eSIM `webhook_url`s.
    pub async fn signing_secret(&self) -> Result<WebhookSecretResponse> {
        self.client
            .get_json(Call::get(&["api", "v1", "webhooks", "secret"]))
            .await
    }

    /// Rotates that secret; the old one signs beside the new one for 24 hours.
    pub async fn rotate_signing_secret(&self) -> Result<WebhookSecretResponse> {
        let path = ["api", "v1", "webhooks", "secret", "rotate"];
        self.client
            .execute(&Call::once(Method::POST, &path, None::<&()>)?)
            .await?
            .json()
    }
}

/// Sandbox simulation (sandbox keys only): activation, usage, expiry on demand.
#[derive(Debug, Clone, Copy)]
pub struct Sandbox<'a> {
    pub(crate) client: &'a OytelClient,
}

impl Sandbox<'_> {
    async fn act(
        &self,
        esim_id: &str,
        action: &str,
        body: Option<&SandboxUsageRequest>,
    ) -> Result<StatusResponse> {
        let path = ["api", "v1", "sandbox", "esim", esim_id, action];
        self.client
            .execute(&Call::once(Method::POST, &path, body)?)
            .await?
            .json()
    }

    /// The customer installs the eSIM (`esim.activated`).
    pub async fn activate(&self, esim_id: &str) -> Result<StatusResponse> {
        self.act(esim_id, "activate", None).await
    }

    /// The eSIM uses data, calls and SMS (`usage.threshold` at 50, 80 and 100 %).
    pub async fn add_usage(
        &self,
        esim_id: &str,
        usage: &SandboxUsageRequest,
    ) -> Result<StatusResponse> {
        self.act(esim_id, "usage", Some(usage)).await
    }

    /// The term ends (`esim.expired`).
    pub async fn expire(&self, esim_id: &str) -> Result<StatusResponse> {
        self.act(esim_id, "expire", None).await
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
