//! Webhook dispatch: which due deliveries are attempted when, so that a slow, failing or
//! hanging destination delays only its own events and a partner with a backlog does not
//! starve the others.
//!
//! Deliveries run in *lanes*. A lane holds one destination (a URL) and sends its events one
//! request at a time, oldest first; lanes run side by side and never wait for each other.
//! The database decides which destinations a worker gets (see
//! [`Storage::claim_due_deliveries`](oytel_core::ports::Storage::claim_due_deliveries)), so
//! the rules hold across every instance that runs workers:
//!
//! | rule | so that |
//! |---|---|
//! | a destination is held by one lane in the whole cluster | its events arrive in order, and a slow destination occupies one lane only |
//! | at most [`WebhookSettings::concurrency`] lanes per instance, a partner at most half of them | outgoing requests are bounded, and a partner with many dead endpoints leaves lanes for others |
//! | destinations are taken in turns between partners | a partner with 10,000 pending events does not delay one with a single event |
//! | a lane takes up to [`PER_DESTINATION`] deliveries, and starts an attempt only if it can end within the lease | no two workers ever send the same delivery at once |
//! | a lane stopping early (lease, shutdown) gives back what it did not attempt | those events are due again at once, their schedule unchanged |
//! | at shutdown an attempt under way gets [`SHUTDOWN_GRACE`], then is abandoned and given back | a hanging receiver cannot hold a deploy for the attempt timeout |
//! | a lane writes its outcomes when it ends, and before an attempt once [`FLUSH_AFTER`] has passed since it last wrote | a fast lane writes once; a slow destination's attempts show in the log as they happen |
//! | a finished lane frees its slot at once and the dispatcher claims again | a healthy destination never waits for a poll interval while work is due |
//!
//! A crash at any point loses nothing: what was claimed but not recorded is claimed again once
//! its lease has run out, and sent again (receivers drop duplicates by `webhook-id`).
//!
//! [`WebhookSettings::concurrency`]: crate::state::WebhookSettings::concurrency

use std::time::{Duration, Instant};

use oytel_core::clock::now;
use oytel_core::ports::{AttemptOutcome, ClaimLimits, DueDelivery};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::state::AppState;
use crate::worker::{deliver, delivery_client};

/// Deliveries of one destination taken by one lane.
pub const PER_DESTINATION: u32 = 128;

/// How long a lane's outcomes may wait unwritten before its next attempt.
pub const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// How long an attempt under way at shutdown may go on before it is abandoned.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A lane's lease beyond one attempt's timeout: the time it has for its attempts.
const LANE_TIME: Duration = Duration::from_secs(60);

/// Kept free at the end of a lease: an attempt that would end later is not started.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The limits of one claim, given the lanes this worker has free.
fn limits(free_lanes: usize, concurrency: usize) -> ClaimLimits {
    let lanes = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).max(1);
    ClaimLimits {
        destinations: lanes(free_lanes),
        per_destination: PER_DESTINATION,
        per_partner: lanes(concurrency / 2),
    }
}

/// Claimed deliveries by destination, each queue in the order the claim gave (oldest first).
fn by_destination(due: Vec<DueDelivery>) -> Vec<Vec<DueDelivery>> {
    let mut queues: Vec<Vec<DueDelivery>> = Vec::new();
    for delivery in due {
        match queues.iter_mut().find(|q| q[0].url == delivery.url) {
            Some(queue) => queue.push(delivery),
            None => queues.push(vec![delivery]),
        }
    }
    queues
}

/// Delivers due webhooks until `shutdown` turns true, then lets running lanes end (each
/// finishes its current attempt and gives the rest back).
pub async fn run_deliveries(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let client = delivery_client(&state);
    let webhooks = &state.settings.webhooks;
    let concurrency = webhooks.concurrency.max(1);
    let lease = to_chrono(webhooks.timeout + LANE_TIME);
    let mut lanes: JoinSet<()> = JoinSet::new();
    while !*shutdown.borrow() {
        let free = concurrency.saturating_sub(lanes.len());
        if free > 0 {
            let at = now();
            let lease_until = at + lease;
            let claimed = state
                .store
                .claim_due_deliveries(at, lease_until, limits(free, concurrency))
                .await;
            match claimed {
                Ok(due) => {
                    for queue in by_destination(due) {
                        let lane = Lane {
                            state: state.clone(),
                            client: client.clone(),
                            lease_until,
                            shutdown: shutdown.clone(),
                        };
                        lanes.spawn(lane.run(queue));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim webhook deliveries"),
            }
        }
        // A lane ending frees a slot (and maybe its destination has more): claim again.
        tokio::select! {
            Some(_) = lanes.join_next(), if !lanes.is_empty() => {}
            _ = tokio::time::sleep(webhooks.poll_interval) => {}
            changed = shutdown.changed() => if changed.is_err() { break },
        }
    }
    while lanes.join_next().await.is_some() {}
}

/// One destination's claimed deliveries, sent one at a time.
struct Lane {
    state: AppState,
    client: reqwest::Client,
    lease_until: chrono::DateTime<chrono::Utc>,
    shutdown: watch::Receiver<bool>,
}

impl Lane {
    async fn run(self, queue: Vec<DueDelivery>) {
        let timeout = to_chrono(self.state.settings.webhooks.timeout + LEASE_MARGIN);
        let mut outcomes: Vec<AttemptOutcome> = Vec::new();
        let mut written = Instant::now();
        let mut queue = queue.into_iter();
        let mut unattempted: Vec<String> = Vec::new();
        while let Some(delivery) = queue.next() {
            if written.elapsed() >= FLUSH_AFTER {
                self.record(&mut outcomes).await;
                written = Instant::now();
            }
            // After the write, which may itself have waited: the attempt must end in the lease.
            if *self.shutdown.borrow() || now() + timeout > self.lease_until {
                unattempted.push(delivery.id);
                unattempted.extend(queue.map(|d| d.id));
                break;
            }
            let id = delivery.id.clone();
            let attempt = deliver(&self.state, &self.client, delivery);
            tokio::select! {
                outcome = attempt => outcomes.push(outcome),
                () = self.stopped_for(SHUTDOWN_GRACE) => {
                    // Abandoned mid-attempt: given back, and sent again by whoever claims it
                    // next (the receiver may have had it; `webhook-id` tells it so).
                    unattempted.push(id);
                    unattempted.extend(queue.map(|d| d.id));
                    break;
                }
            }
        }
        self.record(&mut outcomes).await;
        if !unattempted.is_empty() {
            if let Err(e) = self
                .state
                .store
                .release_deliveries(&unattempted, self.lease_until)
                .await
            {
                // Their lease runs out instead: they are late, not lost.
                tracing::warn!(error = %e, deliveries = unattempted.len(),
                    "could not give back unattempted webhook deliveries");
            }
        }
    }

    /// Resolves `grace` after shutdown began (never, while the server runs).
    async fn stopped_for(&self, grace: Duration) {
        let mut shutdown = self.shutdown.clone();
        if shutdown.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    }

    /// Writes the outcomes so far in one transaction. If that fails, the leases run out and
    /// the deliveries are sent again: at least once, never lost.
    async fn record(&self, outcomes: &mut Vec<AttemptOutcome>) {
        if outcomes.is_empty() {
            return;
        }
        let disable_after = to_chrono(self.state.settings.webhooks.disable_after);
        if let Err(e) = self
            .state
            .store
            .record_attempts(outcomes, disable_after)
            .await
        {
            tracing::warn!(error = %e, attempts = outcomes.len(), "could not record webhook attempts");
        }
        outcomes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oytel_core::ports::SigningSecret;

    fn due(id: &str, url: &str) -> DueDelivery {
        DueDelivery {
            id: id.into(),
            event_id: format!("evt_{id}"),
            endpoint_id: None,
            url: url.into(),
            attempts: 0,
            payload: "{}".into(),
            secrets: SigningSecret {
                secret: "whsec_x".into(),
                previous_secret: None,
                previous_secret_expires_at: None,
            },
            traceparent: None,
        }
    }

    #[test]
    fn each_destination_gets_one_queue_in_claim_order() {
        let queues = by_destination(vec![
            due("1", "https://a/"),
            due("2", "https://b/"),
            due("3", "https://a/"),
        ]);
        let ids: Vec<Vec<&str>> = queues
            .iter()
            .map(|q| q.iter().map(|d| d.id.as_str()).collect())
            .collect();
        assert_eq!(ids, vec![vec!["1", "3"], vec!["2"]]);
    }

    #[test]
    fn a_partner_may_hold_half_the_lanes_and_a_claim_takes_only_free_ones() {
        assert_eq!(
            limits(3, 64),
            ClaimLimits {
                destinations: 3,
                per_destination: PER_DESTINATION,
                per_partner: 32
            }
        );
        // With a single lane, that lane is anyone's.
        assert_eq!(limits(1, 1).per_partner, 1);
    }
}
