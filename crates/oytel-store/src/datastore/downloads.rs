//! Reports from the SM-DP+ about a profile's download (`oytel_core::downloads`): each kept
//! once per call identifier, and applied to its eSIM (the profile, an activation, the event)
//! in the same transaction.

use oytel_core::downloads::{self, NoticeOutcome, ProfileNotice};
use oytel_core::ports::StoreError;
use oytel_core::EsimStatus;
use oytel_types::EsimProfile;

use super::esims::{lock_esim, transition_locked, Locked};
use super::outbox::{fan_out, insert_event_row};
use super::sql::begin_write;
use super::Store;
use crate::errors::db_error;

pub(super) async fn record_profile_notice(
    store: &Store,
    notice: &ProfileNotice,
) -> Result<NoticeOutcome, StoreError> {
    let mut tx = begin_write(store).await?;
    let esim_id: Option<String> = sqlx::query_scalar("SELECT id FROM esims WHERE iccid = $1")
        .bind(&notice.iccid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
    let kept = sqlx::query(
        "INSERT INTO profile_notifications (requester_id, call_id, iccid, esim_id, point, \
         success, result, eid, happened_at, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (requester_id, call_id) DO NOTHING",
    )
    .bind(&notice.requester_id)
    .bind(&notice.call_id)
    .bind(&notice.iccid)
    .bind(&esim_id)
    .bind(i64::from(notice.point))
    .bind(notice.success)
    .bind(&notice.result)
    .bind(&notice.eid)
    .bind(notice.happened_at)
    .bind(notice.received_at)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    if kept.rows_affected() == 0 {
        return Ok(NoticeOutcome::Repeated);
    }
    let locked = match &esim_id {
        Some(id) => lock_esim(&mut tx, id).await?,
        None => None,
    };
    let Some(Locked { mut esim, .. }) = locked else {
        tx.commit().await.map_err(db_error)?;
        return Ok(NoticeOutcome::UnknownIccid);
    };
    // A builtin profile has no SM-DP+ to report on it: such a report is kept, not applied.
    let changed = esim
        .profile
        .as_ref()
        .and_then(|profile| downloads::apply(profile, notice));
    let Some(profile) = changed else {
        tx.commit().await.map_err(db_error)?;
        return Ok(NoticeOutcome::Kept);
    };
    write_profile(&mut tx, &esim.id, &profile).await?;
    esim.profile = Some(profile);
    let now = notice.received_at;
    if let Some(event_type) = notice.effect.event {
        let event = oytel_core::webhooks::esim_event(event_type, &esim, None, now);
        insert_event_row(&mut tx, &event).await?;
        fan_out(&mut tx, &event, esim.webhook_url.as_deref(), now).await?;
    }
    if notice.effect.activates && esim.status == EsimStatus::Provisioned {
        // `esim.activated`, with the profile; the profile's state is kept either way.
        let at = notice.happened_at.min(now);
        transition_locked(&mut tx, esim.clone(), EsimStatus::Active, at).await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(NoticeOutcome::Applied { esim_id: esim.id })
}

async fn write_profile(
    tx: &mut super::sql::Tx<'_>,
    esim_id: &str,
    profile: &EsimProfile,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE esims SET profile_state = $2, eid = $3, profile_updated_at = $4, \
         profile_result = $5 WHERE id = $1",
    )
    .bind(esim_id)
    .bind(profile.state.as_str())
    .bind(&profile.eid)
    .bind(profile.updated_at)
    .bind(&profile.last_result)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}
