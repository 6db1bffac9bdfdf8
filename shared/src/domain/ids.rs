//! Identifiers and dates: `UserId`, `ChallengeId`, `Provider`, `LocalDate`.

use super::ParseError;
use jiff::civil::Date;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Characters allowed in ids: they become parts of DynamoDB keys, so never `#`.
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':' | '|' | '+')
}

fn parse_id(field: &'static str, raw: &str, max: usize) -> Result<String, ParseError> {
    if raw.is_empty() {
        return Err(ParseError::new(field, "must not be empty"));
    }
    if raw.len() > max {
        return Err(ParseError::new(field, format!("must be at most {max} characters")));
    }
    if let Some(bad) = raw.chars().find(|c| !is_id_char(*c)) {
        return Err(ParseError::new(field, format!("must not contain {bad:?}")));
    }
    Ok(raw.to_owned())
}

macro_rules! string_id {
    ($name:ident, $field:literal, $max:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                parse_id($field, raw, $max).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(UserId, "user", 128);
string_id!(ChallengeId, "challenge", 64);
// A diagnosis's stable code (`token_revoked`, `missing_permission`, ...): part of the key of
// the once-per-period reminder record, so never a `#`.
string_id!(DiagnosisCode, "code", 64);

/// A step source. The same ids appear in routes, items, events and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Fitbit and Pixel through the Google Health API.
    GoogleHealth,
    /// The retired Fitbit Web API; kept only to migrate old connections.
    Fitbit,
    Misfit,
    AppleHealth,
    HealthConnect,
    /// The Oura ring, through Oura's API v2.
    Oura,
    /// Withings watches and trackers, through the Withings Public API.
    Withings,
    /// Polar watches and trackers, through Polar's AccessLink API v3.
    Polar,
    /// Garmin watches and trackers, through Garmin's Health API (daily summaries).
    Garmin,
}

impl Provider {
    pub const ALL: [Provider; 9] = [
        Provider::GoogleHealth,
        Provider::Fitbit,
        Provider::Misfit,
        Provider::AppleHealth,
        Provider::HealthConnect,
        Provider::Oura,
        Provider::Withings,
        Provider::Polar,
        Provider::Garmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GoogleHealth => "google_health",
            Provider::Fitbit => "fitbit",
            Provider::Misfit => "misfit",
            Provider::AppleHealth => "apple_health",
            Provider::HealthConnect => "health_connect",
            Provider::Oura => "oura",
            Provider::Withings => "withings",
            Provider::Polar => "polar",
            Provider::Garmin => "garmin",
        }
    }

    /// The name a person knows the source by.
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::GoogleHealth => "Fitbit / Google Health",
            Provider::Fitbit => "Fitbit",
            Provider::Misfit => "Misfit",
            Provider::AppleHealth => "Apple Health",
            Provider::HealthConnect => "Health Connect",
            Provider::Oura => "Oura",
            Provider::Withings => "Withings",
            Provider::Polar => "Polar",
            Provider::Garmin => "Garmin",
        }
    }

    /// Sources whose notifications flow through app-level subscriptions that can lapse
    /// (expire, or be switched off), which the daily run keeps alive: Oura's expire, and
    /// Polar switches its one webhook off after a week of failed deliveries.
    pub fn has_app_subscriptions(self) -> bool {
        matches!(self, Provider::Oura | Provider::Polar)
    }

    /// Sources read by upload time, not by date (Garmin): a sync by dates asks the source to
    /// deliver those days again and reads nothing itself, so it never finds a day gone.
    pub fn is_read_by_upload(self) -> bool {
        matches!(self, Provider::Garmin)
    }

    /// Phone sources upload their own totals; nothing is pulled from a server.
    pub fn is_phone_upload(self) -> bool {
        matches!(self, Provider::AppleHealth | Provider::HealthConnect)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = ParseError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(|| ParseError::new("provider", format!("unknown provider {raw:?}")))
    }
}

/// A civil (local calendar) date as the provider or the phone reports it: `yyyy-mm-dd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalDate(Date);

impl LocalDate {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        // Only the strict ISO form: no times, no week dates, always ten characters.
        if raw.len() != 10 {
            return Err(ParseError::new("local_date", format!("{raw:?} is not a yyyy-mm-dd date")));
        }
        raw.parse::<Date>()
            .map(Self)
            .map_err(|_| ParseError::new("local_date", format!("{raw:?} is not a yyyy-mm-dd date")))
    }

    pub fn from_date(date: Date) -> Self {
        Self(date)
    }

    pub fn date(self) -> Date {
        self.0
    }

    /// The date `days` later (earlier for negative); saturates at the calendar's ends.
    pub fn add_days(self, days: i32) -> Self {
        let span = jiff::Span::new().days(days);
        Self(self.0.checked_add(span).unwrap_or(self.0))
    }

    /// Every date from `self` to `end`, both included.
    pub fn through(self, end: LocalDate) -> impl Iterator<Item = LocalDate> {
        let mut next = Some(self);
        std::iter::from_fn(move || {
            let current = next.filter(|d| *d <= end)?;
            let following = current.add_days(1);
            next = (following > current).then_some(following);
            Some(current)
        })
    }
}

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for LocalDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_key_separators_and_empty_values() {
        assert!(UserId::parse("alice@example.com").is_ok());
        assert_eq!(UserId::parse("a#b").unwrap_err().field, "user");
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn providers_round_trip_through_their_ids() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.as_str()));
        }
        assert!("strava".parse::<Provider>().is_err());
    }

    #[test]
    fn local_dates_are_strict_iso_days() {
        let d = LocalDate::parse("2026-11-24").unwrap();
        assert_eq!(d.to_string(), "2026-11-24");
        assert_eq!(d.add_days(7).to_string(), "2026-12-01");
        assert!(LocalDate::parse("2026-2-1").is_err());
        assert!(LocalDate::parse("2026-02-30").is_err());
        assert!(LocalDate::parse("2026-11-24T00:00").is_err());
        let days: Vec<_> = d.through(LocalDate::parse("2026-11-26").unwrap()).collect();
        assert_eq!(days.len(), 3);
    }
}
