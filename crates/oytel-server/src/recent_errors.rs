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

/// A ring of the newest [`KEPT`] server errors.
#[derive(Debug, Default)]
pub struct Recent(Mutex<VecDeque<ServerError>>);

impl Recent {
    /// An empty ring.
    pub const fn new() -> Recent {
        Recent(Mutex::new(VecDeque::new()))
    }

    /// Records a server error (the oldest is dropped past [`KEPT`]).
    pub fn record(&self, error: ServerError) {
        let mut recent = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(error);
    }

    /// The errors kept, newest first.
    pub fn newest_first(&self) -> Vec<ServerError> {
        let recent = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        recent.iter().rev().cloned().collect()
    }

    /// The errors kept, counted by code, most frequent first.
    pub fn by_code(&self) -> Vec<(ErrorCode, usize)> {
        let mut counts: Vec<(ErrorCode, usize)> = Vec::new();
        for e in self.newest_first() {
            match counts.iter_mut().find(|(code, _)| *code == e.code) {
                Some((_, n)) => *n += 1,
                None => counts.push((e.code, 1)),
            }
        }
        counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        counts
    }
}

/// This instance's ring.
static RECENT: Recent = Recent::new();

/// Records a server error of this instance.
pub fn record(error: ServerError) {
    RECENT.record(error);
}

/// This instance's errors kept, newest first.
pub fn newest_first() -> Vec<ServerError> {
    RECENT.newest_first()
}

/// This instance's errors kept, counted by code, most frequent first.
pub fn by_code() -> Vec<(ErrorCode, usize)> {
    RECENT.by_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_are_kept_and_counted_by_code() {
        let recent = Recent::new();
        let at = Utc::now();
        for i in 0..KEPT + 5 {
            let code = if i % 3 == 0 {
                ErrorCode::ServiceUnavailable
            } else {
                ErrorCode::InternalError
            };
            recent.record(ServerError {
                at,
                status: 500,
                code,
                request_id: Some(format!("req_{i}")),
            });
        }
        let kept = recent.newest_first();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(
            kept[0].request_id.as_deref(),
            Some(&*format!("req_{}", KEPT + 4))
        );
        let counted: usize = recent.by_code().iter().map(|(_, n)| n).sum();
        assert_eq!(counted, KEPT);
        assert_eq!(recent.by_code()[0].0, ErrorCode::InternalError);
    }
}
