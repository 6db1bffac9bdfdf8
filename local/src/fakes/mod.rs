//! Fake provider servers on loopback, faithful to ../shared/PROVIDERS.md (being written).
