//! Limits on what a client can make the server parse or hold, so that no
//! request costs more than its size in time and no stream of changes grows
//! memory without bound. Every limit that trips is counted in
//! `discovery_rejected_requests_total{reason}` (or, for the delta queue,
//! `discovery_delta_changes_dropped_total`); see the "Limits" section of
//! `docs/discovery-server.md`.
//!
//! The defaults are far above what any Eureka client sends (the Java
//! client, py-eureka-client and eureka-js-client register a few dozen
//! fields and a handful of metadata entries), so they only stop abuse.

use cloud_protocol::eureka::xml::XmlLimits;
use cloud_protocol::eureka::{DocumentLimit, InstanceInfo, LimitExceeded, Metadata};

/// The limits in force. Plain data with documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most metadata entries one instance may carry, its `metadata` and its
    /// `dataCenterInfo.metadata` together, on registration and after a
    /// metadata update. Default is 256.
    pub max_metadata_keys_per_instance: usize,
    /// Most bytes of metadata keys and values (UTF-8) one instance may
    /// carry, counted as [`max_metadata_keys_per_instance`](Self::max_metadata_keys_per_instance)
    /// is. Default is 64 KiB.
    pub max_metadata_bytes_per_instance: usize,
    /// How much of an XML registration body is read: at most 1 024
    /// attributes on an element, 10 000 elements, 32 levels of nesting by
    /// default (a registration is about 40 elements plus one per metadata
    /// entry).
    pub xml: XmlLimits,
    /// Memory the recently-changed queue behind `/apps/delta` may hold, in
    /// approximate bytes of the instance records it keeps. Past it the
    /// oldest changes leave the queue early, and `/apps/delta` lists every
    /// registered instance until the changes it lost would have left the
    /// window anyway (see [`Registry::delta`](crate::registry::Registry::delta)).
    /// Default is 64 MiB.
    pub max_delta_queue_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_metadata_keys_per_instance: 256,
            max_metadata_bytes_per_instance: 64 * 1024,
            xml: XmlLimits {
                max_elements: 10_000,
                ..XmlLimits::default()
            },
            max_delta_queue_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why a request was refused by a limit; each is a `reason` label of
/// `discovery_rejected_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// More attributes on one XML element than [`XmlLimits::max_attributes_per_element`].
    XmlAttributes,
    /// More elements in an XML body than [`XmlLimits::max_elements`].
    XmlElements,
    /// XML nested deeper than [`XmlLimits::max_depth`].
    XmlDepth,
    /// More metadata entries than [`Limits::max_metadata_keys_per_instance`].
    MetadataKeys,
    /// More metadata bytes than [`Limits::max_metadata_bytes_per_instance`].
    MetadataBytes,
}

impl Rejection {
    /// Every reason, in the order metrics list them.
    pub const ALL: [Rejection; 5] = [
        Rejection::XmlAttributes,
        Rejection::XmlElements,
        Rejection::XmlDepth,
        Rejection::MetadataKeys,
        Rejection::MetadataBytes,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::XmlAttributes => "xml_attributes",
            Rejection::XmlElements => "xml_elements",
            Rejection::XmlDepth => "xml_depth",
            Rejection::MetadataKeys => "metadata_keys",
            Rejection::MetadataBytes => "metadata_bytes",
        }
    }

    /// The reason a decoding limit stands for.
    pub fn of_document(limit: &LimitExceeded) -> Rejection {
        match limit.limit {
            DocumentLimit::AttributesPerElement => Rejection::XmlAttributes,
            DocumentLimit::ElementsPerDocument => Rejection::XmlElements,
            DocumentLimit::Depth => Rejection::XmlDepth,
        }
    }
}

/// An instance would carry more metadata than the limits allow; nothing
/// was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("metadata too large: {actual} {unit} where at most {max} are allowed per instance")]
pub struct MetadataTooLarge {
    rejection: Rejection,
    unit: &'static str,
    /// The limit.
    pub max: usize,
    /// What the instance would carry.
    pub actual: usize,
}

impl MetadataTooLarge {
    /// Which limit: [`Rejection::MetadataKeys`] or [`Rejection::MetadataBytes`].
    pub fn rejection(&self) -> Rejection {
        self.rejection
    }

    /// True when there are too many entries (rather than too many bytes).
    pub fn is_too_many_keys(&self) -> bool {
        self.rejection == Rejection::MetadataKeys
    }
}

impl Limits {
    /// Checks the metadata an instance carries against the per-instance limits.
    pub fn check_instance(&self, info: &InstanceInfo) -> Result<(), MetadataTooLarge> {
        let maps = [&info.metadata, &info.data_center_info.metadata];
        self.check_metadata(
            maps.iter().map(|m| m.len()).sum(),
            maps.iter().map(|m| m.text_bytes()).sum(),
        )
    }

    /// Checks an instance whose metadata would become `metadata` (its
    /// `dataCenterInfo` metadata unchanged).
    pub fn check_updated(
        &self,
        info: &InstanceInfo,
        metadata: &Metadata,
    ) -> Result<(), MetadataTooLarge> {
        let dc = &info.data_center_info.metadata;
        self.check_metadata(
            metadata.len() + dc.len(),
            metadata.text_bytes() + dc.text_bytes(),
        )
    }

    fn check_metadata(&self, keys: usize, bytes: usize) -> Result<(), MetadataTooLarge> {
        if keys > self.max_metadata_keys_per_instance {
            return Err(MetadataTooLarge {
                rejection: Rejection::MetadataKeys,
                unit: "entries",
                max: self.max_metadata_keys_per_instance,
                actual: keys,
            });
        }
        if bytes > self.max_metadata_bytes_per_instance {
            return Err(MetadataTooLarge {
                rejection: Rejection::MetadataBytes,
                unit: "bytes",
                max: self.max_metadata_bytes_per_instance,
                actual: bytes,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_metadata(n: usize, value: &str) -> InstanceInfo {
        let mut info = InstanceInfo::default();
        info.metadata
            .extend((0..n).map(|i| (format!("k{i:03}"), value.to_owned())));
        info
    }

    #[test]
    fn metadata_is_checked_by_entries_and_by_bytes() {
        let limits = Limits {
            max_metadata_keys_per_instance: 3,
            max_metadata_bytes_per_instance: 20,
            ..Limits::default()
        };
        assert_eq!(limits.check_instance(&with_metadata(3, "ab")), Ok(()));
        let keys = limits.check_instance(&with_metadata(4, "")).unwrap_err();
        assert!(keys.is_too_many_keys());
        assert_eq!((keys.max, keys.actual), (3, 4));
        let bytes = limits
            .check_instance(&with_metadata(3, "abcd"))
            .unwrap_err();
        assert_eq!(bytes.rejection(), Rejection::MetadataBytes);
        assert_eq!((bytes.max, bytes.actual), (20, 24));
        assert_eq!(
            bytes.to_string(),
            "metadata too large: 24 bytes where at most 20 are allowed per instance"
        );
    }

    #[test]
    fn data_center_metadata_counts_with_the_instance_metadata() {
        let limits = Limits {
            max_metadata_keys_per_instance: 3,
            ..Limits::default()
        };
        let mut info = with_metadata(2, "");
        info.data_center_info.metadata.extend([
            ("a".to_owned(), String::new()),
            ("b".to_owned(), String::new()),
        ]);
        assert!(limits.check_instance(&info).is_err());
        assert!(limits.check_updated(&info, &Metadata::new()).is_ok());
    }

    #[test]
    fn defaults_leave_room_for_real_clients() {
        let limits = Limits::default();
        // Spring Cloud's Java client sends a few entries (management.port,
        // zone, version...), each far below 1 KiB.
        assert!(
            limits
                .check_instance(&with_metadata(64, &"x".repeat(512)))
                .is_ok()
        );
        assert!(limits.max_delta_queue_bytes >= 16 * 1024 * 1024);
        assert!(limits.xml.max_elements >= 40 + limits.max_metadata_keys_per_instance);
    }
}
