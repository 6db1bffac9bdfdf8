//! Typed values parsed once at the edge: ids, dates, step counts, day records, challenges and
//! connections.

mod challenge;
mod connection;
mod day;
mod failure;
mod ids;
mod oauth;
mod steps;

pub use challenge::{
    Challenge, ChallengeState, LeaderboardEntry, LeaderboardPage, MAX_CHALLENGE_DAYS, MAX_GRACE_DAYS,
    MAX_OPEN_CHALLENGES, MAX_TRANSACTION_ITEMS, Membership, Participant, ParticipantTotals, Snapshot, SourceTotals,
    UserProfile,
};
pub use connection::{
    AccountHold, Connection, ConnectionStatus, DUE_SHARDS, DueSlot, EncryptedTokens, LastError, TokenSet, local_today,
    phase_hash, shard_among, shard_of,
};
pub use day::{DayRecord, SourceValue, resolve_total, resolved_source};
pub use failure::FailureCode;
pub use ids::{ChallengeId, DiagnosisCode, LocalDate, Provider, UserId};
pub use oauth::{CONNECT_TICKET_TTL, OAUTH_STATE_TTL, OAuthStage, OAuthState};
pub use steps::{DailyValue, StepCount, StepLimits, UploadWindow, ValueError};

/// A value that failed to parse at the edge, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParseError {
    pub field: &'static str,
    pub message: String,
}

impl ParseError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}
