//! What an HTTP/2 client may learn from a failed request: whether the
//! server processed none of it, so that it may be sent again whatever its
//! method (RFC 9113 section 8.7).
//!
//! ```
//! use cloud_runtime::http2::refused_unprocessed;
//!
//! let refused = h2::Error::from(h2::Reason::REFUSED_STREAM);
//! // Made here, not received: only the server's word counts.
//! assert!(!refused_unprocessed(&refused));
//! let io = std::io::Error::other("connection reset");
//! assert!(!refused_unprocessed(&io));
//! ```

/// Whether `e` (or one of its causes) says the server did not process the
/// request: an HTTP/2 stream it refused (`RST_STREAM` with
/// `REFUSED_STREAM`), or one above the last stream of its graceful
/// `GOAWAY` (`NO_ERROR`), which the h2 engine hands only to streams the
/// server never took (or never sent). Any method may be sent again then,
/// when its body is still at hand.
pub fn refused_unprocessed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && ((h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM))
                    || (h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR)));
        }
        cause = err.source();
    }
    false
}
