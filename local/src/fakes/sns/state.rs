//! What the fake SNS knows: its certificate and the subscriptions it offered and saw confirmed.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::server::Fake;
use super::signing::SignatureVersion;

/// What the fake's routes share: this state and the call counters (no test faults SNS).
pub(super) type Shared = Arc<Fake<SnsState>>;

pub(super) struct SnsState {
    pub(super) cert_pem: String,
    /// How the messages made from now on are signed.
    pub(super) signature_version: SignatureVersion,
    /// Subscription tokens handed out → their topic.
    pub(super) issued: HashMap<String, String>,
    pub(super) confirmed: Vec<String>,
}
