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
    /// The document is larger than a decoding limit allows (see
    /// [`XmlLimits`](super::xml::XmlLimits)); decoding stopped there.
    #[error(transparent)]
    TooLarge(#[from] LimitExceeded),
}

impl DecodeError {
    /// The limit that stopped decoding, when one did.
    pub fn limit_exceeded(&self) -> Option<&LimitExceeded> {
        match self {
            DecodeError::TooLarge(limit) => Some(limit),
            _ => None,
        }
    }
}

/// Which decoding limit a document ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentLimit {
    /// Attributes on one XML element.
    AttributesPerElement,
    /// Elements in one XML document.
    ElementsPerDocument,
    /// Depth of XML element nesting.
    Depth,
}

impl DocumentLimit {
    /// A stable snake_case name, fit for a metric label
    /// (`xml_attributes`, `xml_elements`, `xml_depth`).
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentLimit::AttributesPerElement => "xml_attributes",
            DocumentLimit::ElementsPerDocument => "xml_elements",
            DocumentLimit::Depth => "xml_depth",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            DocumentLimit::AttributesPerElement => "attributes on one element",
            DocumentLimit::ElementsPerDocument => "elements in the document",
            DocumentLimit::Depth => "levels of element nesting",
        }
    }
}

/// A document went over a decoding limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("document too large: more than {max} {}", .limit.describe())]
pub struct LimitExceeded {
    /// The limit.
    pub limit: DocumentLimit,
    /// Its value.
    pub max: usize,
}
