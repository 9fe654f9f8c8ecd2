//! The caller's account.

use axum::extract::State;
use axum::Json;
use oytel_core::billing::{minimum_for, SANDBOX_BALANCE};
use oytel_types::{AccountResponse, Amount, Balance, Environment};

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

/// The partner, the key's environment, its balance and minimum balance, and the limits that
/// apply.
#[utoipa::path(get, path = "/api/v1/account", tag = "account",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The account", body = AccountResponse),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn get_account(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AccountResponse>, ApiError> {
    let owner = &caller.owner;
    let partner = state
        .store
        .get_partner(&owner.partner_id)
        .await?
        .ok_or_else(|| ApiError::internal("key without a partner"))?;
    let available = match owner.environment {
        Environment::Sandbox => SANDBOX_BALANCE,
        Environment::Production => Amount::from_cents(state.store.live_balance(&partner.id).await?),
    };
    let minimum = minimum_for(owner.environment, state.settings.provision.minimum_balance);
    Ok(Json(AccountResponse {
        success: true,
        partner_id: partner.id,
        name: partner.name,
        email: partner.email,
        environment: owner.environment,
        key_id: owner.key_id.clone(),
        balance: Balance {
            available,
            available_cents: available.cents(),
            minimum,
            minimum_cents: minimum.cents(),
            currency: state.catalog.currency.clone(),
        },
        limits: caller.limits.clone(),
    }))
}
