//! The trace context of the work under way: the W3C `traceparent` a request runs under, so
//! that the events it writes keep it and their webhook deliveries join the same trace, however
//! much later they go out.
//!
//! The server scopes each request's work with [`scope`]; the event constructors of
//! [`crate::webhooks`] read [`current`]. Work outside a request (the reconciler, usage
//! ingestion, expiry) has none, and its events start traces of their own.
//!
//! | `traceparent` | accepted as |
//! |---|---|
//! | `00-<32 hex>-<16 hex>-<2 hex>`, lowercase, ids not all zero | itself |
//! | a later version (`01`…`fe`) with those four fields first, then `-…` | its first four fields, as version `00` |
//! | version `ff`, upper case, a zero id, any other length or shape | nothing: the request starts a new trace |

use std::future::Future;

tokio::task_local! {
    static TRACEPARENT: Option<String>;
}

/// Runs `work` with `traceparent` as its trace context.
pub async fn scope<F: Future>(traceparent: Option<String>, work: F) -> F::Output {
    TRACEPARENT.scope(traceparent, work).await
}

/// The trace context of the work under way, if it has one.
pub fn current() -> Option<String> {
    TRACEPARENT.try_with(Clone::clone).ok().flatten()
}

/// A valid `traceparent` (see the module's table), as version `00`; `None` otherwise.
pub fn parse(header: &str) -> Option<String> {
    let bytes = header.as_bytes();
    let lower_hex = |s: &[u8]| {
        s.iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    let not_zero = |s: &[u8]| s.iter().any(|b| *b != b'0');
    if bytes.len() < 55 || !lower_hex(&bytes[..2]) || &bytes[..2] == b"ff" {
        return None;
    }
    let (version, trace_id, span_id, flags) =
        (&bytes[..2], &bytes[3..35], &bytes[36..52], &bytes[53..55]);
    let dashes = [bytes[2], bytes[35], bytes[52]] == [b'-'; 3];
    let length_fits = if version == b"00" {
        bytes.len() == 55
    } else {
        bytes.len() == 55 || bytes[55] == b'-'
    };
    let valid = dashes
        && length_fits
        && lower_hex(trace_id)
        && lower_hex(span_id)
        && lower_hex(flags)
        && not_zero(trace_id)
        && not_zero(span_id);
    valid.then(|| format!("00-{}", &header[3..55]))
}

/// The trace id of a valid `traceparent`.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    traceparent.get(3..35)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_well_formed_traceparent_is_kept_as_it_is() {
        assert_eq!(parse(VALID).as_deref(), Some(VALID));
        assert_eq!(trace_id(VALID), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[test]
    fn a_later_version_is_read_for_its_first_four_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        assert_eq!(parse(later).as_deref(), Some(VALID));
    }

    #[test]
    fn anything_malformed_starts_a_new_trace() {
        for bad in [
            "",
            "garbage",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é1",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_work_under_way_sees_its_scope_and_nothing_outside_it() {
        assert_eq!(current(), None);
        let seen = scope(Some(VALID.to_owned()), async { current() }).await;
        assert_eq!(seen.as_deref(), Some(VALID));
        assert_eq!(scope(None, async { current() }).await, None);
    }
}
