//! Pre-serialized `/apps` and `/apps/delta` bodies, one per (listing,
//! format, detail, encoding), rebuilt lazily when the registry version has moved.
//!
//! A read of an unchanged registry is an atomic load and a `Bytes` clone.
//! A read after a change rebuilds once (concurrent readers wait for that
//! one build) off the async threads; there is no time-based staleness as in
//! Eureka's 30-second read cache. The delta body is also rebuilt when it is
//! older than 30 seconds so that changes leave it when their window ends.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use super::error::AppError;
use cloud_protocol::eureka::Detail;

use super::negotiate::{Negotiated, gzip};
use crate::node::Node;

/// Which listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    Full,
    Delta,
}

const DELTA_MAX_AGE_MILLIS: i64 = 30_000;

struct Cached {
    version: u64,
    built_at: i64,
    bytes: Bytes,
}

#[derive(Default)]
struct Slot {
    current: ArcSwapOption<Cached>,
    building: tokio::sync::Mutex<()>,
}

/// The cache of listing bodies.
#[derive(Default)]
pub(crate) struct ResponseCache {
    slots: [Slot; 16],
}

impl ResponseCache {
    fn slot(&self, listing: Listing, want: Negotiated, gzipped: bool) -> &Slot {
        let l = match listing {
            Listing::Full => 0,
            Listing::Delta => 8,
        };
        let d = match want.detail {
            Detail::Full => 0,
            Detail::Compact => 4,
        };
        &self.slots[l + d + want.format.index() * 2 + usize::from(gzipped)]
    }

    fn fresh(slot: &Slot, node: &Node, listing: Listing) -> Option<Arc<Cached>> {
        let cached = slot.current.load_full()?;
        let wanted = node.registry().version();
        let young = listing == Listing::Full
            || node.registry().now_millis() - cached.built_at < DELTA_MAX_AGE_MILLIS;
        (cached.version == wanted && young).then_some(cached)
    }

    /// The body for a listing.
    ///
    /// The gzip body is compressed from the plain body when that is cached
    /// and current; otherwise it is written and compressed in one go, and
    /// the plain body is not kept (it is ten times the size).
    pub(crate) async fn get(
        &self,
        node: &Arc<Node>,
        listing: Listing,
        want: Negotiated,
    ) -> Result<Bytes, AppError> {
        if !want.gzip {
            return Ok(self.plain(node, listing, want).await?.bytes.clone());
        }
        let slot = self.slot(listing, want, true);
        if let Some(c) = Self::fresh(slot, node, listing) {
            return Ok(c.bytes.clone());
        }
        let _building = slot.building.lock().await;
        if let Some(c) = Self::fresh(slot, node, listing) {
            return Ok(c.bytes.clone());
        }
        let plain = Self::fresh(self.slot(listing, want, false), node, listing);
        let node = Arc::clone(node);
        let cached = tokio::task::spawn_blocking(move || match plain {
            Some(plain) => Cached {
                version: plain.version,
                built_at: plain.built_at,
                bytes: Bytes::from(gzip(&plain.bytes)),
            },
            None => {
                let (version, built_at, bytes) = build(&node, listing, want);
                Cached {
                    version,
                    built_at,
                    bytes: Bytes::from(gzip(&bytes)),
                }
            }
        })
        .await
        .map_err(|e| AppError::Internal(format!("gzip task: {e}")))?;
        let cached = Arc::new(cached);
        slot.current.store(Some(Arc::clone(&cached)));
        Ok(cached.bytes.clone())
    }

    async fn plain(
        &self,
        node: &Arc<Node>,
        listing: Listing,
        want: Negotiated,
    ) -> Result<Arc<Cached>, AppError> {
        let slot = self.slot(listing, want, false);
        if let Some(c) = Self::fresh(slot, node, listing) {
            return Ok(c);
        }
        let _building = slot.building.lock().await;
        if let Some(c) = Self::fresh(slot, node, listing) {
            return Ok(c);
        }
        let node = Arc::clone(node);
        let cached = tokio::task::spawn_blocking(move || {
            let (version, built_at, bytes) = build(&node, listing, want);
            Cached {
                version,
                built_at,
                bytes: Bytes::from(bytes),
            }
        })
        .await
        .map_err(|e| AppError::Internal(format!("serialize task: {e}")))?;
        let cached = Arc::new(cached);
        slot.current.store(Some(Arc::clone(&cached)));
        Ok(cached)
    }
}

/// Writes a listing: its version, when it was built, and the bytes.
fn build(node: &Node, listing: Listing, want: Negotiated) -> (u64, i64, Vec<u8>) {
    let registry = node.registry();
    let built_at = registry.now_millis();
    let snapshot = match listing {
        Listing::Full => registry.snapshot(),
        Listing::Delta => registry.delta(),
    };
    let version_delta = i64::try_from(snapshot.version).unwrap_or(i64::MAX);
    let bytes = want.write_applications(&snapshot, version_delta, &snapshot.apps_hashcode);
    (snapshot.version, built_at, bytes)
}
