//! Erasing a person (someone who left the company, or who asks): their provider grants
//! revoked and their accounts and phones freed, their rows taken off every leaderboard, and
//! every item of theirs deleted. Asked by the person or by an administrator.
//!
//! The rule for leaderboards, open or final: the person's row is removed and the others keep
//! their totals, so the ranks below close up. Their days are deleted, never moved to anyone.

use super::{Connecting, Ports, ServiceError};
use crate::domain::{ConnectionStatus, UserId};
use serde::Serialize;

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErasureReport {
    /// Connections turned off (grants revoked at the provider, accounts and phones freed).
    pub connections_disconnected: usize,
    /// Leaderboards the person's row was taken off.
    pub challenges_left: usize,
    /// Items of the person's own partition deleted (days, profile, connections, ...).
    pub items_deleted: usize,
}

pub struct Erasure<'a> {
    pub ports: &'a Ports,
    pub connecting: &'a Connecting,
}

impl Erasure<'_> {
    /// Erases `person` on behalf of `caller`: the person themselves, or an administrator.
    /// Idempotent: erasing again finds nothing and says so. The order makes a crash safe to
    /// retry: the connections first (their tokens are needed to revoke), then the leaderboard
    /// rows (the profile lists them), then the person's own items.
    pub async fn erase(&self, caller: &UserId, admin: bool, person: &UserId) -> Result<ErasureReport, ServiceError> {
        if caller != person && !admin {
            return Err(ServiceError::Forbidden(
                "only the person themselves or an administrator may erase them".into(),
            ));
        }
        let mut report = ErasureReport::default();
        for connection in self.ports.connections.list_connections(person).await? {
            if connection.status == ConnectionStatus::Disconnected {
                continue;
            }
            match self.connecting.disconnect(person, connection.provider).await {
                Ok(()) => report.connections_disconnected += 1,
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let profile = self.ports.steps.load_user_days(person, &[]).await?.profile;
        for challenge in profile.memberships.keys() {
            self.ports.challenges.erase_participant(challenge, person).await?;
            report.challenges_left += 1;
        }
        report.items_deleted = self.ports.steps.erase_user(person).await?;
        tracing::info!(
            person = %person,
            by = %caller,
            connections = report.connections_disconnected,
            challenges = report.challenges_left,
            items = report.items_deleted,
            "person erased"
        );
        Ok(report)
    }
}
