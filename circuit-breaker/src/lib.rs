//! Resilience policies for async calls (work in progress).
