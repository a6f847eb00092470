//! discovery-server library (work in progress).
