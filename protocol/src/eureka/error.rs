//! Why a Eureka body could not be decoded.

/// A body that is not a valid Eureka document, with a reason fit for a
/// client (`400 Bad Request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not well-formed JSON or XML.
    #[error("malformed {format}: {reason}")]
    Syntax {
        /// `JSON` or `XML`.
        format: &'static str,
        /// What the parser reported.
        reason: String,
    },
    /// The document is well-formed but not the expected shape.
    #[error("unexpected document: {0}")]
    Shape(String),
    /// A field has a value that cannot be used.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field name as on the wire.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A required field is missing or blank (Eureka's wording: `Missing hostname`).
    #[error("Missing {0}")]
    Missing(&'static str),
}
