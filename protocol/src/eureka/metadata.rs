//! Instance metadata: a small string map kept as a sorted vector, which
//! costs a fraction of a `BTreeMap`'s node for the handful of entries an
//! instance carries (the registry holds one per instance).

/// Metadata entries, sorted by key, keys unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Metadata {
    entries: Vec<(String, String)>,
}

impl Metadata {
    /// No entries.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).ok().map(|i| self.entries[i].1.as_str())
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.position(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Bytes of the keys and values together (UTF-8), what a per-instance
    /// metadata limit counts.
    pub fn text_bytes(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Heap bytes the entries hold, approximately: the vector and each
    /// key's and value's buffer.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(String, String)>()
            + self
                .entries
                .iter()
                .map(|(k, v)| k.capacity() + v.capacity())
                .sum::<usize>()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }
}

/// Adds entries as repeated [`Metadata::insert`]s would (a later value of a
/// key wins), in `O((n + m) log(n + m))` for `m` new entries rather than one
/// shift of the vector per entry.
impl Extend<(String, String)> for Metadata {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        let before = self.entries.len();
        self.entries.extend(iter);
        if self.entries.len() == before {
            return;
        }
        // Stable: equal keys keep their order, oldest first.
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        // Keep the last of each run of equal keys.
        let mut kept: Vec<(String, String)> = Vec::with_capacity(self.entries.len());
        for entry in self.entries.drain(..) {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        self.entries = kept;
    }
}

impl FromIterator<(String, String)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut m = Metadata::new();
        m.extend(iter);
        m.entries.shrink_to_fit();
        m
    }
}

impl<const N: usize> From<[(String, String); N]> for Metadata {
    fn from(entries: [(String, String); N]) -> Self {
        entries.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_sorted_map() {
        let mut m: Metadata = [
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned()),
        ]
        .into();
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![("a", "1"), ("b", "2")]);
        assert_eq!(m.insert("a".into(), "3".into()), Some("1".into()));
        assert_eq!(m.get("a"), Some("3"));
        assert_eq!(m.remove("b"), Some("2".into()));
        assert_eq!(m.len(), 1);
        assert_eq!(m.get("zz"), None);
    }

    #[test]
    fn extend_lets_the_last_value_of_a_key_win() {
        let mut m: Metadata = [("b".to_owned(), "old".to_owned())].into();
        m.extend([
            ("c".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "3".to_owned()),
            ("c".to_owned(), "4".to_owned()),
        ]);
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            vec![("a", "3"), ("b", "2"), ("c", "4")]
        );
        assert_eq!(m.text_bytes(), 6);
    }

    proptest::proptest! {
        #[test]
        fn extend_is_repeated_insert(
            start in proptest::collection::vec(("[a-e]{1,2}", "[0-9]{0,2}"), 0..20),
            more in proptest::collection::vec(("[a-e]{1,2}", "[0-9]{0,2}"), 0..20),
        ) {
            let mut by_insert: Metadata = start.iter().cloned().collect();
            let mut by_extend = by_insert.clone();
            for (k, v) in more.iter().cloned() {
                by_insert.insert(k, v);
            }
            by_extend.extend(more);
            proptest::prop_assert_eq!(by_extend, by_insert);
        }
    }
}
