//! The last server errors (5xx) this instance answered, for the operator console: when, which
//! code, on which route, and the request id that finds their log lines. Kept in memory, the
//! newest [`KEPT`]; each instance keeps its own (the metrics sum them across instances).

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use oytel_types::ErrorCode;

/// How many are kept.
pub const KEPT: usize = 50;

/// One server error.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerError {
    /// When.
    pub at: DateTime<Utc>,
    /// The HTTP status.
    pub status: u16,
    /// The stable code answered.
    pub code: ErrorCode,
    /// The request id (its log lines carry it).
    pub request_id: Option<String>,
}

static RECENT: Mutex<VecDeque<ServerError>> = Mutex::new(VecDeque::new());

/// Records a server error (the oldest is dropped past [`KEPT`]).
pub fn record(error: ServerError) {
    let mut recent = RECENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if recent.len() == KEPT {
        recent.pop_front();
    }
    recent.push_back(error);
}

/// The errors kept, newest first.
pub fn newest_first() -> Vec<ServerError> {
    let recent = RECENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    recent.iter().rev().cloned().collect()
}

/// The errors kept, counted by code, most frequent first.
pub fn by_code() -> Vec<(ErrorCode, usize)> {
    let mut counts: Vec<(ErrorCode, usize)> = Vec::new();
    for e in newest_first() {
        match counts.iter_mut().find(|(code, _)| *code == e.code) {
            Some((_, n)) => *n += 1,
            None => counts.push((e.code, 1)),
        }
    }
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_are_kept_and_counted_by_code() {
        let at = Utc::now();
        for i in 0..KEPT + 5 {
            let code = if i % 3 == 0 {
                ErrorCode::ServiceUnavailable
            } else {
                ErrorCode::InternalError
            };
            record(ServerError {
                at,
                status: 500,
                code,
                request_id: Some(format!("req_{i}")),
            });
        }
        let kept = newest_first();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(
            kept[0].request_id.as_deref(),
            Some(&*format!("req_{}", KEPT + 4))
        );
        let counted: usize = by_code().iter().map(|(_, n)| n).sum();
        assert_eq!(counted, KEPT);
        assert_eq!(by_code()[0].0, ErrorCode::InternalError);
    }
}
