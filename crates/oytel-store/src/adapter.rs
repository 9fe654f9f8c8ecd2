//! The storage implementation shared by the backends.
//!
//! Both SQLite and PostgreSQL accept the same SQL for everything we do (`$N` placeholders,
//! `ON CONFLICT`, `RETURNING`, expression indexes), so the `Storage` implementation is written
//! once, here, and instantiated per backend by [`storage_impl!`] with the two things that
//! differ: how a write transaction begins (SQLite: `BEGIN IMMEDIATE`, taking the write lock
//! at once) and how a row is locked for update (PostgreSQL: `FOR UPDATE`; SQLite's writer
//! lock already serialises). A macro rather than generic code keeps each instance a plain,
//! concrete sqlx program. Migrations stay per backend (`migrations/<backend>/`).

use oytel_core::ports::{StoreError, UniqueField};

pub(crate) const ESIM_COLUMNS: &str =
    "seq, id, partner_id, environment, order_id, plan_id, plan_name, \
    validity_days, term_months, iccid, msisdn, matching_id, activation_code, qr_token, status, \
    customer_email, customer_name, reference_id, webhook_url, data_limit_mb, data_used_mb, \
    calls_made, sms_sent, activated_at, expires_at, created_at";
pub(crate) const ORDER_COLUMNS: &str =
    "seq, id, partner_id, environment, esim_id, plan_id, term_months, \
    amount_cents, currency, customer_email, customer_name, reference_id, balance_after_cents, \
    request_id, created_at";

/// Maps a sqlx error to the port's error, recognising unique violations and a busy database.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let message = db.message();
            let field = if message.contains("iccid") {
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
        // SQLite: the writer lock timed out. PostgreSQL: serialization failure, deadlock,
        // too many connections, shutting down.
        sqlx::Error::Database(db)
            if db.message().contains("database is locked")
                || db.message().contains("busy")
                || matches!(
                    db.code().as_deref(),
                    Some("40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03")
                ) =>
        {
            StoreError::Unavailable(db.message().to_owned())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// Implements `Storage` for `$store`, whose fields `writer` and `reader` are pools of `$db`.
macro_rules! storage_impl {
    ($store:ty, $db:ty, begin = $begin:literal, lock = $lock:literal) => {
        use chrono::{DateTime, Utc};
        use oytel_core::numbers::new_id;
        use oytel_core::ports::{
            decide_claim, ApiKeyInfo, Charge, ClaimDecision, ClaimRef, EsimFilter, EsimRecord,
            IdempotencyClaim, IdempotencyRequest, KeyOwner, LedgerEntry, NewApiKey, OrderRecord,
            PageRequest, Partner, ProvisionResult, ProvisionWrite, Sequenced, Storage, StoreError,
            StoredIdempotencyKey,
        };
        use oytel_core::Scope;
        use sqlx::QueryBuilder;

        use $crate::adapter::{db_error, ESIM_COLUMNS, ORDER_COLUMNS};
        use $crate::rows::{
            environment, sequenced, ApiKeyRow, EsimRow, IdempotencyRow, LedgerRow, OrderRow,
            PartnerRow, Sequential,
        };

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

        /// Writes a fresh claim on an idempotency key; `on_conflict` says what to do if the
        /// key exists. Returns how many rows were written.
        async fn insert_claim(
            tx: &mut sqlx::Transaction<'static, $db>,
            scope: &Scope,
            claim: &IdempotencyRequest,
            on_conflict: &str,
        ) -> Result<u64, StoreError> {
            let result = sqlx::query(&format!(
                "INSERT INTO idempotency_keys (partner_id, environment, key, request_hash, \
                 claim_token, order_id, locked_until, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8) {on_conflict}"
            ))
            .bind(&scope.partner_id)
            .bind(scope.environment.as_str())
            .bind(&claim.key)
            .bind(&claim.request_hash)
            .bind(&claim.token)
            .bind(claim.lease_until)
            .bind(claim.now)
            .bind(claim.expires_at)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
            Ok(result.rows_affected())
        }

        impl $store {
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
                let row: Option<(String, String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
                    "SELECT id, partner_id, environment, revoked_at FROM api_keys WHERE key_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.reader)
                .await
                .map_err(db_error)?;
                row.map(|(key_id, partner_id, env, revoked_at)| {
                    Ok(KeyOwner {
                        key_id,
                        partner_id,
                        environment: environment(&env)?,
                        revoked: revoked_at.is_some(),
                    })
                })
                .transpose()
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
                Ok(result.rows_affected() == 1)
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
                let inserted = insert_claim(&mut tx, scope, claim, "ON CONFLICT DO NOTHING").await?;
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
                let esim = &write.esim;
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
                        sqlx::query(
                            "INSERT INTO ledger_entries (id, partner_id, amount_cents, \
                             balance_after_cents, kind, order_id, description, created_at) \
                             VALUES ($1, $2, $3, $4, 'charge', $5, $6, $7)",
                        )
                        .bind(new_id("led"))
                        .bind(&order.partner_id)
                        .bind(-order.amount_cents)
                        .bind(balance_after)
                        .bind(&order.id)
                        .bind(format!(
                            "{} x{} month(s) for {}",
                            order.plan_id, order.term_months, order.esim_id
                        ))
                        .bind(order.created_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                        balance_after
                    }
                };

                sqlx::query(
                    "INSERT INTO orders (id, partner_id, environment, esim_id, plan_id, term_months, \
                     amount_cents, currency, customer_email, customer_name, reference_id, \
                     balance_after_cents, request_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&order.id)
                .bind(&order.partner_id)
                .bind(order.environment.as_str())
                .bind(&order.esim_id)
                .bind(&order.plan_id)
                .bind(i64::from(order.term_months))
                .bind(order.amount_cents)
                .bind(&order.currency)
                .bind(&order.customer_email)
                .bind(&order.customer_name)
                .bind(&order.reference_id)
                .bind(balance_after)
                .bind(&order.request_id)
                .bind(order.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;

                sqlx::query(
                    "INSERT INTO esims (id, partner_id, environment, order_id, plan_id, plan_name, \
                     validity_days, term_months, iccid, msisdn, matching_id, activation_code, qr_token, \
                     status, customer_email, customer_name, reference_id, webhook_url, data_limit_mb, \
                     data_used_mb, calls_made, sms_sent, activated_at, expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                     $18, $19, $20, $21, $22, $23, $24, $25)",
                )
                .bind(&esim.id)
                .bind(&esim.partner_id)
                .bind(esim.environment.as_str())
                .bind(&esim.order_id)
                .bind(&esim.plan_id)
                .bind(&esim.plan_name)
                .bind(i64::from(esim.validity_days))
                .bind(i64::from(esim.term_months))
                .bind(&esim.iccid)
                .bind(&esim.msisdn)
                .bind(&esim.matching_id)
                .bind(&esim.activation_code)
                .bind(&esim.qr_token)
                .bind(esim.status.as_str())
                .bind(&esim.customer_email)
                .bind(&esim.customer_name)
                .bind(&esim.reference_id)
                .bind(&esim.webhook_url)
                .bind(i64::try_from(esim.data_limit_mb).unwrap_or(i64::MAX))
                .bind(i64::try_from(esim.data_used_mb).unwrap_or(i64::MAX))
                .bind(i64::try_from(esim.calls_made).unwrap_or(i64::MAX))
                .bind(i64::try_from(esim.sms_sent).unwrap_or(i64::MAX))
                .bind(esim.activated_at)
                .bind(esim.expires_at)
                .bind(esim.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;

                if let Some(claim) = &write.idempotency {
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
        }
    };
}

pub(crate) use storage_impl;
