//! The storage implementation shared by the backends.
//!
//! Both SQLite and PostgreSQL accept the same SQL for everything we do (`$N` placeholders,
//! `ON CONFLICT`, `RETURNING`, expression indexes), so the `Storage` implementation is written
//! once, here, and instantiated per backend by [`storage_impl!`] with the few things that
//! differ: how a write transaction begins (SQLite: `BEGIN IMMEDIATE`, taking the write lock
//! at once), how a row is locked for update (PostgreSQL: `FOR UPDATE`; SQLite's writer lock
//! already serialises), the clock in SQL, and how several statements travel in one round trip
//! ([`Chaining`]). A macro rather than generic code keeps each instance a plain, concrete sqlx
//! program. Migrations stay per backend (`migrations/<backend>/`).

use oytel_core::ports::{StoreError, UniqueField};

pub(crate) const ESIM_COLUMNS: &str =
    "seq, id, partner_id, environment, order_id, plan_id, plan_name, \
    validity_days, term_months, iccid, msisdn, matching_id, activation_code, qr_token, status, \
    customer_email, customer_name, reference_id, webhook_url, data_limit_mb, data_used_mb, \
    calls_made, sms_sent, activated_at, expires_at, created_at";

/// The columns of the status read (`rows::EsimStatusRow`), a part of `ESIM_COLUMNS`.
pub(crate) const ESIM_STATUS_COLUMNS: &str = "id, iccid, status, plan_id, plan_name, \
    validity_days, term_months, data_limit_mb, data_used_mb, calls_made, sms_sent, \
    activated_at, expires_at";

pub(crate) const ORDER_COLUMNS: &str =
    "seq, id, partner_id, environment, esim_id, plan_id, term_months, \
    amount_cents, currency, customer_email, customer_name, reference_id, balance_after_cents, \
    request_id, created_at";

/// Whether `e` says the database is busy or out of reach (SQLite: the write lock was not had
/// within the busy timeout; PostgreSQL: serialization failure, deadlock, too many
/// connections, shutting down; any backend: the pool or the connection failed).
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.message().contains("database is locked")
                || db.message().contains("busy")
                || matches!(
                    db.code().as_deref(),
                    Some("40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03")
                )
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        _ => false,
    }
}

/// Maps a sqlx error to the port's error, recognising unique violations and a busy database.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let message = db.message();
            let field = if message.contains("idempotency_keys") {
                UniqueField::IdempotencyKey
            } else if message.contains("iccid") {
                UniqueField::Iccid
            } else if message.contains("msisdn") {
                UniqueField::Msisdn
            } else if message.contains("matching_id") {
                UniqueField::MatchingId
            } else if message.contains("qr_token") {
                UniqueField::QrToken
            } else {
                UniqueField::Other
            };
            StoreError::Duplicate(field)
        }
        sqlx::Error::Database(db) if is_busy(&e) => {
            StoreError::Unavailable(db.message().to_owned())
        }
        _ if is_busy(&e) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

/// The pools' `after_release` check: a connection goes back to its pool only outside any
/// transaction.
///
/// A future dropped inside a transaction (its client disconnected, a timeout fired) leaves
/// the rollback queued on the connection, which the ping below runs. But sqlx's SQLite driver
/// can also lose a transaction altogether: a future dropped in `begin_with` after the
/// `BEGIN` ran, before the `Transaction` existed, leaves the connection inside a transaction
/// that nothing will end. On the one writer connection that held the write lock for good:
/// every later write failed with "attempted to call begin_with at non-zero transaction
/// depth" and other processes with "database is locked" (issue #24). Such a connection is
/// closed instead, which rolls its transaction back; the pool opens a fresh one.
pub(crate) fn outside_transaction<C: sqlx::Connection>(
    conn: &mut C,
    _: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if conn.is_in_transaction() {
            // Runs a rollback queued by a dropped transaction, if that is all it is.
            conn.ping().await?;
        }
        if conn.is_in_transaction() {
            tracing::warn!(
                "a database connection came back inside a transaction (its request was \
                 cancelled); closing it, which rolls the transaction back"
            );
            return Ok(false);
        }
        Ok(true)
    })
}

/// How a backend runs several statements in one round trip.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Chaining {
    /// PostgreSQL: the writes as data-modifying common table expressions of the final query
    /// (`WITH w0 AS (INSERT …), w1 AS (INSERT …) SELECT …`). They run exactly once, whether
    /// or not the query reads them; constraints are checked at the end of the statement.
    Cte,
    /// SQLite: statements separated by semicolons, which sqlx runs one after another, binding
    /// each its share of the arguments.
    Semicolons,
}

impl Chaining {
    /// The text before write `i` (from 0) of a chain.
    pub(crate) fn before_write(self, i: usize) -> String {
        match (self, i) {
            (Chaining::Cte, 0) => "WITH w0 AS (".to_owned(),
            (Chaining::Cte, i) => format!("), w{i} AS ("),
            (Chaining::Semicolons, 0) => String::new(),
            (Chaining::Semicolons, _) => "; ".to_owned(),
        }
    }

    /// The text between the last write and the final query.
    pub(crate) fn before_query(self) -> &'static str {
        match self {
            Chaining::Cte => ") ",
            Chaining::Semicolons => "; ",
        }
    }
}

/// Implements `Storage` for `$store`, whose fields `writer` and `reader` are pools of `$db`.
macro_rules! storage_impl {
    (
        $store:ty,
        $db:ty,
        begin = $begin:literal,
        lock = $lock:literal,
        skip_locked = $skip:literal,
        serialize_claims = $serialize_claims:literal,
        now_ms = $now_ms:literal,
        chaining = $chaining:expr
    ) => {
        use chrono::{DateTime, Utc};
        use oytel_core::numbers::new_id;
        use oytel_core::ports::{
            decide_claim, ApiKeyInfo, Charge, ClaimDecision, ClaimRef, EsimFilter, EsimRecord,
            IdempotencyClaim, IdempotencyRequest, IdempotencyWrite, KeyOwner, LedgerEntry, NewApiKey, OrderRecord,
            PageRequest, Partner, ProvisionResult, ProvisionWrite, Sequenced, Storage, StoreError,
            StoredIdempotencyKey, UniqueField,
        };
        use oytel_core::Scope;
        use sqlx::QueryBuilder;

        use $crate::adapter::{db_error, ESIM_COLUMNS, ESIM_STATUS_COLUMNS, ORDER_COLUMNS};
        use oytel_core::ports::{
            AttemptOutcome, AttemptRecord, AttemptResult, ClaimLimits, DueDelivery, EndpointRecord,
            EventRecord, SigningSecret, TransitionResult, UsageInput, UsageResult,
        };
        use oytel_core::limits::LimitOverrides;
        use oytel_core::EsimStatus;
        use oytel_types::EventType;
        use $crate::rows::{
            delivery_status_text, environment, event_types_text, sequenced, ApiKeyRow,
            AttemptRow, EndpointRow, EsimRow, EventRow, IdempotencyRow, LedgerRow, OrderRow,
            PartnerRow, SecretRow, Sequential,
        };

        const ENDPOINT_COLUMNS: &str = "seq, id, partner_id, environment, url, description, \
            event_types, secret, previous_secret, previous_secret_expires_at, enabled, \
            disabled_reason, failing_since, created_at, updated_at";
        const EVENT_COLUMNS: &str =
            "seq, id, partner_id, environment, esim_id, event_type, payload, created_at";

        type Tx<'c> = sqlx::Transaction<'c, $db>;

        /// Limits as stored (NULL: the default).
        fn overrides(provision: Option<i64>, status: Option<i64>, burst: Option<i64>) -> LimitOverrides {
            let limit = |v: Option<i64>| v.and_then(|n| u32::try_from(n).ok());
            LimitOverrides {
                provision_per_hour: limit(provision),
                status_per_hour: limit(status),
                burst_per_second: limit(burst),
            }
        }

        /// Statements sent to the database as one (see [`Chaining`](crate::adapter::Chaining)):
        /// writes, then a final query. One round trip instead of one per statement.
        struct Chain<'a> {
            qb: QueryBuilder<'a, $db>,
            writes: usize,
        }

        impl<'a> Chain<'a> {
            fn new() -> Self {
                Chain {
                    qb: QueryBuilder::new(""),
                    writes: 0,
                }
            }

            /// Starts the next write: push its statement.
            fn write(&mut self) -> &mut QueryBuilder<'a, $db> {
                self.qb.push($chaining.before_write(self.writes));
                self.writes += 1;
                &mut self.qb
            }

            /// Ends the writes: push the final query.
            fn query(mut self) -> QueryBuilder<'a, $db> {
                if self.writes > 0 {
                    self.qb.push($chaining.before_query());
                }
                self.qb
            }

            /// Runs the writes, if any.
            async fn execute(self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
                if self.writes == 0 {
                    return Ok(());
                }
                let mut query = self.query();
                query.push("SELECT 1");
                query.build().execute(&mut **tx).await.map_err(db_error)?;
                Ok(())
            }
        }

        /// Pushes `INSERT INTO {head} VALUES (…)`, the values bound by `values`.
        fn push_insert<'a>(
            qb: &mut QueryBuilder<'a, $db>,
            head: &str,
            values: impl FnOnce(&mut sqlx::query_builder::Separated<'_, 'a, $db, &'static str>),
        ) {
            qb.push("INSERT INTO ").push(head).push(" VALUES (");
            let mut separated = qb.separated(", ");
            values(&mut separated);
            separated.push_unseparated(")");
        }

        fn push_claim<'a>(
            qb: &mut QueryBuilder<'a, $db>,
            scope: &'a Scope,
            claim: &'a IdempotencyRequest,
            order_id: Option<&'a str>,
        ) {
            push_insert(
                qb,
                "idempotency_keys (partner_id, environment, key, request_hash, claim_token, \
                 order_id, locked_until, created_at, expires_at)",
                |v| {
                    v.push_bind(&scope.partner_id)
                        .push_bind(scope.environment.as_str())
                        .push_bind(&claim.key)
                        .push_bind(&claim.request_hash)
                        .push_bind(&claim.token)
                        .push_bind(order_id)
                        .push_bind(claim.lease_until)
                        .push_bind(claim.now)
                        .push_bind(claim.expires_at);
                },
            );
        }

        /// The ledger entry of a live order's charge.
        fn push_charge<'a>(qb: &mut QueryBuilder<'a, $db>, order: &'a OrderRecord, balance_after: i64) {
            push_insert(
                qb,
                "ledger_entries (id, partner_id, amount_cents, balance_after_cents, kind, \
                 order_id, description, created_at)",
                |v| {
                    v.push_bind(new_id("led"))
                        .push_bind(&order.partner_id)
                        .push_bind(-order.amount_cents)
                        .push_bind(balance_after)
                        .push_bind("charge")
                        .push_bind(&order.id)
                        .push_bind(format!(
                            "{} x{} month(s) for {}",
                            order.plan_id, order.term_months, order.esim_id
                        ))
                        .push_bind(order.created_at);
                },
            );
        }

        fn push_order<'a>(qb: &mut QueryBuilder<'a, $db>, order: &'a OrderRecord, balance_after: i64) {
            push_insert(
                qb,
                "orders (id, partner_id, environment, esim_id, plan_id, term_months, \
                 amount_cents, currency, customer_email, customer_name, reference_id, \
                 balance_after_cents, request_id, created_at)",
                |v| {
                    v.push_bind(&order.id)
                        .push_bind(&order.partner_id)
                        .push_bind(order.environment.as_str())
                        .push_bind(&order.esim_id)
                        .push_bind(&order.plan_id)
                        .push_bind(i64::from(order.term_months))
                        .push_bind(order.amount_cents)
                        .push_bind(&order.currency)
                        .push_bind(&order.customer_email)
                        .push_bind(&order.customer_name)
                        .push_bind(&order.reference_id)
                        .push_bind(balance_after)
                        .push_bind(&order.request_id)
                        .push_bind(order.created_at);
                },
            );
        }

        fn push_esim<'a>(qb: &mut QueryBuilder<'a, $db>, esim: &'a EsimRecord) {
            let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            push_insert(
                qb,
                "esims (id, partner_id, environment, order_id, plan_id, plan_name, \
                 validity_days, term_months, iccid, msisdn, matching_id, activation_code, \
                 qr_token, status, customer_email, customer_name, reference_id, webhook_url, \
                 data_limit_mb, data_used_mb, calls_made, sms_sent, activated_at, expires_at, \
                 created_at)",
                |v| {
                    v.push_bind(&esim.id)
                        .push_bind(&esim.partner_id)
                        .push_bind(esim.environment.as_str())
                        .push_bind(&esim.order_id)
                        .push_bind(&esim.plan_id)
                        .push_bind(&esim.plan_name)
                        .push_bind(i64::from(esim.validity_days))
                        .push_bind(i64::from(esim.term_months))
                        .push_bind(&esim.iccid)
                        .push_bind(&esim.msisdn)
                        .push_bind(&esim.matching_id)
                        .push_bind(&esim.activation_code)
                        .push_bind(&esim.qr_token)
                        .push_bind(esim.status.as_str())
                        .push_bind(&esim.customer_email)
                        .push_bind(&esim.customer_name)
                        .push_bind(&esim.reference_id)
                        .push_bind(&esim.webhook_url)
                        .push_bind(count(esim.data_limit_mb))
                        .push_bind(count(esim.data_used_mb))
                        .push_bind(count(esim.calls_made))
                        .push_bind(count(esim.sms_sent))
                        .push_bind(esim.activated_at)
                        .push_bind(esim.expires_at)
                        .push_bind(esim.created_at);
                },
            );
        }

        fn push_event<'a>(qb: &mut QueryBuilder<'a, $db>, event: &'a EventRecord) {
            push_insert(
                qb,
                "events (id, partner_id, environment, esim_id, event_type, payload, created_at)",
                |v| {
                    v.push_bind(&event.id)
                        .push_bind(&event.partner_id)
                        .push_bind(event.environment.as_str())
                        .push_bind(&event.esim_id)
                        .push_bind(event.event_type.as_str())
                        .push_bind(&event.payload)
                        .push_bind(event.created_at);
                },
            );
        }

        /// Lists the enabled endpoints `event` may go to: `(id, url, event_types)`.
        fn push_endpoints_query<'a>(qb: &mut QueryBuilder<'a, $db>, event: &'a EventRecord) {
            qb.push("SELECT id, url, event_types FROM webhook_endpoints WHERE partner_id = ")
                .push_bind(&event.partner_id)
                .push(" AND environment = ")
                .push_bind(event.environment.as_str())
                .push(" AND enabled = ")
                .push_bind(true)
                .push(" ORDER BY seq");
        }

        /// The state an attempt leaves its delivery in: status, and when to try next.
        fn after_attempt(outcome: &AttemptOutcome) -> (&'static str, Option<DateTime<Utc>>) {
            use oytel_types::DeliveryStatus;
            let (status, next_attempt_at) = match outcome.result {
                AttemptResult::Delivered => (DeliveryStatus::Delivered, None),
                AttemptResult::Retry { next_attempt_at } => (DeliveryStatus::Pending, Some(next_attempt_at)),
                AttemptResult::GiveUp | AttemptResult::Gone => (DeliveryStatus::Failed, None),
            };
            (delivery_status_text(status), next_attempt_at)
        }

        /// Writes a run of attempts in one statement: each delivery's new state, the attempts'
        /// rows (in the order given, which is the log's order), and the end of the failure
        /// streak of each endpoint a delivery succeeded to. Failures of endpoints are left to
        /// the caller.
        async fn write_attempts(tx: &mut Tx<'_>, run: &[&AttemptOutcome]) -> Result<(), StoreError> {
            if run.is_empty() {
                return Ok(());
            }
            let mut chain = Chain::new();
            for outcome in run {
                let (status, next_attempt_at) = after_attempt(outcome);
                chain
                    .write()
                    .push("UPDATE deliveries SET status = ")
                    .push_bind(status)
                    .push(", attempts = ")
                    .push_bind(i64::from(outcome.attempt))
                    .push(", next_attempt_at = ")
                    .push_bind(next_attempt_at)
                    .push(", locked_until = NULL, last_status_code = ")
                    .push_bind(outcome.status_code.map(i64::from))
                    // In SQL rather than chosen here, so that a round's statement has the same
                    // text (and prepared statement) whatever its attempts' results.
                    .push(", delivered_at = CASE WHEN ")
                    .push_bind(status)
                    .push(" = 'delivered' THEN ")
                    .push_bind(outcome.at)
                    .push(" ELSE delivered_at END")
                    .push(" WHERE id = ")
                    .push_bind(&outcome.delivery_id)
                    .push(" AND status = 'pending'");
            }
            chain
                .write()
                .push(
                    "INSERT INTO delivery_attempts (id, delivery_id, attempt, status_code, \
                     duration_ms, error, next_attempt_at, delivery_status, created_at) ",
                )
                .push_values(run, |mut row, outcome| {
                    let (status, next_attempt_at) = after_attempt(outcome);
                    row.push_bind(new_id("att"))
                        .push_bind(&outcome.delivery_id)
                        .push_bind(i64::from(outcome.attempt))
                        .push_bind(outcome.status_code.map(i64::from))
                        .push_bind(i64::try_from(outcome.duration_ms).unwrap_or(i64::MAX))
                        .push_bind(&outcome.error)
                        .push_bind(next_attempt_at)
                        .push_bind(status)
                        .push_bind(outcome.at);
                });
            let mut cleared: Vec<&str> = Vec::new();
            for outcome in run {
                if let (AttemptResult::Delivered, Some(id)) = (&outcome.result, &outcome.endpoint_id) {
                    if !cleared.contains(&id.as_str()) {
                        cleared.push(id);
                    }
                }
            }
            if !cleared.is_empty() {
                let update = chain.write();
                update.push("UPDATE webhook_endpoints SET failing_since = NULL WHERE id IN (");
                let mut ids = update.separated(", ");
                for id in cleared {
                    ids.push_bind(id);
                }
                ids.push_unseparated(")");
            }
            chain.execute(tx).await
        }

        /// Writes a provisioning: the idempotency claim (when new), the charge's ledger entry
        /// (when live), the order, the eSIM and the event, in one statement that also lists
        /// the partner's endpoints; then the event's deliveries. A sandbox order takes three
        /// round trips (begin, this, commit). A new claim's key already stored fails the
        /// statement with [`UniqueField::IdempotencyKey`].
        async fn insert_provision(
            tx: &mut Tx<'_>,
            write: &ProvisionWrite,
            balance_after: i64,
        ) -> Result<(), StoreError> {
            let order = &write.order;
            let scope = Scope {
                partner_id: order.partner_id.clone(),
                environment: order.environment,
            };
            let mut chain = Chain::new();
            if let Some(IdempotencyWrite::ClaimNew(claim)) = &write.idempotency {
                push_claim(chain.write(), &scope, claim, Some(&order.id));
            }
            if let Charge::Live { .. } = write.charge {
                push_charge(chain.write(), order, balance_after);
            }
            push_order(chain.write(), order, balance_after);
            push_esim(chain.write(), &write.esim);
            push_event(chain.write(), &write.event);
            fan_out_after(
                tx,
                chain,
                &write.event,
                write.esim.webhook_url.as_deref(),
                write.esim.created_at,
            )
            .await?;
            Ok(())
        }

        /// Binds an endpoint's columns as `$1` to `$14`, in the order of `ENDPOINT_COLUMNS`
        /// (without `seq`), for both writing statements.
        fn bind_endpoint<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            e: &'q EndpointRecord,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            query
                .bind(&e.id)
                .bind(&e.partner_id)
                .bind(e.environment.as_str())
                .bind(&e.url)
                .bind(&e.description)
                .bind(event_types_text(&e.event_types))
                .bind(&e.secret)
                .bind(&e.previous_secret)
                .bind(e.previous_secret_expires_at)
                .bind(e.enabled)
                .bind(&e.disabled_reason)
                .bind(e.failing_since)
                .bind(e.created_at)
                .bind(e.updated_at)
        }

        /// Writes an event to the outbox.
        async fn insert_event_row(tx: &mut Tx<'_>, event: &EventRecord) -> Result<(), StoreError> {
            let mut query = QueryBuilder::new("");
            push_event(&mut query, event);
            query.build().execute(&mut **tx).await.map_err(db_error)?;
            Ok(())
        }

        /// Schedules one delivery of `event` to `url`, due at once.
        async fn insert_delivery(
            tx: &mut Tx<'_>,
            event: &EventRecord,
            endpoint_id: Option<&str>,
            url: &str,
            now: DateTime<Utc>,
        ) -> Result<String, StoreError> {
            let id = new_id("dlv");
            sqlx::query(
                "INSERT INTO deliveries (id, event_id, endpoint_id, partner_id, environment, url, \
                 status, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
            )
            .bind(&id)
            .bind(&event.id)
            .bind(endpoint_id)
            .bind(&event.partner_id)
            .bind(event.environment.as_str())
            .bind(url)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
            Ok(id)
        }

        /// Schedules `event` for every enabled endpoint subscribed to it and for the eSIM's
        /// own `webhook_url` (creating that URL's signing secret if needed). Returns how many
        /// deliveries were scheduled.
        async fn fan_out(
            tx: &mut Tx<'_>,
            event: &EventRecord,
            esim_webhook_url: Option<&str>,
            now: DateTime<Utc>,
        ) -> Result<u32, StoreError> {
            fan_out_after(tx, Chain::new(), event, esim_webhook_url, now).await
        }

        /// [`fan_out`], its endpoint lookup sent as the final query of `writes`.
        async fn fan_out_after<'a>(
            tx: &mut Tx<'_>,
            writes: Chain<'a>,
            event: &'a EventRecord,
            esim_webhook_url: Option<&str>,
            now: DateTime<Utc>,
        ) -> Result<u32, StoreError> {
            let mut query = writes.query();
            push_endpoints_query(&mut query, event);
            let endpoints: Vec<(String, String, String)> = query
                .build_query_as()
                .fetch_all(&mut **tx)
                .await
                .map_err(db_error)?;
            schedule(tx, event, endpoints, esim_webhook_url, now).await
        }

        /// Schedules `event` for those of `endpoints` (as listed by `push_endpoints_query`)
        /// subscribed to it, and for the eSIM's own `webhook_url`. Returns how many deliveries
        /// were scheduled.
        async fn schedule(
            tx: &mut Tx<'_>,
            event: &EventRecord,
            endpoints: Vec<(String, String, String)>,
            esim_webhook_url: Option<&str>,
            now: DateTime<Utc>,
        ) -> Result<u32, StoreError> {
            let mut scheduled = 0;
            for (id, url, types) in endpoints {
                let types: Vec<EventType> = types.split(',').filter_map(EventType::parse).collect();
                if oytel_core::webhooks::subscribed(&types, event.event_type) {
                    insert_delivery(tx, event, Some(&id), &url, now).await?;
                    scheduled += 1;
                }
            }
            if let Some(url) = esim_webhook_url {
                sqlx::query(
                    "INSERT INTO signing_secrets (partner_id, environment, secret) \
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(&event.partner_id)
                .bind(event.environment.as_str())
                .bind(oytel_core::webhooks::generate_secret())
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
                insert_delivery(tx, event, None, url, now).await?;
                scheduled += 1;
            }
            Ok(scheduled)
        }

        /// Disables an endpoint and cancels its pending deliveries.
        async fn disable_endpoint(
            tx: &mut Tx<'_>,
            endpoint_id: &str,
            reason: &str,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, updated_at = $4 \
                 WHERE id = $1 AND enabled = $5",
            )
            .bind(endpoint_id)
            .bind(false)
            .bind(reason)
            .bind(now)
            .bind(true)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
            cancel_pending(tx, endpoint_id, None).await
        }

        /// Cancels an endpoint's pending deliveries.
        /// With `owner`, only if the endpoint is that partner's in that environment.
        async fn cancel_pending(
            tx: &mut Tx<'_>,
            endpoint_id: &str,
            owner: Option<&Scope>,
        ) -> Result<(), StoreError> {
            let query = match owner {
                None => sqlx::query(
                    "UPDATE deliveries SET status = 'cancelled', locked_until = NULL \
                     WHERE endpoint_id = $1 AND status = 'pending'",
                )
                .bind(endpoint_id),
                Some(scope) => sqlx::query(
                    "UPDATE deliveries SET status = 'cancelled', locked_until = NULL \
                     WHERE endpoint_id = $1 AND status = 'pending' AND partner_id = $2 \
                     AND environment = $3",
                )
                .bind(endpoint_id)
                .bind(&scope.partner_id)
                .bind(scope.environment.as_str()),
            };
            query.execute(&mut **tx).await.map_err(db_error)?;
            Ok(())
        }

        /// The eSIM row, locked for update where the backend needs it.
        async fn lock_esim(tx: &mut Tx<'_>, esim_id: &str) -> Result<Option<(EsimRecord, i64)>, StoreError> {
            let row: Option<EsimRow> = sqlx::query_as(&format!(
                "SELECT {ESIM_COLUMNS} FROM esims WHERE id = $1{}",
                $lock
            ))
            .bind(esim_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let notified: i64 = sqlx::query_scalar("SELECT thresholds_notified FROM esims WHERE id = $1")
                .bind(esim_id)
                .fetch_one(&mut **tx)
                .await
                .map_err(db_error)?;
            Ok(Some((EsimRecord::try_from(row)?, notified)))
        }

        /// `SELECT <columns> FROM <table>` limited to a scope: the start of every list query.
        fn scoped_list<'a>(columns: &str, table: &str, scope: &'a Scope) -> QueryBuilder<'a, $db> {
            let mut query = QueryBuilder::new(format!("SELECT {columns} FROM {table} WHERE partner_id = "));
            query.push_bind(&scope.partner_id);
            query.push(" AND environment = ");
            query.push_bind(scope.environment.as_str());
            query
        }

        /// Finishes a list query with the page's cursor and size, newest first, and runs it.
        async fn fetch_page<R, T>(
            mut query: QueryBuilder<'_, $db>,
            page: PageRequest,
            pool: &sqlx::Pool<$db>,
        ) -> Result<Vec<Sequenced<T>>, StoreError>
        where
            R: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin + Sequential,
            T: TryFrom<R, Error = StoreError>,
        {
            if let Some(before) = page.before {
                query.push(" AND seq < ");
                query.push_bind(before);
            }
            query.push(" ORDER BY seq DESC LIMIT ");
            query.push_bind(i64::from(page.limit));
            let rows: Vec<R> = query
                .build_query_as()
                .fetch_all(pool)
                .await
                .map_err(db_error)?;
            rows.into_iter().map(sequenced).collect()
        }


        /// One row of `table` by id, within a scope.
        async fn fetch_scoped_by_id<R, T>(
            columns: &str,
            table: &str,
            scope: &Scope,
            id: &str,
            pool: &sqlx::Pool<$db>,
        ) -> Result<Option<T>, StoreError>
        where
            R: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
            T: TryFrom<R, Error = StoreError>,
        {
            let row: Option<R> = sqlx::query_as(&format!(
                "SELECT {columns} FROM {table} WHERE id = $1 AND partner_id = $2 AND environment = $3"
            ))
            .bind(id)
            .bind(&scope.partner_id)
            .bind(scope.environment.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
            row.map(T::try_from).transpose()
        }

        /// Writes a fresh claim on an idempotency key, completed with `order_id` if given;
        /// `on_conflict` says what to do if the key exists. Returns how many rows were written.
        async fn insert_claim(
            tx: &mut Tx<'_>,
            scope: &Scope,
            claim: &IdempotencyRequest,
            order_id: Option<&str>,
            on_conflict: &str,
        ) -> Result<u64, StoreError> {
            let mut query = QueryBuilder::new("");
            push_claim(&mut query, scope, claim, order_id);
            query.push(" ").push(on_conflict);
            let result = query.build().execute(&mut **tx).await.map_err(db_error)?;
            Ok(result.rows_affected())
        }

        impl $store {
            /// Writes many sandbox provisionings in one transaction, without idempotency
            /// claims: for seeding benchmarks and load tests, not for serving requests.
            pub async fn seed(&self, writes: &[ProvisionWrite]) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                for write in writes {
                    let balance = match write.charge {
                        Charge::Sandbox { balance_cents } => balance_cents,
                        Charge::Live { .. } => {
                            return Err(StoreError::Other("seed writes sandbox orders only".into()));
                        }
                    };
                    insert_provision(&mut tx, write, balance).await?;
                }
                tx.commit().await.map_err(db_error)
            }

            /// Refreshes the planner's statistics, as autovacuum does on a live database: after
            /// a bulk load (`seed`), PostgreSQL would otherwise plan an eSIM lookup by id over
            /// the partner's whole index.
            pub async fn analyze(&self) -> Result<(), StoreError> {
                sqlx::query("ANALYZE").execute(&self.writer).await.map_err(db_error)?;
                Ok(())
            }

            /// Waits until every instance holding a live lease on the auth epoch serves the
            /// current epoch or later, or its lease has run out (a lease is a few seconds).
            /// Called after a change that bumped the epoch has committed.
            async fn await_leases(&self) -> Result<(), StoreError> {
                let epoch = self.auth_epoch().await?;
                loop {
                    let behind: i64 = sqlx::query_scalar(concat!(
                        "SELECT COUNT(*) FROM instance_leases WHERE serving_epoch < $1 \
                         AND lease_until_ms > ", $now_ms
                    ))
                    .bind(epoch)
                    .fetch_one(&self.reader)
                    .await
                    .map_err(db_error)?;
                    if behind == 0 {
                        return Ok(());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }

            async fn begin_write(&self) -> Result<sqlx::Transaction<'static, $db>, StoreError> {
                self.writer.begin_with($begin).await.map_err(db_error)
            }
        }

        #[async_trait::async_trait]
        impl Storage for $store {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&self.reader)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO settings (name, value) VALUES ('write_probe', $1) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(now.to_rfc3339())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn create_partner(&self, partner: &Partner) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO partners (id, name, email, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&partner.id)
                    .bind(&partner.name)
                    .bind(&partner.email)
                    .bind(partner.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query("INSERT INTO balances (partner_id, balance_cents) VALUES ($1, 0)")
                    .bind(&partner.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn get_partner(&self, partner_id: &str) -> Result<Option<Partner>, StoreError> {
                let row: Option<PartnerRow> =
                    sqlx::query_as("SELECT id, name, email, created_at FROM partners WHERE id = $1")
                        .bind(partner_id)
                        .fetch_optional(&self.reader)
                        .await
                        .map_err(db_error)?;
                Ok(row.map(Partner::from))
            }

            async fn list_partners(&self) -> Result<Vec<Partner>, StoreError> {
                let rows: Vec<PartnerRow> =
                    sqlx::query_as("SELECT id, name, email, created_at FROM partners ORDER BY seq")
                        .fetch_all(&self.reader)
                        .await
                        .map_err(db_error)?;
                Ok(rows.into_iter().map(Partner::from).collect())
            }

            async fn create_api_key(&self, key: &NewApiKey) -> Result<(), StoreError> {
                let result = sqlx::query(
                    "INSERT INTO api_keys (id, partner_id, environment, key_hash, hint, created_at) \
                     SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM partners WHERE id = $2)",
                )
                .bind(&key.id)
                .bind(&key.partner_id)
                .bind(key.environment.as_str())
                .bind(&key.hash)
                .bind(&key.hint)
                .bind(key.created_at)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                if result.rows_affected() == 0 {
                    return Err(StoreError::NotFound("partner"));
                }
                Ok(())
            }

            async fn find_api_key(&self, hash: &str) -> Result<Option<KeyOwner>, StoreError> {
                type Row = (String, String, String, Option<DateTime<Utc>>, Option<i64>, Option<i64>, Option<i64>);
                let row: Option<Row> = sqlx::query_as(
                    "SELECT k.id, k.partner_id, k.environment, k.revoked_at, p.provision_per_hour, \
                     p.status_per_hour, p.burst_per_second FROM api_keys k \
                     JOIN partners p ON p.id = k.partner_id WHERE k.key_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.reader)
                .await
                .map_err(db_error)?;
                row.map(|(key_id, partner_id, env, revoked_at, provision, status, burst)| {
                    Ok(KeyOwner {
                        key_id,
                        partner_id,
                        environment: environment(&env)?,
                        revoked: revoked_at.is_some(),
                        limits: overrides(provision, status, burst),
                    })
                })
                .transpose()
            }

            async fn partner_limits(&self, partner_id: &str) -> Result<Option<LimitOverrides>, StoreError> {
                let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT provision_per_hour, status_per_hour, burst_per_second FROM partners WHERE id = $1",
                )
                .bind(partner_id)
                .fetch_optional(&self.reader)
                .await
                .map_err(db_error)?;
                Ok(row.map(|(p, s, b)| overrides(p, s, b)))
            }

            async fn set_partner_limits(&self, partner_id: &str, limits: &LimitOverrides) -> Result<bool, StoreError> {
                let changed = sqlx::query(
                    "UPDATE partners SET provision_per_hour = $2, status_per_hour = $3, \
                     burst_per_second = $4 WHERE id = $1",
                )
                .bind(partner_id)
                .bind(limits.provision_per_hour.map(i64::from))
                .bind(limits.status_per_hour.map(i64::from))
                .bind(limits.burst_per_second.map(i64::from))
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                self.await_leases().await?;
                Ok(changed.rows_affected() == 1)
            }

            async fn list_api_keys(&self, partner_id: &str) -> Result<Vec<ApiKeyInfo>, StoreError> {
                let rows: Vec<ApiKeyRow> = sqlx::query_as(
                    "SELECT id, partner_id, environment, hint, created_at, revoked_at FROM api_keys \
                     WHERE partner_id = $1 ORDER BY created_at, id",
                )
                .bind(partner_id)
                .fetch_all(&self.reader)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(ApiKeyInfo::try_from).collect()
            }

            async fn revoke_api_key(&self, key_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
                let result =
                    sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                        .bind(key_id)
                        .bind(now)
                        .execute(&self.writer)
                        .await
                        .map_err(db_error)?;
                self.await_leases().await?;
                Ok(result.rows_affected() == 1)
            }

            async fn renew_epoch_lease(
                &self,
                instance_id: &str,
                serving_epoch: i64,
                lease: std::time::Duration,
            ) -> Result<(), StoreError> {
                sqlx::query(concat!(
                    "INSERT INTO instance_leases (instance_id, serving_epoch, lease_until_ms) \
                     VALUES ($1, $2, ", $now_ms, " + $3) ON CONFLICT (instance_id) DO UPDATE SET \
                     serving_epoch = excluded.serving_epoch, lease_until_ms = excluded.lease_until_ms"
                ))
                .bind(instance_id)
                .bind(serving_epoch)
                .bind(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn release_epoch_lease(&self, instance_id: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM instance_leases WHERE instance_id = $1")
                    .bind(instance_id)
                    .execute(&self.writer)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn auth_epoch(&self) -> Result<i64, StoreError> {
                sqlx::query_scalar("SELECT value FROM auth_epoch WHERE id = 1")
                    .fetch_one(&self.reader)
                    .await
                    .map_err(db_error)
            }

            async fn credit(
                &self,
                partner_id: &str,
                amount_cents: i64,
                description: &str,
                now: DateTime<Utc>,
            ) -> Result<i64, StoreError> {
                let mut tx = self.begin_write().await?;
                let balance: Option<i64> = sqlx::query_scalar(
                    "UPDATE balances SET balance_cents = balance_cents + $2 WHERE partner_id = $1 \
                     RETURNING balance_cents",
                )
                .bind(partner_id)
                .bind(amount_cents)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let Some(balance) = balance else {
                    return Err(StoreError::NotFound("partner"));
                };
                sqlx::query(
                    "INSERT INTO ledger_entries (id, partner_id, amount_cents, balance_after_cents, kind, \
                     order_id, description, created_at) VALUES ($1, $2, $3, $4, 'credit', NULL, $5, $6)",
                )
                .bind(new_id("led"))
                .bind(partner_id)
                .bind(amount_cents)
                .bind(balance)
                .bind(description)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(balance)
            }

            async fn live_balance(&self, partner_id: &str) -> Result<i64, StoreError> {
                let balance: Option<i64> =
                    sqlx::query_scalar("SELECT balance_cents FROM balances WHERE partner_id = $1")
                        .bind(partner_id)
                        .fetch_optional(&self.reader)
                        .await
                        .map_err(db_error)?;
                balance.ok_or(StoreError::NotFound("partner"))
            }

            async fn ledger(&self, partner_id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
                let rows: Vec<LedgerRow> = sqlx::query_as(
                    "SELECT id, partner_id, amount_cents, balance_after_cents, kind, order_id, \
                     description, created_at FROM ledger_entries WHERE partner_id = $1 ORDER BY seq",
                )
                .bind(partner_id)
                .fetch_all(&self.reader)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(LedgerEntry::from).collect())
            }

            async fn claim_idempotency_key(
                &self,
                scope: &Scope,
                claim: &IdempotencyRequest,
            ) -> Result<IdempotencyClaim, StoreError> {
                let mut tx = self.begin_write().await?;
                // Claim outright if nobody holds the key. On PostgreSQL a concurrent claim of the
                // same key makes this wait until that claim commits, then do nothing.
                let inserted =
                    insert_claim(&mut tx, scope, claim, None, "ON CONFLICT DO NOTHING").await?;
                if inserted == 1 {
                    tx.commit().await.map_err(db_error)?;
                    return Ok(IdempotencyClaim::Claimed);
                }
                let stored: Option<IdempotencyRow> = sqlx::query_as(concat!(
                    "SELECT request_hash, order_id, locked_until, expires_at FROM idempotency_keys \
                     WHERE partner_id = $1 AND environment = $2 AND key = $3",
                    $lock
                ))
                .bind(&scope.partner_id)
                .bind(scope.environment.as_str())
                .bind(&claim.key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let stored = stored.map(|r| StoredIdempotencyKey {
                    request_hash: r.request_hash,
                    order_id: r.order_id,
                    locked_until: r.locked_until,
                    expires_at: r.expires_at,
                });
                match decide_claim(stored.as_ref(), claim) {
                    ClaimDecision::Answer(answer) => return Ok(answer),
                    ClaimDecision::Insert => {
                        // An expired key (or one purged since the insert above): start afresh.
                        insert_claim(
                            &mut tx,
                            scope,
                            claim,
                            None,
                            "ON CONFLICT (partner_id, environment, key) DO UPDATE SET \
                             request_hash = excluded.request_hash, \
                             claim_token = excluded.claim_token, order_id = NULL, \
                             locked_until = excluded.locked_until, \
                             created_at = excluded.created_at, expires_at = excluded.expires_at",
                        )
                        .await?;
                    }
                    ClaimDecision::TakeOver => {
                        sqlx::query(
                            "UPDATE idempotency_keys SET claim_token = $4, locked_until = $5 \
                             WHERE partner_id = $1 AND environment = $2 AND key = $3",
                        )
                        .bind(&scope.partner_id)
                        .bind(scope.environment.as_str())
                        .bind(&claim.key)
                        .bind(&claim.token)
                        .bind(claim.lease_until)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    }
                }
                tx.commit().await.map_err(db_error)?;
                Ok(IdempotencyClaim::Claimed)
            }

            async fn release_idempotency_key(
                &self,
                scope: &Scope,
                claim: &ClaimRef,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE partner_id = $1 AND environment = $2 AND key = $3 \
                     AND claim_token = $4 AND order_id IS NULL",
                )
                .bind(&scope.partner_id)
                .bind(scope.environment.as_str())
                .bind(&claim.key)
                .bind(&claim.token)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn purge_idempotency_keys(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
                let result = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.writer)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }

            async fn provision(&self, write: &ProvisionWrite) -> Result<ProvisionResult, StoreError> {
                let order = &write.order;
                let mut tx = self.begin_write().await?;

                let balance_after = match write.charge {
                    Charge::Sandbox { balance_cents } => balance_cents,
                    Charge::Live {
                        minimum_balance_cents,
                    } => {
                        let debited: Option<i64> = sqlx::query_scalar(
                            "UPDATE balances SET balance_cents = balance_cents - $2 \
                             WHERE partner_id = $1 AND balance_cents - $2 >= $3 RETURNING balance_cents",
                        )
                        .bind(&order.partner_id)
                        .bind(order.amount_cents)
                        .bind(minimum_balance_cents)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_error)?;
                        let Some(balance_after) = debited else {
                            if let Some(IdempotencyWrite::ClaimNew(claim)) = &write.idempotency {
                                // A retry that waited here for its first attempt, which spent
                                // the balance: that attempt's key is stored now, to replay.
                                let stored: Option<String> = sqlx::query_scalar(
                                    "SELECT key FROM idempotency_keys WHERE partner_id = $1 \
                                     AND environment = $2 AND key = $3",
                                )
                                .bind(&order.partner_id)
                                .bind(order.environment.as_str())
                                .bind(&claim.key)
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(db_error)?;
                                if stored.is_some() {
                                    return Ok(ProvisionResult::KeyTaken);
                                }
                            }
                            let balance: Option<i64> = sqlx::query_scalar(
                                "SELECT balance_cents FROM balances WHERE partner_id = $1",
                            )
                            .bind(&order.partner_id)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_error)?;
                            return Ok(ProvisionResult::InsufficientBalance {
                                balance_cents: balance.unwrap_or_default(),
                            });
                        };
                        balance_after
                    }
                };

                // A new key already stored: a concurrent request with the same key committed
                // first (on PostgreSQL, this statement waited for it).
                match insert_provision(&mut tx, write, balance_after).await {
                    Ok(()) => {}
                    Err(StoreError::Duplicate(UniqueField::IdempotencyKey)) => {
                        return Ok(ProvisionResult::KeyTaken)
                    }
                    Err(e) => return Err(e),
                }

                if let Some(IdempotencyWrite::Complete(claim)) = &write.idempotency {
                    let completed = sqlx::query(
                        "UPDATE idempotency_keys SET order_id = $5 WHERE partner_id = $1 \
                         AND environment = $2 AND key = $3 AND claim_token = $4 AND order_id IS NULL",
                    )
                    .bind(&order.partner_id)
                    .bind(order.environment.as_str())
                    .bind(&claim.key)
                    .bind(&claim.token)
                    .bind(&order.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    if completed.rows_affected() != 1 {
                        // Dropping the transaction rolls back the charge, the order and the eSIM.
                        return Ok(ProvisionResult::ClaimLost);
                    }
                }

                tx.commit().await.map_err(db_error)?;
                Ok(ProvisionResult::Committed {
                    balance_after_cents: balance_after,
                })
            }

            async fn get_esim(
                &self,
                scope: &Scope,
                esim_id: &str,
            ) -> Result<Option<EsimRecord>, StoreError> {
                fetch_scoped_by_id::<EsimRow, _>(ESIM_COLUMNS, "esims", scope, esim_id, &self.reader).await
            }

            async fn get_esim_status(
                &self,
                scope: &Scope,
                esim_id: &str,
            ) -> Result<Option<oytel_core::ports::EsimStatusRecord>, StoreError> {
                fetch_scoped_by_id::<$crate::rows::EsimStatusRow, _>(
                    ESIM_STATUS_COLUMNS,
                    "esims",
                    scope,
                    esim_id,
                    &self.reader,
                )
                .await
            }

            async fn get_esim_by_qr_token(&self, token: &str) -> Result<Option<EsimRecord>, StoreError> {
                let row: Option<EsimRow> = sqlx::query_as(&format!(
                    "SELECT {ESIM_COLUMNS} FROM esims WHERE qr_token = $1"
                ))
                .bind(token)
                .fetch_optional(&self.reader)
                .await
                .map_err(db_error)?;
                row.map(EsimRecord::try_from).transpose()
            }

            async fn list_esims(
                &self,
                scope: &Scope,
                filter: &EsimFilter,
                page: PageRequest,
            ) -> Result<Vec<Sequenced<EsimRecord>>, StoreError> {
                let mut query = scoped_list(ESIM_COLUMNS, "esims", scope);
                if let Some(status) = filter.status {
                    query.push(" AND status = ");
                    query.push_bind(status.as_str());
                }
                if let Some(reference_id) = &filter.reference_id {
                    query.push(" AND reference_id = ");
                    query.push_bind(reference_id);
                }
                if let Some(email) = &filter.customer_email {
                    query.push(" AND lower(customer_email) = lower(");
                    query.push_bind(email);
                    query.push(")");
                }
                fetch_page::<EsimRow, _>(query, page, &self.reader).await
            }

            async fn get_order(
                &self,
                scope: &Scope,
                order_id: &str,
            ) -> Result<Option<OrderRecord>, StoreError> {
                fetch_scoped_by_id::<OrderRow, _>(ORDER_COLUMNS, "orders", scope, order_id, &self.reader).await
            }

            async fn list_orders(
                &self,
                scope: &Scope,
                reference_id: Option<String>,
                page: PageRequest,
            ) -> Result<Vec<Sequenced<OrderRecord>>, StoreError> {
                let mut query = scoped_list(ORDER_COLUMNS, "orders", scope);
                if let Some(reference_id) = &reference_id {
                    query.push(" AND reference_id = ");
                    query.push_bind(reference_id);
                }
                fetch_page::<OrderRow, _>(query, page, &self.reader).await
            }

            async fn set_setting_once(&self, name: &str, value: &str) -> Result<bool, StoreError> {
                let result = sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(name)
                    .bind(value)
                    .execute(&self.writer)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected() == 1)
            }

            async fn get_esim_by_iccid(&self, iccid: &str) -> Result<Option<EsimRecord>, StoreError> {
                let row: Option<EsimRow> =
                    sqlx::query_as(&format!("SELECT {ESIM_COLUMNS} FROM esims WHERE iccid = $1"))
                        .bind(iccid)
                        .fetch_optional(&self.reader)
                        .await
                        .map_err(db_error)?;
                row.map(EsimRecord::try_from).transpose()
            }

            async fn transition_esim(
                &self,
                esim_id: &str,
                to: EsimStatus,
                now: DateTime<Utc>,
            ) -> Result<TransitionResult, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some((mut esim, _)) = lock_esim(&mut tx, esim_id).await? else {
                    return Ok(TransitionResult::NotFound);
                };
                let from = esim.status;
                if oytel_core::lifecycle::check_transition(from, to).is_err() {
                    return Ok(TransitionResult::Invalid(from));
                }
                if to == EsimStatus::Active && esim.activated_at.is_none() {
                    esim.activated_at = Some(now);
                }
                esim.status = to;
                let changed = sqlx::query(
                    "UPDATE esims SET status = $2, activated_at = $3 WHERE id = $1 AND status = $4",
                )
                .bind(esim_id)
                .bind(to.as_str())
                .bind(esim.activated_at)
                .bind(from.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if changed.rows_affected() != 1 {
                    return Ok(TransitionResult::Invalid(from));
                }
                let event_type = match (from, to) {
                    (EsimStatus::Provisioned, EsimStatus::Active) => Some(EventType::EsimActivated),
                    (_, EsimStatus::Expired) => Some(EventType::EsimExpired),
                    _ => None,
                };
                if let Some(event_type) = event_type {
                    let event = oytel_core::webhooks::esim_event(event_type, &esim, None, now);
                    insert_event_row(&mut tx, &event).await?;
                    fan_out(&mut tx, &event, esim.webhook_url.as_deref(), now).await?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(TransitionResult::Done(Box::new(esim)))
            }

            async fn record_usage(
                &self,
                esim_id: &str,
                usage: &UsageInput,
                now: DateTime<Utc>,
            ) -> Result<UsageResult, StoreError> {
                let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                let mut tx = self.begin_write().await?;
                let Some((mut esim, notified)) = lock_esim(&mut tx, esim_id).await? else {
                    return Ok(UsageResult::NotFound);
                };
                let inserted = sqlx::query(
                    "INSERT INTO usage_records (record_id, esim_id, data_mb, calls, sms, recorded_at, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&usage.record_id)
                .bind(esim_id)
                .bind(to_i64(usage.data_mb))
                .bind(to_i64(usage.calls))
                .bind(to_i64(usage.sms))
                .bind(usage.recorded_at)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if inserted.rows_affected() == 0 {
                    return Ok(UsageResult::Duplicate);
                }
                if !matches!(esim.status, EsimStatus::Active | EsimStatus::Suspended) {
                    return Ok(UsageResult::NotActive(esim.status));
                }
                esim.data_used_mb = esim.data_used_mb.saturating_add(usage.data_mb);
                esim.calls_made = esim.calls_made.saturating_add(usage.calls);
                esim.sms_sent = esim.sms_sent.saturating_add(usage.sms);
                let (crossed, mask) =
                    oytel_core::webhooks::crossed_thresholds(esim.data_used_mb, esim.data_limit_mb, notified);
                sqlx::query(
                    "UPDATE esims SET data_used_mb = $2, calls_made = $3, sms_sent = $4, \
                     thresholds_notified = $5 WHERE id = $1",
                )
                .bind(esim_id)
                .bind(to_i64(esim.data_used_mb))
                .bind(to_i64(esim.calls_made))
                .bind(to_i64(esim.sms_sent))
                .bind(mask)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                for threshold in crossed {
                    let event = oytel_core::webhooks::esim_event(
                        EventType::UsageThreshold,
                        &esim,
                        Some(threshold),
                        now,
                    );
                    insert_event_row(&mut tx, &event).await?;
                    fan_out(&mut tx, &event, esim.webhook_url.as_deref(), now).await?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(UsageResult::Applied(Box::new(esim)))
            }

            async fn due_expiries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<String>, StoreError> {
                sqlx::query_scalar(
                    "SELECT id FROM esims WHERE status IN ('provisioned', 'active', 'suspended') \
                     AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
                )
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await
                .map_err(db_error)
            }

            async fn create_endpoint(&self, e: &EndpointRecord) -> Result<(), StoreError> {
bind_endpoint(
                    sqlx::query(
                        "INSERT INTO webhook_endpoints (id, partner_id, environment, url, description, \
                         event_types, secret, previous_secret, previous_secret_expires_at, enabled, \
                         disabled_reason, failing_since, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    ),
                    e,
                )
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn list_endpoints(&self, scope: &Scope) -> Result<Vec<EndpointRecord>, StoreError> {
                let rows: Vec<EndpointRow> = sqlx::query_as(&format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                     WHERE partner_id = $1 AND environment = $2 ORDER BY seq"
                ))
                .bind(&scope.partner_id)
                .bind(scope.environment.as_str())
                .fetch_all(&self.reader)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(EndpointRecord::try_from).collect()
            }

            async fn get_endpoint(
                &self,
                scope: &Scope,
                endpoint_id: &str,
            ) -> Result<Option<EndpointRecord>, StoreError> {
                fetch_scoped_by_id::<EndpointRow, _>(
                    ENDPOINT_COLUMNS,
                    "webhook_endpoints",
                    scope,
                    endpoint_id,
                    &self.reader,
                )
                .await
            }

            async fn update_endpoint(&self, e: &EndpointRecord) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                // Deliveries before the endpoint, in the order the delivery worker locks them:
                // the opposite order can deadlock with it on PostgreSQL.
                if !e.enabled {
                    let owner = Scope {
                        partner_id: e.partner_id.clone(),
                        environment: e.environment,
                    };
                    cancel_pending(&mut tx, &e.id, Some(&owner)).await?;
                }
                let changed = bind_endpoint(
                    sqlx::query(
                        "UPDATE webhook_endpoints SET url = $4, description = $5, event_types = $6, \
                         secret = $7, previous_secret = $8, previous_secret_expires_at = $9, \
                         enabled = $10, disabled_reason = $11, failing_since = $12, \
                         created_at = $13, updated_at = $14 \
                         WHERE id = $1 AND partner_id = $2 AND environment = $3",
                    ),
                    e,
                )
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if changed.rows_affected() == 0 {
                    return Ok(false);
                }
                tx.commit().await.map_err(db_error)?;
                Ok(true)
            }

            async fn delete_endpoint(&self, scope: &Scope, endpoint_id: &str) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                // Deliveries first, as in `update_endpoint`.
                cancel_pending(&mut tx, endpoint_id, Some(scope)).await?;
                let deleted = sqlx::query(
                    "DELETE FROM webhook_endpoints WHERE id = $1 AND partner_id = $2 AND environment = $3",
                )
                .bind(endpoint_id)
                .bind(&scope.partner_id)
                .bind(scope.environment.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if deleted.rows_affected() == 0 {
                    return Ok(false);
                }
                tx.commit().await.map_err(db_error)?;
                Ok(true)
            }

            async fn esim_signing_secret(&self, scope: &Scope, candidate: &str) -> Result<SigningSecret, StoreError> {
                sqlx::query(
                    "INSERT INTO signing_secrets (partner_id, environment, secret) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&scope.partner_id)
                .bind(scope.environment.as_str())
                .bind(candidate)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                let row: SecretRow = sqlx::query_as(
                    "SELECT secret, previous_secret, previous_secret_expires_at FROM signing_secrets \
                     WHERE partner_id = $1 AND environment = $2",
                )
                .bind(&scope.partner_id)
                .bind(scope.environment.as_str())
                .fetch_one(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(row.into())
            }

            async fn rotate_esim_signing_secret(
                &self,
                scope: &Scope,
                new_secret: &str,
                previous_expires_at: DateTime<Utc>,
            ) -> Result<SigningSecret, StoreError> {
                let row: SecretRow = sqlx::query_as(
                    "INSERT INTO signing_secrets (partner_id, environment, secret) VALUES ($1, $2, $3) \
                     ON CONFLICT (partner_id, environment) DO UPDATE SET \
                     previous_secret = signing_secrets.secret, \
                     previous_secret_expires_at = $4, secret = excluded.secret \
                     RETURNING secret, previous_secret, previous_secret_expires_at",
                )
                .bind(&scope.partner_id)
                .bind(scope.environment.as_str())
                .bind(new_secret)
                .bind(previous_expires_at)
                .fetch_one(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(row.into())
            }

            async fn send_test_event(&self, event: &EventRecord, endpoint_id: &str) -> Result<String, StoreError> {
                let mut tx = self.begin_write().await?;
                let url: Option<String> = sqlx::query_scalar(
                    "SELECT url FROM webhook_endpoints WHERE id = $1 AND partner_id = $2 AND environment = $3",
                )
                .bind(endpoint_id)
                .bind(&event.partner_id)
                .bind(event.environment.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let url = url.ok_or(StoreError::NotFound("webhook endpoint"))?;
                insert_event_row(&mut tx, event).await?;
                let delivery = insert_delivery(&mut tx, event, Some(endpoint_id), &url, event.created_at).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(delivery)
            }

            async fn get_event(&self, scope: &Scope, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
                fetch_scoped_by_id::<EventRow, _>(EVENT_COLUMNS, "events", scope, event_id, &self.reader).await
            }

            async fn redeliver_event(
                &self,
                scope: &Scope,
                event_id: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<u32>, StoreError> {
                let Some(event) = self.get_event(scope, event_id).await? else {
                    return Ok(None);
                };
                let mut tx = self.begin_write().await?;
                let url: Option<String> = match &event.esim_id {
                    Some(esim_id) => sqlx::query_scalar("SELECT webhook_url FROM esims WHERE id = $1")
                        .bind(esim_id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_error)?
                        .flatten(),
                    None => None,
                };
                let scheduled = fan_out(&mut tx, &event, url.as_deref(), now).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(scheduled))
            }

            async fn claim_due_deliveries(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limits: ClaimLimits,
            ) -> Result<Vec<DueDelivery>, StoreError> {
                // One claim at a time: each must see the leases of the one before, or two
                // workers could both find a destination free (on PostgreSQL a statement's
                // snapshot predates a concurrent claim's commit; SQLite's write lock already
                // serialises).
                let mut tx = self.begin_write().await?;
                if !$serialize_claims.is_empty() {
                    sqlx::query($serialize_claims).execute(&mut *tx).await.map_err(db_error)?;
                }
                // The rules are the port's table: `busy` destinations are skipped, `free`
                // numbers each other destination's deliveries oldest first, `heads` gives
                // each partner's destinations turns after the ones it `held` already, and
                // `chosen` takes destinations by turn. Joins rather than correlated
                // subqueries, so that the plan stays linear in the due deliveries.
                let mut claimed: Vec<(i64, String, String, Option<String>, String, i64)> = sqlx::query_as(concat!(
                    "WITH due AS (SELECT seq, url, partner_id, next_attempt_at, locked_until \
                       FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1), \
                     busy AS (SELECT DISTINCT url, partner_id FROM due WHERE locked_until > $1), \
                     held AS (SELECT partner_id, COUNT(*) AS n FROM busy GROUP BY partner_id), \
                     free AS (SELECT seq, url, partner_id, next_attempt_at, \
                       ROW_NUMBER() OVER (PARTITION BY url ORDER BY seq) AS place FROM due \
                       WHERE NOT EXISTS (SELECT 1 FROM busy b WHERE b.url = due.url)), \
                     heads AS (SELECT f.url, f.seq, f.next_attempt_at, \
                       ROW_NUMBER() OVER (PARTITION BY f.partner_id ORDER BY f.next_attempt_at, f.seq) \
                       + COALESCE(h.n, 0) AS turn \
                       FROM free f LEFT JOIN held h ON h.partner_id = f.partner_id WHERE f.place = 1), \
                     chosen AS (SELECT url FROM heads WHERE turn <= $5 \
                       ORDER BY turn, next_attempt_at, seq LIMIT $3), \
                     picked AS (SELECT d.seq FROM deliveries d JOIN free f ON f.seq = d.seq \
                       JOIN chosen c ON c.url = f.url WHERE f.place <= $4 AND d.status = 'pending' \
                       AND (d.locked_until IS NULL OR d.locked_until <= $1)",
                    $skip,
                    ") UPDATE deliveries SET locked_until = $2 WHERE seq IN (SELECT seq FROM picked) \
                     AND status = 'pending' AND (locked_until IS NULL OR locked_until <= $1) \
                     RETURNING seq, id, event_id, endpoint_id, url, attempts"
                ))
                .bind(now)
                .bind(lease_until)
                .bind(i64::from(limits.destinations))
                .bind(i64::from(limits.per_destination))
                .bind(i64::from(limits.per_partner))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                // In the order the deliveries were created (RETURNING promises no order).
                claimed.sort_by_key(|row| row.0);
                let mut due = Vec::with_capacity(claimed.len());
                for (_, id, event_id, endpoint_id, url, attempts) in claimed {
                    type Secrets = (String, Option<String>, Option<String>, Option<DateTime<Utc>>, Option<String>, Option<String>, Option<DateTime<Utc>>);
                    let row: Option<Secrets> = sqlx::query_as(
                        "SELECT e.payload, w.secret, w.previous_secret, w.previous_secret_expires_at, \
                         s.secret, s.previous_secret, s.previous_secret_expires_at \
                         FROM deliveries d JOIN events e ON e.id = d.event_id \
                         LEFT JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                         LEFT JOIN signing_secrets s ON s.partner_id = d.partner_id \
                         AND s.environment = d.environment WHERE d.id = $1",
                    )
                    .bind(&id)
                    .fetch_optional(&self.reader)
                    .await
                    .map_err(db_error)?;
                    let Some((payload, w_secret, w_prev, w_until, s_secret, s_prev, s_until)) = row else {
                        continue;
                    };
                    let secrets = match (&endpoint_id, w_secret, s_secret) {
                        (Some(_), Some(secret), _) => SigningSecret {
                            secret,
                            previous_secret: w_prev,
                            previous_secret_expires_at: w_until,
                        },
                        (None, _, Some(secret)) => SigningSecret {
                            secret,
                            previous_secret: s_prev,
                            previous_secret_expires_at: s_until,
                        },
                        // The endpoint was deleted meanwhile: its deliveries are cancelled.
                        _ => continue,
                    };
                    due.push(DueDelivery {
                        id,
                        event_id,
                        endpoint_id,
                        url,
                        attempts: u32::try_from(attempts).unwrap_or_default(),
                        payload,
                        secrets,
                    });
                }
                Ok(due)
            }

            async fn release_deliveries(
                &self,
                delivery_ids: &[String],
                lease_until: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                if delivery_ids.is_empty() {
                    return Ok(());
                }
                let mut query: QueryBuilder<'_, $db> =
                    QueryBuilder::new("UPDATE deliveries SET locked_until = NULL WHERE locked_until = ");
                query.push_bind(lease_until);
                query.push(" AND status = 'pending' AND id IN (");
                let mut ids = query.separated(", ");
                for id in delivery_ids {
                    ids.push_bind(id);
                }
                query.push(")");
                query.build().execute(&self.writer).await.map_err(db_error)?;
                Ok(())
            }

            async fn record_attempts(
                &self,
                outcomes: &[AttemptOutcome],
                disable_after: chrono::Duration,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                // The writes go in chains: one round trip for a run of attempts, broken only
                // where an endpoint's failure must be read back to decide on disabling it.
                let mut run: Vec<&AttemptOutcome> = Vec::new();
                for outcome in outcomes {
                    // A delivery's second attempt in one call goes after its first (on
                    // PostgreSQL, one statement cannot update a row twice).
                    if run.iter().any(|o| o.delivery_id == outcome.delivery_id) {
                        write_attempts(&mut tx, &run).await?;
                        run.clear();
                    }
                    run.push(outcome);
                    let Some(endpoint_id) = &outcome.endpoint_id else {
                        continue;
                    };
                    if let AttemptResult::Delivered = outcome.result {
                        continue;
                    }
                    // The run so far first: a success before this failure ends the streak
                    // this failure then starts.
                    write_attempts(&mut tx, &run).await?;
                    run.clear();
                    if let AttemptResult::Gone = outcome.result {
                        disable_endpoint(&mut tx, endpoint_id, "the endpoint answered 410 Gone", outcome.at).await?;
                        continue;
                    }
                    let since: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
                        "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) \
                         WHERE id = $1 RETURNING failing_since",
                    )
                    .bind(endpoint_id)
                    .bind(outcome.at)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    if let Some(Some(since)) = since {
                        if outcome.at - since >= disable_after {
                            let reason = format!("every delivery has failed since {}", since.to_rfc3339());
                            disable_endpoint(&mut tx, endpoint_id, &reason, outcome.at).await?;
                        }
                    }
                }
                write_attempts(&mut tx, &run).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(())
            }

            async fn list_attempts(
                &self,
                scope: &Scope,
                endpoint_id: Option<String>,
                page: PageRequest,
            ) -> Result<Vec<Sequenced<AttemptRecord>>, StoreError> {
                let mut query: QueryBuilder<'_, $db> = QueryBuilder::new(
                    "SELECT a.seq, a.id, a.delivery_id, d.event_id, e.event_type, d.url, a.attempt, \
                     a.status_code, a.duration_ms, a.error, a.next_attempt_at, a.delivery_status, \
                     a.created_at FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
                     JOIN events e ON e.id = d.event_id WHERE d.partner_id = ",
                );
                query.push_bind(&scope.partner_id);
                query.push(" AND d.environment = ");
                query.push_bind(scope.environment.as_str());
                if let Some(endpoint_id) = &endpoint_id {
                    query.push(" AND d.endpoint_id = ");
                    query.push_bind(endpoint_id);
                }
                if let Some(before) = page.before {
                    query.push(" AND a.seq < ");
                    query.push_bind(before);
                }
                query.push(" ORDER BY a.seq DESC LIMIT ");
                query.push_bind(i64::from(page.limit));
                let rows: Vec<AttemptRow> = query
                    .build_query_as()
                    .fetch_all(&self.reader)
                    .await
                    .map_err(db_error)?;
                rows.into_iter().map(sequenced).collect()
            }
        }
    };
}

pub(crate) use storage_impl;
