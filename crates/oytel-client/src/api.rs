//! [`OytelApi`]: every operation of the client as a trait, so that partner code can take
//! `&dyn OytelApi` (or a generic) and be unit-tested without a server, with the `mockall`
//! mock `MockOytelApi` of the `mock` feature. A test that adds a call to the client without
//! adding it here fails: `every_call_of_the_client_is_in_the_trait`.

use async_trait::async_trait;
use oytel_types::{
    AccountResponse, CancelRequest, CancelResponse, CreateWebhookEndpoint, DeliveryAttempt, Esim,
    ListEsimsQuery, ListOrdersQuery, ListTransactionsQuery, Order, PackagesResponse, Page,
    PageQuery, Plan, PlansQuery, PlansResponse, ProvisionRequest, ProvisionResponse,
    RedeliverResponse, SandboxUsageRequest, StatusResponse, TestEventResponse, TopUpOffersResponse,
    TopUpResponse, Transaction, UpdateAccount, UpdateWebhookEndpoint, WebhookEndpoint,
    WebhookEndpointCreated, WebhookSecretResponse,
};

use crate::{OytelClient, Paginated, Result};

/// Every call of the Oytel API, as [`OytelClient`] makes it with its default options: the
/// keyed variants (`…_with_key`) are how an application retries a paid call, the `list_all…`
/// streams are [`Paginated`]. Mock it with `MockOytelApi` (feature `mock`); a mocked stream
/// is [`Paginated::from_items`].
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait OytelApi: Send + Sync {
    /// `client.plans().list_filtered(query)`.
    async fn list_plans(&self, query: &PlansQuery) -> Result<PlansResponse>;
    /// `client.plans().get(id)`.
    async fn get_plan(&self, plan_id: &str) -> Result<Plan>;
    /// `client.orders().create(request)`.
    async fn create_order(&self, request: &ProvisionRequest) -> Result<ProvisionResponse>;
    /// `client.orders().create_with_key(request, key)`: the retry of a failed order, or your own key.
    async fn create_order_with_key(
        &self,
        request: &ProvisionRequest,
        idempotency_key: &str,
    ) -> Result<ProvisionResponse>;
    /// `client.orders().get(id)`.
    async fn get_order(&self, order_id: &str) -> Result<Order>;
    /// `client.orders().list(query)`.
    async fn list_orders(&self, query: &ListOrdersQuery) -> Result<Page<Order>>;
    /// `client.orders().list_all(query)`.
    fn list_all_orders(&self, query: ListOrdersQuery) -> Paginated<Order>;
    /// `client.esims().get(id)`.
    async fn get_esim(&self, esim_id: &str) -> Result<Esim>;
    /// `client.esims().status(id)`.
    async fn esim_status(&self, esim_id: &str) -> Result<StatusResponse>;
    /// `client.esims().list(query)`.
    async fn list_esims(&self, query: &ListEsimsQuery) -> Result<Page<Esim>>;
    /// `client.esims().list_all(query)`.
    fn list_all_esims(&self, query: ListEsimsQuery) -> Paginated<Esim>;
    /// `client.esims().suspend(id)`.
    async fn suspend_esim(&self, esim_id: &str) -> Result<StatusResponse>;
    /// `client.esims().resume(id)`.
    async fn resume_esim(&self, esim_id: &str) -> Result<StatusResponse>;
    /// `client.esims().cancel(id, request)`.
    async fn cancel_esim(&self, esim_id: &str, request: &CancelRequest) -> Result<CancelResponse>;
    /// `client.esims().cancel_with_key(id, request, key)`.
    async fn cancel_esim_with_key(
        &self,
        esim_id: &str,
        request: &CancelRequest,
        idempotency_key: &str,
    ) -> Result<CancelResponse>;
    /// `client.esims().packages(id)`.
    async fn list_packages(&self, esim_id: &str) -> Result<PackagesResponse>;
    /// `client.esims().topups(id)`.
    async fn list_topups(&self, esim_id: &str) -> Result<TopUpOffersResponse>;
    /// `client.esims().buy_topup(id, topup_id)`.
    async fn buy_topup(&self, esim_id: &str, topup_id: &str) -> Result<TopUpResponse>;
    /// `client.esims().buy_topup_with_key(id, topup_id, key)`.
    async fn buy_topup_with_key(
        &self,
        esim_id: &str,
        topup_id: &str,
        idempotency_key: &str,
    ) -> Result<TopUpResponse>;
    /// `client.account().get()`.
    async fn get_account(&self) -> Result<AccountResponse>;
    /// `client.account().update(update)`.
    async fn update_account(&self, update: &UpdateAccount) -> Result<AccountResponse>;
    /// `client.account().transactions(query)`.
    async fn list_transactions(&self, query: &ListTransactionsQuery) -> Result<Page<Transaction>>;
    /// `client.account().transactions_all(query)`.
    fn list_all_transactions(&self, query: ListTransactionsQuery) -> Paginated<Transaction>;
    /// `client.webhooks().create_endpoint(request)`.
    async fn create_webhook_endpoint(
        &self,
        request: &CreateWebhookEndpoint,
    ) -> Result<WebhookEndpointCreated>;
    /// `client.webhooks().list_endpoints()`.
    async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>>;
    /// `client.webhooks().list_all_endpoints()`.
    fn list_all_webhook_endpoints(&self) -> Paginated<WebhookEndpoint>;
    /// `client.webhooks().get_endpoint(id)`.
    async fn get_webhook_endpoint(&self, endpoint_id: &str) -> Result<WebhookEndpoint>;
    /// `client.webhooks().update_endpoint(id, change)`.
    async fn update_webhook_endpoint(
        &self,
        endpoint_id: &str,
        change: &UpdateWebhookEndpoint,
    ) -> Result<WebhookEndpoint>;
    /// `client.webhooks().delete_endpoint(id)`.
    async fn delete_webhook_endpoint(&self, endpoint_id: &str) -> Result<()>;
    /// `client.webhooks().rotate_endpoint_secret(id)`.
    async fn rotate_webhook_endpoint_secret(
        &self,
        endpoint_id: &str,
    ) -> Result<WebhookSecretResponse>;
    /// `client.webhooks().test_endpoint(id)`.
    async fn test_webhook_endpoint(&self, endpoint_id: &str) -> Result<TestEventResponse>;
    /// `client.webhooks().attempts(endpoint, page)`.
    // mockall needs the lifetime of a reference inside an `Option` named.
    #[allow(clippy::needless_lifetimes)]
    async fn list_delivery_attempts<'a>(
        &self,
        endpoint_id: Option<&'a str>,
        page: &PageQuery,
    ) -> Result<Page<DeliveryAttempt>>;
    /// `client.webhooks().attempts_all(endpoint)`.
    // mockall needs the lifetime of a reference inside an `Option` named.
    #[allow(clippy::needless_lifetimes)]
    fn list_all_delivery_attempts<'a>(
        &self,
        endpoint_id: Option<&'a str>,
    ) -> Paginated<DeliveryAttempt>;
    /// `client.webhooks().redeliver(event_id)`.
    async fn redeliver_event(&self, event_id: &str) -> Result<RedeliverResponse>;
    /// `client.webhooks().signing_secret()`.
    async fn signing_secret(&self) -> Result<WebhookSecretResponse>;
    /// `client.webhooks().rotate_signing_secret()`.
    async fn rotate_signing_secret(&self) -> Result<WebhookSecretResponse>;
    /// `client.sandbox().activate(id)`.
    async fn sandbox_activate(&self, esim_id: &str) -> Result<StatusResponse>;
    /// `client.sandbox().add_usage(id, usage)`.
    async fn sandbox_add_usage(
        &self,
        esim_id: &str,
        usage: &SandboxUsageRequest,
    ) -> Result<StatusResponse>;
    /// `client.sandbox().expire(id)`.
    async fn sandbox_expire(&self, esim_id: &str) -> Result<StatusResponse>;
}

#[async_trait]
impl OytelApi for OytelClient {
    async fn list_plans(&self, query: &PlansQuery) -> Result<PlansResponse> {
        self.plans().list_filtered(query).await
    }
    async fn get_plan(&self, plan_id: &str) -> Result<Plan> {
        self.plans().get(plan_id).await
    }
    async fn create_order(&self, request: &ProvisionRequest) -> Result<ProvisionResponse> {
        self.orders().create(request).await
    }
    async fn create_order_with_key(
        &self,
        request: &ProvisionRequest,
        idempotency_key: &str,
    ) -> Result<ProvisionResponse> {
        self.orders()
            .create_with_key(request, idempotency_key)
            .await
    }
    async fn get_order(&self, order_id: &str) -> Result<Order> {
        self.orders().get(order_id).await
    }
    async fn list_orders(&self, query: &ListOrdersQuery) -> Result<Page<Order>> {
        self.orders().list(query).await
    }
    fn list_all_orders(&self, query: ListOrdersQuery) -> Paginated<Order> {
        self.orders().list_all(query)
    }
    async fn get_esim(&self, esim_id: &str) -> Result<Esim> {
        self.esims().get(esim_id).await
    }
    async fn esim_status(&self, esim_id: &str) -> Result<StatusResponse> {
        self.esims().status(esim_id).await
    }
    async fn list_esims(&self, query: &ListEsimsQuery) -> Result<Page<Esim>> {
        self.esims().list(query).await
    }
    fn list_all_esims(&self, query: ListEsimsQuery) -> Paginated<Esim> {
        self.esims().list_all(query)
    }
    async fn suspend_esim(&self, esim_id: &str) -> Result<StatusResponse> {
        self.esims().suspend(esim_id).await
    }
    async fn resume_esim(&self, esim_id: &str) -> Result<StatusResponse> {
        self.esims().resume(esim_id).await
    }
    async fn cancel_esim(&self, esim_id: &str, request: &CancelRequest) -> Result<CancelResponse> {
        self.esims().cancel(esim_id, request).await
    }
    async fn cancel_esim_with_key(
        &self,
        esim_id: &str,
        request: &CancelRequest,
        idempotency_key: &str,
    ) -> Result<CancelResponse> {
        self.esims()
            .cancel_with_key(esim_id, request, idempotency_key)
            .await
    }
    async fn list_packages(&self, esim_id: &str) -> Result<PackagesResponse> {
        self.esims().packages(esim_id).await
    }
    async fn list_topups(&self, esim_id: &str) -> Result<TopUpOffersResponse> {
        self.esims().topups(esim_id).await
    }
    async fn buy_topup(&self, esim_id: &str, topup_id: &str) -> Result<TopUpResponse> {
        self.esims().buy_topup(esim_id, topup_id).await
    }
    async fn buy_topup_with_key(
        &self,
        esim_id: &str,
        topup_id: &str,
        idempotency_key: &str,
    ) -> Result<TopUpResponse> {
        self.esims()
            .buy_topup_with_key(esim_id, topup_id, idempotency_key)
            .await
    }
    async fn get_account(&self) -> Result<AccountResponse> {
        self.account().get().await
    }
    async fn update_account(&self, update: &UpdateAccount) -> Result<AccountResponse> {
        self.account().update(update).await
    }
    async fn list_transactions(&self, query: &ListTransactionsQuery) -> Result<Page<Transaction>> {
        self.account().transactions(query).await
    }
    fn list_all_transactions(&self, query: ListTransactionsQuery) -> Paginated<Transaction> {
        self.account().transactions_all(query)
    }
    async fn create_webhook_endpoint(
        &self,
        request: &CreateWebhookEndpoint,
    ) -> Result<WebhookEndpointCreated> {
        self.webhooks().create_endpoint(request).await
    }
    async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        self.webhooks().list_endpoints().await
    }
    fn list_all_webhook_endpoints(&self) -> Paginated<WebhookEndpoint> {
        self.webhooks().list_all_endpoints()
    }
    async fn get_webhook_endpoint(&self, endpoint_id: &str) -> Result<WebhookEndpoint> {
        self.webhooks().get_endpoint(endpoint_id).await
    }
    async fn update_webhook_endpoint(
        &self,
        endpoint_id: &str,
        change: &UpdateWebhookEndpoint,
    ) -> Result<WebhookEndpoint> {
        self.webhooks().update_endpoint(endpoint_id, change).await
    }
    async fn delete_webhook_endpoint(&self, endpoint_id: &str) -> Result<()> {
        self.webhooks().delete_endpoint(endpoint_id).await
    }
    async fn rotate_webhook_endpoint_secret(
        &self,
        endpoint_id: &str,
    ) -> Result<WebhookSecretResponse> {
        self.webhooks().rotate_endpoint_secret(endpoint_id).await
    }
    async fn test_webhook_endpoint(&self, endpoint_id: &str) -> Result<TestEventResponse> {
        self.webhooks().test_endpoint(endpoint_id).await
    }
    #[allow(clippy::needless_lifetimes)]
    async fn list_delivery_attempts<'a>(
        &self,
        endpoint_id: Option<&'a str>,
        page: &PageQuery,
    ) -> Result<Page<DeliveryAttempt>> {
        self.webhooks().attempts(endpoint_id, page).await
    }
    #[allow(clippy::needless_lifetimes)]
    fn list_all_delivery_attempts<'a>(
        &self,
        endpoint_id: Option<&'a str>,
    ) -> Paginated<DeliveryAttempt> {
        self.webhooks().attempts_all(endpoint_id)
    }
    async fn redeliver_event(&self, event_id: &str) -> Result<RedeliverResponse> {
        self.webhooks().redeliver(event_id).await
    }
    async fn signing_secret(&self) -> Result<WebhookSecretResponse> {
        self.webhooks().signing_secret().await
    }
    async fn rotate_signing_secret(&self) -> Result<WebhookSecretResponse> {
        self.webhooks().rotate_signing_secret().await
    }
    async fn sandbox_activate(&self, esim_id: &str) -> Result<StatusResponse> {
        self.sandbox().activate(esim_id).await
    }
    async fn sandbox_add_usage(
        &self,
        esim_id: &str,
        usage: &SandboxUsageRequest,
    ) -> Result<StatusResponse> {
        self.sandbox().add_usage(esim_id, usage).await
    }
    async fn sandbox_expire(&self, esim_id: &str) -> Result<StatusResponse> {
        self.sandbox().expire(esim_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use oytel_types::ErrorCode;

    /// Partner code written against the trait…
    async fn order_and_qr(api: &dyn OytelApi, email: &str) -> Result<String> {
        let request = ProvisionRequest::new("eu-roam-50", email, "Jane");
        let order = match api.create_order(&request).await {
            // An answer lost on the way: the same order again, with its key.
            Err(e) if e.is_retryable() && e.idempotency_key().is_some() => {
                let key = e.idempotency_key().unwrap_or_default();
                api.create_order_with_key(&request, key).await?
            }
            other => other?,
        };
        Ok(api.get_esim(&order.esim_id).await?.qr_code_url)
    }

    /// …is tested with the mock, no server needed.
    #[tokio::test]
    async fn partner_code_can_be_unit_tested_with_the_mock() {
        let mut api = MockOytelApi::new();
        api.expect_create_order()
            .times(1)
            .returning(|_| Err(Error::api(402, ErrorCode::InsufficientBalance, "low")));
        api.expect_create_order_with_key().never();
        api.expect_get_esim().never();
        let err = order_and_qr(&api, "a@example.com").await.unwrap_err();
        assert_eq!(err.code(), Some(&ErrorCode::InsufficientBalance));
        assert_eq!(err.status(), Some(402));
    }

    #[tokio::test]
    async fn a_keyed_retry_and_a_stream_can_be_mocked() {
        let mut api = MockOytelApi::new();
        api.expect_create_order()
            .returning(|_| Err(Error::timeout(Some("oytel-rs-first".into()))));
        api.expect_create_order_with_key()
            .withf(|_, key| key == "oytel-rs-first")
            .times(1)
            .returning(|_, _| Err(Error::api(404, ErrorCode::PlanNotFound, "no plan")));
        let err = order_and_qr(&api, "a@example.com").await.unwrap_err();
        assert_eq!(err.code(), Some(&ErrorCode::PlanNotFound));

        api.expect_list_all_orders()
            .returning(|_| Paginated::from_items(vec![Err(Error::timeout(None))]));
        let listed = api.list_all_orders(Default::default()).collect_all().await;
        assert!(matches!(listed, Err(Error::Timeout { .. })));
    }

    /// The names of the public calls of the resource handles (`pub fn name(` in their
    /// `impl Handle<'_>` blocks; not the handles' accessors on `OytelClient`).
    fn calls_in(source: &str) -> Vec<&str> {
        let mut in_handle = false;
        let mut calls = Vec::new();
        for line in source.lines() {
            if let Some(header) = line.strip_prefix("impl ") {
                in_handle = header.contains("<'_>");
            } else if let Some(rest) = line.trim_start().strip_prefix("pub fn ") {
                if in_handle {
                    calls.extend(rest.split(['(', '<']).next());
                }
            }
        }
        calls
    }

    #[test]
    fn every_call_of_the_client_is_in_the_trait() {
        let trait_source = include_str!("api.rs");
        let calls = calls_in(include_str!("resources.rs"));
        assert!(calls.len() > 30, "{calls:?}");
        let missing: Vec<&&str> = calls
            .iter()
            .filter(|name| !trait_source.contains(&format!("().{name}(")))
            .collect();
        assert!(missing.is_empty(), "not in OytelApi: {missing:?}");
    }
}
