//! Splitting a range of days into the chunks a provider's API accepts in one request.

use crate::domain::LocalDate;

/// `start..=end` as consecutive ranges of at most `max_days` days, oldest first.
pub(super) fn chunks(start: LocalDate, end: LocalDate, max_days: i32) -> Vec<(LocalDate, LocalDate)> {
    let mut chunks = Vec::new();
    let mut chunk_start = start;
    while chunk_start <= end {
        let chunk_end = chunk_start.add_days(max_days - 1).min(end);
        chunks.push((chunk_start, chunk_end));
        let next = chunk_end.add_days(1);
        // `add_days` saturates at the calendar's last day.
        if next <= chunk_end {
            break;
        }
        chunk_start = next;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    fn texts(chunks: Vec<(LocalDate, LocalDate)>) -> Vec<(String, String)> {
        chunks.into_iter().map(|(s, e)| (s.to_string(), e.to_string())).collect()
    }

    #[test]
    fn a_range_is_cut_into_chunks_of_at_most_the_given_days() {
        let chunks = chunks(date("2026-01-01"), date("2026-03-05"), 31);
        let expected = [("2026-01-01", "2026-01-31"), ("2026-02-01", "2026-03-03"), ("2026-03-04", "2026-03-05")];
        assert_eq!(texts(chunks), expected.map(|(s, e)| (s.to_owned(), e.to_owned())));
    }

    #[test]
    fn one_day_is_one_chunk_and_a_reversed_range_none() {
        assert_eq!(chunks(date("2026-11-25"), date("2026-11-25"), 90), [(date("2026-11-25"), date("2026-11-25"))]);
        assert!(chunks(date("2026-11-26"), date("2026-11-25"), 90).is_empty());
    }

    #[test]
    fn the_calendars_last_day_ends_the_chunks() {
        let last = date("9999-12-31");
        assert_eq!(chunks(last.add_days(-1), last, 1), [(last.add_days(-1), last.add_days(-1)), (last, last)]);
    }
}
