//! Pages of lists: newest first, a limit of 1 to 100, and cursors that point below a row's
//! sequence number (so that rows added meanwhile never shift a page).
//!
//! | a `cursor` | means |
//! |---|---|
//! | absent or empty | the first page |
//! | 1 to 18 digits ([`CURSOR_PATTERN`]), what `next_cursor` gives | the rows below that position: any such value is a page, possibly empty |
//! | `djE6…` (base64 of `v1:<n>`, what releases before 2026-11-30 gave), `n` of 1 to 18 digits | the same, so a client paging across an upgrade carries on |
//! | anything else | `400 INVALID_CURSOR` |
//!
//! Partners treat cursors as opaque; the spec states their pattern so that a generated client
//! or a validator knows which strings are cursors.

use base64::Engine as _;

use crate::CoreError;

/// Default and largest page sizes of lists.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// Largest page size.
pub const MAX_PAGE_SIZE: u32 = 100;

/// One page of a list: at most `limit` rows older than `before` (a row's sequence number),
/// newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows to return.
    pub limit: u32,
    /// Only rows with a sequence number below this one.
    pub before: Option<i64>,
}

/// A row of a list with its sequence number (the position a cursor points at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequenced<T> {
    /// Insertion order, increasing.
    pub seq: i64,
    /// The row.
    pub row: T,
}

/// What a cursor looks like (the spec states it): empty, or up to 18 digits.
pub const CURSOR_PATTERN: &str = "^[0-9]{0,18}$";

/// The largest position a cursor holds: 18 digits, the spec's pattern. Row sequence numbers
/// never come near it; a cursor of the earlier form beyond it is refused (the fuzzer found
/// that one decoded to a position whose new cursor the pattern refused).
pub const MAX_POSITION: i64 = 999_999_999_999_999_999;

/// Encodes a cursor pointing below sequence number `seq`.
pub fn encode_cursor(seq: i64) -> String {
    seq.to_string()
}

/// Decodes a cursor (the module's table): a position, or a cursor of the earlier form.
pub fn decode_cursor(cursor: &str) -> Result<i64, CoreError> {
    if (1..=18).contains(&cursor.len()) && cursor.bytes().all(|b| b.is_ascii_digit()) {
        return cursor.parse().map_err(|_| CoreError::InvalidCursor);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| CoreError::InvalidCursor)?;
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.strip_prefix("v1:"))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| (1..=MAX_POSITION).contains(n))
        .ok_or(CoreError::InvalidCursor)
}

/// A page request from a limit and a cursor given by a client.
pub fn page_request(limit: Option<u32>, cursor: Option<&str>) -> Result<PageRequest, CoreError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(CoreError::field(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    // `cursor=` with nothing after it asks for the first page, like no cursor.
    let before = cursor
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    // One more than asked, to learn whether another page follows.
    Ok(PageRequest {
        limit: limit + 1,
        before,
    })
}

/// Splits the rows of a page request into the page and the cursor of the next page.
pub fn finish_page<T>(mut rows: Vec<Sequenced<T>>, page: PageRequest) -> (Vec<T>, Option<String>) {
    let asked = page.limit.saturating_sub(1) as usize;
    let next = if rows.len() > asked {
        rows.truncate(asked);
        rows.last().map(|r| encode_cursor(r.seq))
    } else {
        None
    };
    (rows.into_iter().map(|r| r.row).collect(), next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        let earlier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("v1:42");
        assert_eq!(
            decode_cursor(&earlier).unwrap(),
            42,
            "a cursor of the earlier form"
        );
        assert_eq!(decode_cursor("0").unwrap(), 0, "any digits are a position");
        assert_eq!(
            decode_cursor("999999999999999999").unwrap(),
            999_999_999_999_999_999
        );
        for bad in [
            "",
            "!!",
            "djE6",
            "djE6LTE",
            "eHl6",
            "-1",
            "1234567890123456789",
            "1e3",
            // `v1:01921521521921921921`, a position beyond 18 digits (found by fuzzing).
            "djE6MDE5MjE1MjE1MjE5MjE5MjE5MjE",
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
        assert!(page_request(Some(0), None).is_err());
        assert_eq!(page_request(None, Some("")).unwrap().before, None);
        assert!(page_request(Some(101), None).is_err());
        assert_eq!(
            page_request(None, None).unwrap().limit,
            DEFAULT_PAGE_SIZE + 1
        );
    }
}
