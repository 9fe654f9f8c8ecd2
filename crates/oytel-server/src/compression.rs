//! Compressed answers: gzip or brotli, as the client's `Accept-Encoding` asks, for answers of
//! [`COMPRESS_FROM`] bytes or more (the plans list, eSIM and order lists, statements).
//! Smaller answers are sent as they are: compressing them costs more than it saves. An answer
//! whose length is not known in advance is compressed.
//!
//! | answer | sent |
//! |---|---|
//! | 1 KiB or more (or of unknown length), the client accepts `br` or `gzip` | compressed (brotli preferred, by the client's q-values), `Content-Encoding` set, `Vary: Accept-Encoding` |
//! | under 1 KiB, or no acceptable encoding | as it is |
//! | `image/png` (QR codes), `304 Not Modified` | as it is |
//!
//! ETags name the content, not its encoding, so they are weak (`W/"…"`) and compare equal for
//! the compressed and the plain answer; `If-None-Match` is compared weakly, as RFC 9110 says
//! for `GET`.

use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

/// Answers of this many bytes or more are compressed.
pub const COMPRESS_FROM: u16 = 1024;

/// The layer, with the module's rules.
pub fn layer() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .gzip(true)
        .br(true)
        .compress_when(DefaultPredicate::new().and(SizeAbove::new(COMPRESS_FROM)))
}
