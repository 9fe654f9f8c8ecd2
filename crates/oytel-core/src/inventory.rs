//! The builtin profile stock: ICCID batches the operator loads (`oytel-server inventory
//! import`), from which live eSIMs take their ICCIDs when `OYTEL_PROFILE_STOCK=inventory`,
//! inside the provisioning transaction (so no ICCID is handed out twice, whatever the number
//! of instances).
//!
//! A batch file has one ICCID per line; blank lines, `#` comments and a first line `iccid`
//! are skipped. A line is refused, with its number and why, when:
//!
//! | the line | refused because |
//! |---|---|
//! | not 18 to 20 digits (spaces and dashes between digits are allowed) | not an ICCID |
//! | not starting with `89` | not a telecom ICCID (ITU-T E.118) |
//! | its last digit is not the Luhn check digit of the others | a typo |
//! | an ICCID seen on an earlier line of the file | a duplicate in the file |
//!
//! A batch with any refused line, or with an ICCID already in stock or on an eSIM, is not
//! imported at all: nothing is half-imported, and the report names every line at fault.

use chrono::{DateTime, Utc};

use crate::numbers::luhn_check_digit;

/// The most ICCIDs one batch may hold.
pub const MAX_BATCH: usize = 1_000_000;

/// When `inventory list` and the server's hourly check call a type's stock low.
pub const LOW_STOCK: u64 = 100;

/// A line of a batch file that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its number, from 1.
    pub line: usize,
    /// What it held (at most 40 characters of it).
    pub text: String,
    /// Why, in words.
    pub reason: &'static str,
}

/// A batch file read: the ICCIDs, in order, and the lines refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedBatch {
    /// The ICCIDs accepted, normalised to their digits.
    pub iccids: Vec<String>,
    /// The lines refused.
    pub refused: Vec<Refused>,
}

/// Reads a batch file (the module's rules).
pub fn parse_batch(text: &str) -> ParsedBatch {
    let mut batch = ParsedBatch::default();
    let mut seen = std::collections::HashSet::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty()
            || line.starts_with('#')
            || (index == 0 && line.eq_ignore_ascii_case("iccid"))
        {
            continue;
        }
        let refuse = |reason| Refused {
            line: index + 1,
            text: line.chars().take(40).collect(),
            reason,
        };
        let digits: String = line.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let reason =
            if !(18..=20).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                Some("not an ICCID: 18 to 20 digits")
            } else if !digits.starts_with("89") {
                Some("not a telecom ICCID: it must start with 89")
            } else if !luhn_ok(&digits) {
                Some("the check digit is wrong (Luhn)")
            } else if !seen.insert(digits.clone()) {
                Some("a duplicate of an earlier line")
            } else {
                None
            };
        match reason {
            Some(reason) => batch.refused.push(refuse(reason)),
            None if batch.iccids.len() >= MAX_BATCH => {
                batch
                    .refused
                    .push(refuse("the batch holds more than 1,000,000 ICCIDs"));
            }
            None => batch.iccids.push(digits),
        }
    }
    batch
}

fn luhn_ok(digits: &str) -> bool {
    let (body, check) = digits.split_at(digits.len() - 1);
    u32::from(luhn_check_digit(body)) == u32::from(check.as_bytes()[0] - b'0')
}

/// `count` test ICCIDs: 19 digits, `8999` (a test issuer range), six digits of `now` (so that
/// batches generated at different times do not collide), a serial, and the Luhn check digit.
pub fn generate_batch(count: usize, now: DateTime<Utc>) -> Vec<String> {
    let stamp = now.timestamp() % 1_000_000;
    (0..count)
        .map(|i| {
            let body = format!("8999{stamp:06}{:08}", i % 100_000_000);
            format!("{body}{}", luhn_check_digit(&body))
        })
        .collect()
}

/// The stock of one profile type in one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stock {
    /// The profile type.
    pub profile_type: String,
    /// Live or sandbox stock.
    pub environment: crate::Environment,
    /// ICCIDs not handed out.
    pub available: u64,
    /// ICCIDs on eSIMs.
    pub allocated: u64,
}

/// A batch to store: every ICCID of it, all or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    /// `bat_…`
    pub id: String,
    /// What the ICCIDs are.
    pub profile_type: String,
    /// Whose stock: live or sandbox.
    pub environment: crate::Environment,
    /// The ICCIDs.
    pub iccids: Vec<String>,
    /// When.
    pub imported_at: DateTime<Utc>,
}

/// What storing a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Every ICCID stored.
    Stored(u64),
    /// Nothing stored: these ICCIDs are in stock or on eSIMs already (at most 20 named).
    Duplicates(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_file_keeps_good_lines_and_names_every_bad_one() {
        let text = "iccid\n\
            8944100000000000000\n\
            # a comment\n\
            \n\
            8944-1000-0000-0000-018\n\
            8944100000000000001\n\
            12345\n\
            1244100000000000002\n\
            8944100000000000000\n";
        let batch = parse_batch(text);
        assert_eq!(batch.iccids, ["8944100000000000000", "8944100000000000018"]);
        let reasons: Vec<(usize, &str)> =
            batch.refused.iter().map(|r| (r.line, r.reason)).collect();
        assert_eq!(
            reasons,
            [
                (6, "the check digit is wrong (Luhn)"),
                (7, "not an ICCID: 18 to 20 digits"),
                (8, "not a telecom ICCID: it must start with 89"),
                (9, "a duplicate of an earlier line"),
            ]
        );
    }

    #[test]
    fn generated_batches_are_valid_and_distinct() {
        let batch = generate_batch(1_000, Utc::now());
        let text = batch.join("\n");
        let parsed = parse_batch(&text);
        assert!(parsed.refused.is_empty(), "{:?}", parsed.refused);
        assert_eq!(parsed.iccids.len(), 1_000);
    }
}
