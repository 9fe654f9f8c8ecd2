//! [`OytelApi`]: every operation of the client as a trait, so that partner code can take
//! `&dyn OytelApi` (or a generic) and be unit-tested without a server, with the `mockall`
//! mock `MockOytelApi` of the `mock` feature.

use async_trait::async_trait;
use oytel_types::{
    AccountResponse, CancelRequest, CancelResponse, CreateWebhookEndpoint, Esim, ListEsimsQuery,
    ListOrdersQuery, ListTransactionsQuery, Order, PackagesResponse, Page, Plan, PlansQuery,
    PlansResponse, ProvisionRequest, ProvisionResponse, RedeliverResponse, SandboxUsageRequest,
    StatusResponse, TopUpOffersResponse, TopUpResponse, Transaction, UpdateAccount,
    WebhookEndpoint, WebhookEndpointCreated,
};

use crate::{OytelClient, Result};

/// The operations of the Oytel API.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait OytelApi: Send + Sync {
    /// `client.plans().list_filtered(query)`.
    async fn list_plans(&self, query: &PlansQuery) -> Result<PlansResponse>;
    /// `client.plans().get(id)`.
    async fn get_plan(&self, plan_id: &str) -> Result<Plan>;
    /// `client.orders().create(request)`.
    async fn create_order(&self, request: &ProvisionRequest) -> Result<ProvisionResponse>;
    /// `client.orders().get(id)`.
    async fn get_order(&self, order_id: &str) -> Result<Order>;
    /// `client.orders().list(query)`.
    async fn list_orders(&self, query: &ListOrdersQuery) -> Result<Page<Order>>;
    /// `client.esims().get(id)`.
    async fn get_esim(&self, esim_id: &str) -> Result<Esim>;
    /// `client.esims().status(id)`.
    async fn esim_status(&self, esim_id: &str) -> Result<StatusResponse>;
    /// `client.esims().list(query)`.
    async fn list_esims(&self, query: &ListEsimsQuery) -> Result<Page<Esim>>;
    /// `client.account().get()`.
    async fn get_account(&self) -> Result<AccountResponse>;
    /// `client.esims().cancel_with_key(id, request, key)`.
    async fn cancel_esim(
        &self,
        esim_id: &str,
        request: &CancelRequest,
        idempotency_key: &str,
    ) -> Result<CancelResponse>;
    /// `client.esims().suspend(id)`.
    async fn suspend_esim(&self, esim_id: &str) -> Result<StatusResponse>;
    /// `client.esims().resume(id)`.
    async fn resume_esim(&self, esim_id: &str) -> Result<StatusResponse>;
    /// `client.esims().packages(id)`.
    async fn list_packages(&self, esim_id: &str) -> Result<PackagesResponse>;
    /// `client.esims().topups(id)`.
    async fn list_topups(&self, esim_id: &str) -> Result<TopUpOffersResponse>;
    /// `client.esims().buy_topup_with_key(id, topup_id, key)`.
    async fn buy_topup(
        &self,
        esim_id: &str,
        topup_id: &str,
        idempotency_key: &str,
    ) -> Result<TopUpResponse>;
    /// `client.account().update(update)`.
    async fn update_account(&self, update: &UpdateAccount) -> Result<AccountResponse>;
    /// `client.account().transactions(query)`.
    async fn list_transactions(&self, query: &ListTransactionsQuery) -> Result<Page<Transaction>>;
    /// `client.webhooks().create_endpoint(request)`.
    async fn create_webhook_endpoint(
        &self,
        request: &CreateWebhookEndpoint,
    ) -> Result<WebhookEndpointCreated>;
    /// `client.webhooks().list_endpoints()`.
    async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>>;
    /// `client.webhooks().redeliver(event_id)`.
    async fn redeliver_event(&self, event_id: &str) -> Result<RedeliverResponse>;
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
    async fn get_order(&self, order_id: &str) -> Result<Order> {
        self.orders().get(order_id).await
    }
    async fn list_orders(&self, query: &ListOrdersQuery) -> Result<Page<Order>> {
        self.orders().list(query).await
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
    async fn get_account(&self) -> Result<AccountResponse> {
        self.account().get().await
    }
    async fn update_account(&self, update: &UpdateAccount) -> Result<AccountResponse> {
        self.account().update(update).await
    }
    async fn list_transactions(&self, query: &ListTransactionsQuery) -> Result<Page<Transaction>> {
        self.account().transactions(query).await
    }
    async fn cancel_esim(
        &self,
        esim_id: &str,
        request: &CancelRequest,
        idempotency_key: &str,
    ) -> Result<CancelResponse> {
        self.esims()
            .cancel_with_key(esim_id, request, idempotency_key)
            .await
    }
    async fn suspend_esim(&self, esim_id: &str) -> Result<StatusResponse> {
        self.esims().suspend(esim_id).await
    }
    async fn resume_esim(&self, esim_id: &str) -> Result<StatusResponse> {
        self.esims().resume(esim_id).await
    }
    async fn list_packages(&self, esim_id: &str) -> Result<PackagesResponse> {
        self.esims().packages(esim_id).await
    }
    async fn list_topups(&self, esim_id: &str) -> Result<TopUpOffersResponse> {
        self.esims().topups(esim_id).await
    }
    async fn buy_topup(
        &self,
        esim_id: &str,
        topup_id: &str,
        idempotency_key: &str,
    ) -> Result<TopUpResponse> {
        self.esims()
            .buy_topup_with_key(esim_id, topup_id, idempotency_key)
            .await
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
    async fn redeliver_event(&self, event_id: &str) -> Result<RedeliverResponse> {
        self.webhooks().redeliver(event_id).await
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
        let order = api
            .create_order(&ProvisionRequest {
                plan_id: "eu-roam-50".into(),
                term_months: 1,
                customer_email: email.into(),
                customer_name: "Jane".into(),
                reference_id: None,
                webhook_url: None,
            })
            .await?;
        Ok(api.get_esim(&order.esim_id).await?.qr_code_url)
    }

    /// …is tested with the mock, no server needed.
    #[tokio::test]
    async fn partner_code_can_be_unit_tested_with_the_mock() {
        let mut api = MockOytelApi::new();
        api.expect_create_order().times(1).returning(|_| {
            Err(Error::Api {
                status: 402,
                code: ErrorCode::InsufficientBalance,
                message: "insufficient balance".into(),
                details: None,
                request_id: None,
            })
        });
        api.expect_get_esim().never();
        let err = order_and_qr(&api, "a@example.com").await.unwrap_err();
        assert_eq!(err.code(), Some(&ErrorCode::InsufficientBalance));
        assert_eq!(err.status(), Some(402));
    }
}
