//! Tokens for a provider call: the stored ones while fresh, else a refresh that is
//! single-flight across every Lambda (a lease on the connection item), never overwriting a
//! newer token or reviving a disconnected connection.

use super::{SyncEngine, SyncError, SyncOutcome};
use crate::domain::{Connection, ConnectionStatus, TokenSet};
use crate::ports::{OAuthClient, ProviderError, StoreError};
use std::time::Duration;

/// How many times a sync looks again for a peer's refreshed tokens before giving up.
const LEASE_WAIT_ROUNDS: u32 = 60;
/// How long a refresh lease lasts; a holder that dies frees it after this.
const REFRESH_LEASE: Duration = Duration::from_secs(30);
/// Tokens expiring within this margin are refreshed before use.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Tokens ready for a provider call, or the outcome that ends the sync instead.
pub(super) enum Tokens {
    Ready(Box<Connection>, Option<TokenSet>),
    Stop(SyncOutcome),
}

fn lease_holder_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

impl SyncEngine {
    /// The tokens to call the provider with: the stored ones while they are fresh, else new
    /// ones from a refresh that is single-flight across every Lambda (the connection's lease).
    pub(super) async fn usable_tokens(
        &self,
        connection: &Connection,
        oauth: Option<&dyn OAuthClient>,
        force: bool,
    ) -> Result<Tokens, SyncError> {
        let Some(tokens) = self.open_tokens(connection)? else {
            return Ok(Tokens::Ready(Box::new(connection.clone()), None));
        };
        let now = self.clock.now();
        if !force && tokens.expires_at > now + REFRESH_MARGIN {
            return Ok(Tokens::Ready(Box::new(connection.clone()), Some(tokens)));
        }
        let holder = lease_holder_id();
        let (user, source) = (&connection.user, connection.provider);
        for round in 0..LEASE_WAIT_ROUNDS {
            if self.connections.acquire_lease(user, source, &holder, now, REFRESH_LEASE).await? {
                let mut freed = false;
                let result = self.refresh_holding_lease(connection, oauth, force, &mut freed).await;
                // New tokens stored freed the lease in the same write; any other ending gives
                // it back with a write of its own.
                if !freed && let Err(error) = self.connections.release_lease(user, source, &holder).await {
                    tracing::warn!(%error, "refresh lease not released; it expires by itself");
                }
                return result;
            }
            // A peer is refreshing: wait for the tokens it stores.
            tokio::time::sleep(Duration::from_millis(50 + 25 * u64::from(round.min(8)))).await;
            match self.connections.get_connection(user, source).await? {
                None => return Ok(Tokens::Stop(SyncOutcome::Skipped(ConnectionStatus::Disconnected))),
                Some(latest) if latest.status != ConnectionStatus::Active => {
                    return Ok(Tokens::Stop(SyncOutcome::Skipped(latest.status)));
                }
                Some(latest) if latest.token_version != connection.token_version => {
                    let tokens = self.open_tokens(&latest)?;
                    return Ok(Tokens::Ready(Box::new(latest), tokens));
                }
                Some(_) => {}
            }
        }
        Err(StoreError::Unavailable("another sync held the refresh lease too long".into()).into())
    }

    async fn refresh_holding_lease(
        &self,
        read: &Connection,
        oauth: Option<&dyn OAuthClient>,
        force: bool,
        freed: &mut bool,
    ) -> Result<Tokens, SyncError> {
        let Some(latest) = self.connections.get_connection(&read.user, read.provider).await? else {
            return Ok(Tokens::Stop(SyncOutcome::Skipped(ConnectionStatus::Disconnected)));
        };
        if latest.status != ConnectionStatus::Active {
            return Ok(Tokens::Stop(SyncOutcome::Skipped(latest.status)));
        }
        let current = self.open_tokens(&latest)?;
        let Some(current) = current else { return Ok(Tokens::Ready(Box::new(latest), None)) };
        let now = self.clock.now();
        if latest.token_version != read.token_version || (!force && current.expires_at > now + REFRESH_MARGIN) {
            // A peer refreshed between our read and our lease.
            return Ok(Tokens::Ready(Box::new(latest), Some(current)));
        }
        let refreshed = match oauth {
            Some(oauth) => oauth.refresh(&current).await,
            None => Err(ProviderError::BadRequest("this source cannot refresh its tokens".into())),
        };
        match refreshed {
            Ok(fresh) => {
                // Stored as the next version (`store_tokens` moves it), and sealed for it.
                let sealed = self
                    .cipher
                    .encrypt(&latest.user, latest.provider, latest.token_version + 1, &fresh)
                    .map_err(|_| SyncError::Tokens)?;
                match self.connections.store_tokens(&latest.user, latest.provider, &sealed, latest.token_version).await
                {
                    Ok(version) => {
                        *freed = true;
                        tracing::info!(user = %latest.user, provider = %latest.provider, version, "tokens refreshed");
                        let stored = Connection { tokens: Some(sealed), token_version: version, ..latest };
                        Ok(Tokens::Ready(Box::new(stored), Some(fresh)))
                    }
                    Err(StoreError::Disconnected | StoreError::NotFound(_)) => {
                        Ok(Tokens::Stop(SyncOutcome::Skipped(ConnectionStatus::Disconnected)))
                    }
                    Err(StoreError::Conflict) => self.peer_tokens(&latest).await,
                    Err(e) => Err(e.into()),
                }
            }
            // Refresh tokens can be single-use elsewhere, and a disconnect or reconnect may
            // have replaced ours: only a refusal of the token still stored means "reconnect".
            Err(ProviderError::InvalidGrant) => match self.peer_tokens(&latest).await? {
                Tokens::Ready(c, t) if c.token_version != latest.token_version => Ok(Tokens::Ready(c, t)),
                Tokens::Ready(..) => {
                    let outcome = self.record_failure(&latest, ProviderError::InvalidGrant, now).await?;
                    Ok(Tokens::Stop(outcome))
                }
                stop @ Tokens::Stop(_) => Ok(stop),
            },
            Err(error) => Ok(Tokens::Stop(self.record_failure(&latest, error, now).await?)),
        }
    }

    /// Re-reads the connection after a lost race: its current tokens, or why to stop.
    async fn peer_tokens(&self, read: &Connection) -> Result<Tokens, SyncError> {
        match self.connections.get_connection(&read.user, read.provider).await? {
            Some(latest) if latest.status == ConnectionStatus::Active => {
                let tokens = self.open_tokens(&latest)?;
                Ok(Tokens::Ready(Box::new(latest), tokens))
            }
            Some(latest) => Ok(Tokens::Stop(SyncOutcome::Skipped(latest.status))),
            None => Ok(Tokens::Stop(SyncOutcome::Skipped(ConnectionStatus::Disconnected))),
        }
    }

    pub(super) fn open_tokens(&self, connection: &Connection) -> Result<Option<TokenSet>, SyncError> {
        connection
            .tokens
            .as_ref()
            .map(|sealed| self.cipher.decrypt(&connection.user, connection.provider, connection.token_version, sealed))
            .transpose()
            .map_err(|_| SyncError::Tokens)
    }
}
