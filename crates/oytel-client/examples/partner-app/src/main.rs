//! A partner's checkout: order an eSIM for a customer and hand back its QR code URL.

use oytel_client::types::{ErrorCode, ProvisionRequest};
use oytel_client::{Error, OytelApi, OytelClient};

/// What the checkout shows the customer.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ready { qr_code_url: String },
    TryLater,
    ContactSupport(String),
}

/// Checkout logic, written against the trait so that it can be tested without a server.
async fn checkout(api: &dyn OytelApi, email: &str, name: &str) -> Outcome {
    let request = ProvisionRequest {
        plan_id: "eu-roam-50".into(),
        term_months: 1,
        customer_email: email.into(),
        customer_name: name.into(),
        reference_id: None,
        webhook_url: None,
    };
    match api.create_order(&request).await {
        Ok(order) => Outcome::Ready { qr_code_url: order.qr_code_url },
        Err(Error::RateLimited { .. } | Error::Timeout | Error::Network(_)) => Outcome::TryLater,
        Err(e) if e.code() == Some(&ErrorCode::InsufficientBalance) => {
            Outcome::ContactSupport("our eSIM balance is low".into())
        }
        Err(e) => Outcome::ContactSupport(e.to_string()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let key = std::env::var("OYTEL_API_KEY").map_err(|_| Error::Config("set OYTEL_API_KEY".into()))?;
    let client = OytelClient::new(key)?;
    println!("{:?}", checkout(&client, "customer@example.com", "John Doe").await);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oytel_client::MockOytelApi;

    #[tokio::test]
    async fn a_low_balance_sends_the_customer_to_support() {
        let mut api = MockOytelApi::new();
        api.expect_create_order().returning(|_| {
            Err(Error::Api {
                status: 402,
                code: ErrorCode::InsufficientBalance,
                message: "insufficient balance".into(),
                details: None,
                request_id: None,
            })
        });
        assert_eq!(
            checkout(&api, "a@example.com", "A").await,
            Outcome::ContactSupport("our eSIM balance is low".into())
        );
    }
}
