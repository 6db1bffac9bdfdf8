//! Settings read once from the environment into a typed struct; no `env::var` elsewhere.

use crate::domain::StepLimits;
use base64::Engine;
use secrecy::{ExposeSecret, SecretBox};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
#[error("configuration {name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(name: &'static str, message: impl Into<String>) -> Self {
        Self { name, message: message.into() }
    }
}

pub struct Config {
    /// `STEPSYNC_TABLE`: the one DynamoDB table.
    pub table_name: String,
    /// `STEPSYNC_EVENT_BUS`: the EventBridge bus StepSync publishes to.
    pub event_bus_name: String,
    /// `STEPSYNC_TOKEN_KEY`: base64 of the 32-byte token data key.
    pub token_key: SecretBox<[u8; 32]>,
    /// `STEPSYNC_MAX_DAILY_STEPS` (default 100000).
    pub limits: StepLimits,
    /// `STEPSYNC_SYNC_WINDOW_DAYS` (default 7): the default pull window, in local days.
    pub sync_window_days: u32,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("event_bus_name", &self.event_bus_name)
            .field("token_key", &"[REDACTED]")
            .field("limits", &self.limits)
            .field("sync_window_days", &self.sync_window_days)
            .finish()
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// The same, from an explicit map (tests, the local stack).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| vars.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or_else(|| ConfigError::new(name, "is not set"));
        let number = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            get(name).map_or(Ok(default), |v| v.parse().map_err(|_| ConfigError::new(name, "must be a whole number")))
        };
        Ok(Self {
            table_name: required("STEPSYNC_TABLE")?.to_owned(),
            event_bus_name: get("STEPSYNC_EVENT_BUS").unwrap_or("default").to_owned(),
            token_key: parse_key(required("STEPSYNC_TOKEN_KEY")?)?,
            limits: StepLimits { max_daily_steps: number("STEPSYNC_MAX_DAILY_STEPS", 100_000)? },
            sync_window_days: number("STEPSYNC_SYNC_WINDOW_DAYS", 7)?.clamp(1, 90),
        })
    }

    pub fn token_key(&self) -> &[u8; 32] {
        self.token_key.expose_secret()
    }
}

fn parse_key(raw: &str) -> Result<SecretBox<[u8; 32]>, ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| ConfigError::new("STEPSYNC_TOKEN_KEY", "must be base64"))?;
    let key: [u8; 32] =
        bytes.try_into().map_err(|_| ConfigError::new("STEPSYNC_TOKEN_KEY", "must decode to exactly 32 bytes"))?;
    Ok(SecretBox::new(Box::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reads_settings_and_names_the_one_that_is_wrong() {
        let key = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        let cfg = Config::from_vars(&vars(&[("STEPSYNC_TABLE", "t"), ("STEPSYNC_TOKEN_KEY", &key)])).unwrap();
        assert_eq!(cfg.limits.max_daily_steps, 100_000);
        assert!(!format!("{cfg:?}").contains(&key));
        let err = Config::from_vars(&vars(&[("STEPSYNC_TABLE", "t"), ("STEPSYNC_TOKEN_KEY", "c2hvcnQ=")])).unwrap_err();
        assert_eq!(err.name, "STEPSYNC_TOKEN_KEY");
        assert_eq!(Config::from_vars(&vars(&[])).unwrap_err().name, "STEPSYNC_TABLE");
    }
}
