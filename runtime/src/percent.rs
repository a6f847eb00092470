//! Percent-escapes (RFC 3986 §2.1), read strictly: a `%` must be followed
//! by two hex digits. The servers decide what a malformed escape means
//! (a 400, the text kept as written); this module only reads them.
//!
//! ```
//! use cloud_runtime::percent;
//!
//! assert_eq!(percent::escape_at(b"a%2Fb", 1), Some(b'/'));
//! assert_eq!(percent::escape_at(b"%+1", 0), None);
//! assert_eq!(percent::form_decode("a+b%21").as_deref(), Some(&b"a b!"[..]));
//! assert_eq!(percent::form_decode("100%"), None);
//! ```

/// The byte the escape at `at` (the index of its `%`) stands for; `None`
/// when two hex digits do not follow.
pub fn escape_at(bytes: &[u8], at: usize) -> Option<u8> {
    let digit = |i: usize| bytes.get(i).and_then(|&c| (c as char).to_digit(16));
    let (high, low) = (digit(at + 1)?, digit(at + 2)?);
    u8::try_from(high << 4 | low).ok()
}

/// An `application/x-www-form-urlencoded` part (a query's name or value)
/// decoded to its bytes: `+` is a space, escapes are decoded; `None` when
/// an escape is malformed.
pub fn form_decode(text: &str) -> Option<Vec<u8>> {
    let raw = text.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                bytes.push(escape_at(raw, i)?);
                i += 2;
            }
            c => bytes.push(c),
        }
        i += 1;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_need_two_hex_digits() {
        assert_eq!(escape_at(b"%41", 0), Some(b'A'));
        assert_eq!(escape_at(b"x%e9", 1), Some(0xE9));
        for bad in [&b"%"[..], b"%4", b"%zz", b"%+1", b"%-1", b"% 1"] {
            assert_eq!(escape_at(bad, 0), None, "{bad:?}");
        }
        assert_eq!(form_decode("a%3Db+c").as_deref(), Some(&b"a=b c"[..]));
        assert_eq!(form_decode("plain").as_deref(), Some(&b"plain"[..]));
        assert_eq!(form_decode("%g0"), None);
    }
}
