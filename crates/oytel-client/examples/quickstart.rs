//! The documented flow: order an eSIM, fetch it, print its QR code URL.
//!
//! ```sh
//! OYTEL_API_KEY=sk_sandbox_... OYTEL_BASE_URL=http://127.0.0.1:8080 \
//!   cargo run -p oytel-client --example quickstart
//! ```

// An example prints what it does.
#![allow(clippy::print_stdout)]

use oytel_client::types::ProvisionRequest;
use oytel_client::{Error, OytelClient};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let key =
        std::env::var("OYTEL_API_KEY").map_err(|_| Error::Config("set OYTEL_API_KEY".into()))?;
    let mut builder = OytelClient::builder(key);
    if let Ok(base) = std::env::var("OYTEL_BASE_URL") {
        builder = builder.base_url(base);
    }
    let client = builder.build()?;

    let plans = client.plans().list().await?;
    println!(
        "{} plans; e.g. {} at ${}/month",
        plans.plans.len(),
        plans.plans[0].name,
        plans.plans[0].pricing.base_price
    );

    let order = client
        .orders()
        .create(
            &ProvisionRequest::new("eu-roam-50", "customer@example.com", "John Doe")
                .reference_id("order-123"),
        )
        .await?;
    println!("ordered {} for ${}", order.esim_id, order.billing.cost_usd);

    let esim = client.esims().get(&order.esim_id).await?;
    println!("QR Code: {}", esim.qr_code_url);

    let status = client.esims().status(&esim.esim_id).await?;
    println!("status: {:?}, expires {}", status.status, status.expires_at);

    match client.plans().get("no-such-plan").await {
        Err(Error::Api { code, message, .. }) => println!("as expected: {code}: {message}"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}
