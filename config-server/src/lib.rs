//! config-server library (work in progress).
