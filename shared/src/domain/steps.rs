//! Step counts and the validation every daily value passes before it can touch a record.

use super::LocalDate;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A validated daily step count: a whole number from 0 to the configured cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepCount(u32);

impl StepCount {
    pub const ZERO: StepCount = StepCount(0);

    pub fn get(self) -> u32 {
        self.0
    }

    /// Trusted construction for values that were validated before they were stored.
    pub(crate) fn from_stored(v: u32) -> Self {
        StepCount(v)
    }
}

/// What a plausible daily value is; configurable because some people really walk 80 km.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLimits {
    pub max_daily_steps: u32,
}

impl Default for StepLimits {
    fn default() -> Self {
        Self { max_daily_steps: 100_000 }
    }
}

/// Why a daily value was refused; the previous value for that day stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ValueError {
    #[error("steps must not be negative (got {steps})")]
    Negative { steps: i64 },
    #[error("{steps} steps is above the daily limit of {max}")]
    AboveCap { steps: i64, max: u32 },
    #[error("{date} is after the person's local tomorrow ({tomorrow})")]
    FutureDate { date: LocalDate, tomorrow: LocalDate },
}

impl ValueError {
    pub fn code(&self) -> &'static str {
        match self {
            ValueError::Negative { .. } => "negative",
            ValueError::AboveCap { .. } => "above_cap",
            ValueError::FutureDate { .. } => "future_date",
        }
    }
}

/// A span of upload time at a source that is read by when the data reached it, not by the day
/// the data is for (Garmin's Health API: "what this person uploaded between these instants",
/// at most 24 hours), named by the source's own notice. Reading it returns whichever days were
/// uploaded then, and says nothing of the others.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The source's time-bound pull token from the notice, sent back with the read (Garmin's
    /// `token`): time-bound and worthless without the person's access token, which never
    /// leaves the encrypted store. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_token: Option<String>,
}

impl std::fmt::Debug for UploadWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = self.pull_token.as_ref().map(|_| "[redacted]");
        f.debug_struct("UploadWindow")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("pull_token", &token)
            .finish()
    }
}

/// One source's total for one civil day, as a provider or the phone reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyValue {
    pub date: LocalDate,
    /// Raw, not yet validated: providers send strings, numbers and occasionally nonsense.
    pub steps: i64,
    /// The provider's own time for this value (e.g. a last-modified stamp), where it has one.
    /// Without one, the value that arrives last wins.
    pub observed_at: Option<Timestamp>,
}

impl StepLimits {
    /// Checks one value against the cap and the person's local tomorrow.
    pub fn validate(&self, value: &DailyValue, local_today: LocalDate) -> Result<StepCount, ValueError> {
        let tomorrow = local_today.add_days(1);
        if value.date > tomorrow {
            return Err(ValueError::FutureDate { date: value.date, tomorrow });
        }
        if value.steps < 0 {
            return Err(ValueError::Negative { steps: value.steps });
        }
        if value.steps > i64::from(self.max_daily_steps) {
            return Err(ValueError::AboveCap { steps: value.steps, max: self.max_daily_steps });
        }
        Ok(StepCount(value.steps as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(date: &str, steps: i64) -> DailyValue {
        DailyValue { date: LocalDate::parse(date).unwrap(), steps, observed_at: None }
    }

    #[test]
    fn validation_accepts_the_range_and_refuses_the_rest() {
        let limits = StepLimits::default();
        let today = LocalDate::parse("2026-11-25").unwrap();
        assert_eq!(limits.validate(&value("2026-11-25", 0), today).unwrap().get(), 0);
        assert_eq!(limits.validate(&value("2026-11-26", 100_000), today).unwrap().get(), 100_000);
        assert_eq!(limits.validate(&value("2026-11-25", -1), today).unwrap_err().code(), "negative");
        assert_eq!(limits.validate(&value("2026-11-25", 100_001), today).unwrap_err().code(), "above_cap");
        assert_eq!(limits.validate(&value("2026-11-27", 10), today).unwrap_err().code(), "future_date");
    }
}
