//! Bounds on the work one request may cause, and the error when one trips.
//!
//! Every bound is a field of [`crate::Settings`] (documented there and in
//! `docs/config-server.md`, section "Limits"); [`Limits`] is the copy the
//! request path reads. A tripped bound is answered with a 4xx JSON error and
//! counted in `config_server_limit_rejections_total{reason="..."}`.

use std::borrow::Cow;

use crate::settings::Settings;

/// `text` cut to at most `max_chars` characters (`...` marks a cut), for
/// error messages and log lines that quote outside input.
pub(crate) fn shorten(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => Cow::Owned(format!("{}...", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

/// The bounds applied per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body of `POST /monitor`, in bytes.
    pub monitor_body_bytes: usize,
    /// Most distinct changed paths in one webhook.
    pub monitor_paths: usize,
    /// Most service names one changed path may give (one per `-` plus one).
    pub monitor_names_per_path: usize,
    /// Largest `/monitor` answer (the JSON list of service names), in bytes.
    pub monitor_answer_bytes: usize,
    /// Largest body of `/encrypt` and `/decrypt`, in bytes.
    pub crypto_body_bytes: usize,
    /// Most applications in one request (`/a,b,c/dev`).
    pub applications: usize,
    /// Most profiles in one request (`/foo/dev,db,eu`).
    pub profiles: usize,
    /// Most file look-ups (names × search directories × extensions) one
    /// request may cause.
    pub file_lookups: usize,
    /// Deepest nesting of `${...}` placeholders.
    pub placeholder_depth: usize,
    /// Most bytes placeholder resolution may produce for one request (and,
    /// separately, read from the values it looks up).
    pub placeholder_output_bytes: usize,
    /// Most placeholders one request may substitute.
    pub placeholder_substitutions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::from(&Settings::default())
    }
}

impl From<&Settings> for Limits {
    fn from(settings: &Settings) -> Self {
        let s = &settings.request_limits;
        Self {
            monitor_body_bytes: s.max_monitor_body_bytes,
            monitor_paths: s.max_monitor_paths,
            monitor_names_per_path: s.max_monitor_names_per_path,
            monitor_answer_bytes: s.max_monitor_answer_bytes,
            crypto_body_bytes: s.max_crypto_body_bytes,
            applications: s.max_applications_per_request,
            profiles: s.max_profiles_per_request,
            file_lookups: s.max_file_lookups_per_request,
            placeholder_depth: s.max_placeholder_depth,
            placeholder_output_bytes: s.max_placeholder_output_bytes,
            placeholder_substitutions: s.max_placeholder_substitutions,
        }
    }
}

/// Which bound tripped; the `reason` label of the rejection counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReason {
    /// A request body was larger than its endpoint allows.
    BodyTooLarge,
    /// A webhook named too many changed paths.
    MonitorPaths,
    /// A changed path would give too many service names.
    MonitorNames,
    /// The `/monitor` answer would be too large.
    MonitorAnswer,
    /// Too many applications in one request.
    Applications,
    /// Too many profiles in one request.
    Profiles,
    /// A request would look up too many files.
    FileLookups,
    /// A placeholder refers to itself.
    PlaceholderCycle,
    /// Placeholders nest too deeply.
    PlaceholderDepth,
    /// Placeholder resolution would produce too much text.
    PlaceholderOutput,
    /// Placeholder resolution would substitute too many placeholders.
    PlaceholderSubstitutions,
}

impl LimitReason {
    /// Every reason, in the order the metrics list them.
    pub const ALL: [Self; 11] = [
        Self::BodyTooLarge,
        Self::MonitorPaths,
        Self::MonitorNames,
        Self::MonitorAnswer,
        Self::Applications,
        Self::Profiles,
        Self::FileLookups,
        Self::PlaceholderCycle,
        Self::PlaceholderDepth,
        Self::PlaceholderOutput,
        Self::PlaceholderSubstitutions,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::BodyTooLarge => "body_too_large",
            Self::MonitorPaths => "monitor_paths",
            Self::MonitorNames => "monitor_names_per_path",
            Self::MonitorAnswer => "monitor_answer_bytes",
            Self::Applications => "applications",
            Self::Profiles => "profiles",
            Self::FileLookups => "file_lookups",
            Self::PlaceholderCycle => "placeholder_cycle",
            Self::PlaceholderDepth => "placeholder_depth",
            Self::PlaceholderOutput => "placeholder_output_bytes",
            Self::PlaceholderSubstitutions => "placeholder_substitutions",
        }
    }

    /// The position of the reason in [`LimitReason::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// A request went over one of the [`Limits`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request exceeds {setting} ({limit})")]
pub struct LimitExceeded {
    reason: LimitReason,
    setting: &'static str,
    limit: usize,
}

impl LimitExceeded {
    /// `reason` tripped; `setting` is the settings key that holds `limit`.
    pub fn new(reason: LimitReason, setting: &'static str, limit: usize) -> Self {
        Self {
            reason,
            setting,
            limit,
        }
    }

    /// Which bound tripped.
    pub fn reason(&self) -> LimitReason {
        self.reason
    }

    /// Whether the bound is a body size (answered 413 rather than 400).
    pub fn is_body_too_large(&self) -> bool {
        self.reason == LimitReason::BodyTooLarge
    }

    /// The settings key of the bound.
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_distinct_labels_and_indices() {
        let labels: std::collections::HashSet<_> =
            LimitReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), LimitReason::ALL.len());
        for (i, r) in LimitReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn settings_keys_fill_the_limits_and_missing_ones_keep_their_defaults() {
        let s: Settings = serde_yaml_ng::from_str(
            "request_limits:\n  max_profiles_per_request: 3\n  max_monitor_paths: 7\n",
        )
        .unwrap();
        let limits = Limits::from(&s);
        assert_eq!(limits.profiles, 3);
        assert_eq!(limits.monitor_paths, 7);
        assert_eq!(limits.applications, 16);
        assert_eq!(limits.monitor_body_bytes, 1 << 20);
        assert_eq!(limits.crypto_body_bytes, 64 << 10);
        assert_eq!(limits.placeholder_depth, 32);
        assert_eq!(Limits::default(), Limits::from(&Settings::default()));
    }

    #[test]
    fn shorten_cuts_at_a_character_boundary() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc...");
        assert_eq!(shorten("ééé", 2), "éé...");
    }

    #[test]
    fn the_error_names_the_setting() {
        let e = LimitExceeded::new(LimitReason::Profiles, "max_profiles_per_request", 32);
        assert_eq!(
            e.to_string(),
            "request exceeds max_profiles_per_request (32)"
        );
        assert!(!e.is_body_too_large());
    }
}
