//! The HTTP API spec and the router agree (being written).
