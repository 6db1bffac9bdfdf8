//! The legacy Fitbit Web API, turned off on 2 November 2026. Every sync of an old `fitbit`
//! connection ends in "reconnect Fitbit through Google"; nothing is fetched.

use crate::domain::{Connection, DailyValue, LocalDate, Provider, TokenSet};
use crate::ports::{ProviderError, StepProvider};
use async_trait::async_trait;

#[derive(Debug, Default, Clone, Copy)]
pub struct FitbitLegacy;

#[async_trait]
impl StepProvider for FitbitLegacy {
    fn provider(&self) -> Provider {
        Provider::Fitbit
    }

    async fn daily_steps(
        &self,
        _connection: &Connection,
        _tokens: Option<&TokenSet>,
        _start: LocalDate,
        _end: LocalDate,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        Err(ProviderError::Retired)
    }
}
