//! Media types compared as Spring's `MimeType.isCompatibleWith` does: the
//! one rule behind `RemoveJsonAttributesResponseBody`'s "is this JSON" and
//! `server.compression.mime-types`.

/// Whether the media types `a` and `b` (`type/subtype`, parameters
/// ignored, case-insensitive) are compatible: either type is `*`, or the
/// types are equal and the subtypes are equal, or one subtype is `*`, or
/// one is `*+suffix` and the other ends in `+suffix` (or is `suffix`).
pub(crate) fn compatible(a: &str, b: &str) -> bool {
    let (Some((a_type, a_sub)), Some((b_type, b_sub))) = (split(a), split(b)) else {
        return false;
    };
    if a_type == "*" || b_type == "*" {
        return true;
    }
    if !a_type.eq_ignore_ascii_case(b_type) {
        return false;
    }
    a_sub.eq_ignore_ascii_case(b_sub)
        || a_sub == "*"
        || b_sub == "*"
        || wildcard_suffix(a_sub, b_sub)
        || wildcard_suffix(b_sub, a_sub)
}

/// `type` and `subtype` of `media` (parameters cut off), both non-empty.
fn split(media: &str) -> Option<(&str, &str)> {
    let essence = media.split(';').next()?.trim();
    let (kind, subtype) = essence.split_once('/')?;
    let (kind, subtype) = (kind.trim(), subtype.trim());
    (!kind.is_empty() && !subtype.is_empty()).then_some((kind, subtype))
}

/// Whether `pattern` is `*+suffix` and `subtype` is `x+suffix` or `suffix`.
fn wildcard_suffix(pattern: &str, subtype: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix("*+") else {
        return false;
    };
    subtype.eq_ignore_ascii_case(suffix)
        || subtype
            .rsplit_once('+')
            .is_some_and(|(_, s)| s.eq_ignore_ascii_case(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_is_springs() {
        for (a, b) in [
            ("application/json", "application/json"),
            ("application/json", "application/json;charset=UTF-8"),
            ("application/json", "Application/JSON"),
            ("application/json", "application/*"),
            ("application/json", "*/*"),
            ("application/json", "application/*+json"),
            ("application/*+json", "application/ld+json"),
            ("text/*", "text/html"),
            ("text/html", "text/*"),
        ] {
            assert!(compatible(a, b), "{a} ~ {b}");
            assert!(compatible(b, a), "{b} ~ {a}");
        }
        for (a, b) in [
            ("application/json", "text/plain"),
            ("application/json", "application/problem+json"),
            ("application/json", "application/xml"),
            ("application/json", "json"),
            ("application/json", ""),
            ("text/html", "text/plain"),
        ] {
            assert!(!compatible(a, b), "{a} !~ {b}");
        }
    }
}
