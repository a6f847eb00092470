//! Git tree objects: parsing and walking a path to an entry.

/// The kind of a tree entry, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A regular (possibly executable) file.
    File,
    /// A sub-directory.
    Tree,
    /// A symbolic link (never followed).
    Symlink,
    /// A submodule commit (ignored).
    Submodule,
}

/// One entry of a tree.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) kind: EntryKind,
    pub(crate) oid: String,
}

/// Parses the binary content of a tree object. `oid_len` is the raw object
/// id length (20 for SHA-1, 32 for SHA-256). Malformed input ends the list.
pub(crate) fn parse(data: &[u8], oid_len: usize) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|b| *b == b' ') else {
            break;
        };
        let Some(nul) = rest[space..]
            .iter()
            .position(|b| *b == 0)
            .map(|n| n + space)
        else {
            break;
        };
        if rest.len() < nul + 1 + oid_len {
            break;
        }
        let mode = &rest[..space];
        let name = String::from_utf8_lossy(&rest[space + 1..nul]).into_owned();
        let oid = hex::encode(&rest[nul + 1..nul + 1 + oid_len]);
        let kind = match mode {
            b"40000" | b"040000" => EntryKind::Tree,
            b"120000" => EntryKind::Symlink,
            b"160000" => EntryKind::Submodule,
            _ => EntryKind::File,
        };
        out.push(Entry { name, kind, oid });
        rest = &rest[nul + 1 + oid_len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_modes_names_and_ids() {
        let mut data = Vec::new();
        data.extend_from_slice(b"100644 foo.yml\0");
        data.extend_from_slice(&[0xab; 20]);
        data.extend_from_slice(b"40000 dir\0");
        data.extend_from_slice(&[0x01; 20]);
        data.extend_from_slice(b"120000 link\0");
        data.extend_from_slice(&[0x02; 20]);
        let e = parse(&data, 20);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "foo.yml");
        assert_eq!(e[0].kind, EntryKind::File);
        assert_eq!(e[0].oid, "ab".repeat(20));
        assert_eq!(e[1].kind, EntryKind::Tree);
        assert_eq!(e[2].kind, EntryKind::Symlink);
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&data, 20);
        }
    }
}
