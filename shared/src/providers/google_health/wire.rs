//! Google's JSON shapes shared by the API client and the webhook parser.

use crate::domain::LocalDate;
use serde::Deserialize;
use serde_json::Value;

/// A `google.type.Date`. Proto3 JSON omits zero fields, so each part defaults to 0 (and a
/// date with a zero part is refused rather than guessed).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(super) struct CivilDate {
    #[serde(default)]
    pub year: i64,
    #[serde(default)]
    pub month: i64,
    #[serde(default)]
    pub day: i64,
}

impl CivilDate {
    pub fn from_local(date: LocalDate) -> Self {
        let d = date.date();
        Self { year: d.year().into(), month: d.month().into(), day: d.day().into() }
    }

    pub fn to_local(self) -> Option<LocalDate> {
        let year = i16::try_from(self.year).ok()?;
        let month = i8::try_from(self.month).ok()?;
        let day = i8::try_from(self.day).ok()?;
        jiff::civil::Date::new(year, month, day).ok().map(LocalDate::from_date)
    }

    pub fn to_json(self) -> Value {
        serde_json::json!({ "year": self.year, "month": self.month, "day": self.day })
    }
}

/// A civil date and time, of which only the date matters here.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(super) struct CivilDateTime {
    pub date: CivilDate,
}

/// An int64 as proto3 JSON sends it: a decimal string, though a number is accepted too.
pub(super) fn int64(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => text.trim().parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn int64_values_are_read_from_strings_and_numbers_alike() {
        assert_eq!(int64(&json!("11873")), Some(11873));
        assert_eq!(int64(&json!(6240)), Some(6240));
        assert_eq!(int64(&json!("12.5")), None);
        assert_eq!(int64(&json!(12.5)), None);
        assert_eq!(int64(&json!(null)), None);
    }

    #[test]
    fn civil_dates_round_trip_and_refuse_impossible_days() {
        let date = LocalDate::parse("2026-11-24").unwrap();
        assert_eq!(CivilDate::from_local(date).to_json(), json!({"year": 2026, "month": 11, "day": 24}));
        assert_eq!(CivilDate::from_local(date).to_local(), Some(date));
        assert_eq!(CivilDate { year: 2026, month: 2, day: 30 }.to_local(), None);
        assert_eq!(CivilDate { year: 2026, month: 0, day: 1 }.to_local(), None);
        assert_eq!(CivilDate { year: 70_000, month: 1, day: 1 }.to_local(), None);
    }
}
