//! Instance status and change action: Eureka's `InstanceInfo.InstanceStatus`
//! and `InstanceInfo.ActionType`.

use std::fmt;

/// The status of an instance, as Eureka names it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum InstanceStatus {
    /// Ready to receive traffic.
    Up,
    /// Down: the instance reported itself unhealthy.
    Down,
    /// Starting: not ready yet.
    Starting,
    /// Taken out of service on purpose (usually by an operator override).
    OutOfService,
    /// Unknown; also "no override" when used as an overridden status.
    #[default]
    Unknown,
}

impl InstanceStatus {
    /// Every status, in the alphabetical order of their wire names (the
    /// order Eureka's apps hashcode lists them in).
    pub const ALL_BY_NAME: [InstanceStatus; 5] = [
        InstanceStatus::Down,
        InstanceStatus::OutOfService,
        InstanceStatus::Starting,
        InstanceStatus::Unknown,
        InstanceStatus::Up,
    ];

    /// The wire name (`UP`, `DOWN`, `STARTING`, `OUT_OF_SERVICE`, `UNKNOWN`).
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Up => "UP",
            InstanceStatus::Down => "DOWN",
            InstanceStatus::Starting => "STARTING",
            InstanceStatus::OutOfService => "OUT_OF_SERVICE",
            InstanceStatus::Unknown => "UNKNOWN",
        }
    }

    /// Parses a wire name leniently, as Eureka's `InstanceStatus.toEnum`
    /// does: case-insensitive, anything unrecognised is `UNKNOWN`.
    pub fn parse_lenient(s: &str) -> InstanceStatus {
        Self::parse_strict(s).unwrap_or(InstanceStatus::Unknown)
    }

    /// Parses a wire name case-insensitively; `None` when it is not a status.
    pub fn parse_strict(s: &str) -> Option<InstanceStatus> {
        let s = s.trim();
        Self::ALL_BY_NAME
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
    }

    /// Index of this status in [`InstanceStatus::ALL_BY_NAME`].
    pub fn index(self) -> usize {
        match self {
            InstanceStatus::Down => 0,
            InstanceStatus::OutOfService => 1,
            InstanceStatus::Starting => 2,
            InstanceStatus::Unknown => 3,
            InstanceStatus::Up => 4,
        }
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to an instance, as reported in a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionType {
    /// Newly registered.
    Added,
    /// Changed (status, metadata, re-registration).
    Modified,
    /// Cancelled or evicted.
    Deleted,
}

impl ActionType {
    /// The wire name (`ADDED`, `MODIFIED`, `DELETED`).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Added => "ADDED",
            ActionType::Modified => "MODIFIED",
            ActionType::Deleted => "DELETED",
        }
    }

    /// Parses a wire name case-insensitively.
    pub fn parse(s: &str) -> Option<ActionType> {
        [ActionType::Added, ActionType::Modified, ActionType::Deleted]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for ActionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip_and_unknown_words_are_unknown() {
        for s in InstanceStatus::ALL_BY_NAME {
            assert_eq!(InstanceStatus::parse_lenient(s.as_str()), s);
            assert_eq!(InstanceStatus::ALL_BY_NAME[s.index()], s);
        }
        assert_eq!(
            InstanceStatus::parse_lenient("out_of_service"),
            InstanceStatus::OutOfService
        );
        assert_eq!(
            InstanceStatus::parse_lenient("sleepy"),
            InstanceStatus::Unknown
        );
        let mut names: Vec<_> = InstanceStatus::ALL_BY_NAME
            .iter()
            .map(|s| s.as_str())
            .collect();
        let sorted = {
            let mut v = names.clone();
            v.sort_unstable();
            v
        };
        assert_eq!(names, sorted);
        names.clear();
    }

    #[test]
    fn action_types_parse() {
        assert_eq!(ActionType::parse("deleted"), Some(ActionType::Deleted));
        assert_eq!(ActionType::parse("x"), None);
    }
}
