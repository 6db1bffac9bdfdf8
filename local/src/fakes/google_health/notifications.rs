//! Google's side of the webhooks: the notifications it sends (what changed, for whom, when),
//! the verification handshake, and delivery with Google's retries.

use std::time::Duration;

use axum::http::header;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

use super::super::common::{IntoCivilDate, status_or_zero, subscriber_client};
use super::super::server::FakeError;
use super::wire::{
    CivilDateTimeJson, CivilInterval, DEFAULT_SUBSCRIPTION_NAME, IntervalJson, NotificationData, NotificationEnvelope,
    SIGNATURE_HEADER, TimeInterval, VERIFICATION_BODY,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Upsert,
    Delete,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Upsert => "UPSERT",
            Operation::Delete => "DELETE",
        }
    }
}

/// The changed span of each date a notification names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Local midnight to the next local midnight.
    WholeDay,
    /// From `start` to `end` on the same civil date.
    Between(Time, Time),
}

/// One notification object and how to deliver it. Built with [`Notification::upsert`] or
/// [`Notification::delete`]; the defaults reproduce a notification Google sent live (array
/// body, 09:05–10:10 in America/New_York, all three interval forms).
#[derive(Clone, Debug)]
pub struct Notification {
    pub health_user_id: String,
    pub dates: Vec<Date>,
    pub operation: Operation,
    /// An array of one object (as observed live) rather than a bare object.
    pub as_array: bool,
    /// The signature header; Google's name is `X-HEALTHAPI-SIGNATURE`, any case is allowed.
    pub header_name: String,
    /// Sent verbatim in `Authorization` (some live events lack it).
    pub authorization: Option<String>,
    pub max_attempts: u32,
    /// The wait before the first retry; doubles after each.
    pub backoff: Duration,
    pub subscription_name: String,
    /// Turns the civil window into `physicalTimeInterval`.
    pub time_zone: TimeZone,
    pub window: Window,
    /// `civilDateTimeInterval` and `civilIso8601TimeInterval` next to the physical one
    /// (Google's DELETE notices carry only the physical one).
    pub civil_intervals: bool,
}

impl Notification {
    pub fn upsert<D: IntoCivilDate>(health_user_id: &str, dates: impl IntoIterator<Item = D>) -> Self {
        Self::new(health_user_id, dates, Operation::Upsert)
    }

    pub fn delete<D: IntoCivilDate>(health_user_id: &str, dates: impl IntoIterator<Item = D>) -> Self {
        Self::new(health_user_id, dates, Operation::Delete)
    }

    fn new<D: IntoCivilDate>(health_user_id: &str, dates: impl IntoIterator<Item = D>, operation: Operation) -> Self {
        Self {
            health_user_id: health_user_id.to_owned(),
            dates: dates.into_iter().map(IntoCivilDate::into_civil_date).collect(),
            operation,
            as_array: true,
            header_name: SIGNATURE_HEADER.to_owned(),
            authorization: None,
            max_attempts: 3,
            backoff: Duration::from_millis(50),
            subscription_name: DEFAULT_SUBSCRIPTION_NAME.to_owned(),
            time_zone: TimeZone::get("America/New_York").unwrap_or(TimeZone::UTC),
            window: Window::Between(Time::constant(9, 5, 0, 0), Time::constant(10, 10, 0, 0)),
            civil_intervals: true,
        }
    }

    /// A bare object body instead of an array of one.
    pub fn single_object(mut self) -> Self {
        self.as_array = false;
        self
    }

    pub fn header_name(mut self, name: &str) -> Self {
        self.header_name = name.to_owned();
        self
    }

    pub fn authorization(mut self, value: &str) -> Self {
        self.authorization = Some(value.to_owned());
        self
    }

    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    pub fn backoff(mut self, first_wait: Duration) -> Self {
        self.backoff = first_wait;
        self
    }

    pub fn subscription_name(mut self, name: &str) -> Self {
        self.subscription_name = name.to_owned();
        self
    }

    pub fn time_zone(mut self, time_zone: TimeZone) -> Self {
        self.time_zone = time_zone;
        self
    }

    pub fn whole_day(mut self) -> Self {
        self.window = Window::WholeDay;
        self
    }

    pub fn between(mut self, start: Time, end: Time) -> Self {
        self.window = Window::Between(start, end);
        self
    }

    pub fn physical_only(mut self) -> Self {
        self.civil_intervals = false;
        self
    }

    /// The exact bytes [`super::FakeGoogleHealth::notify`] sends: compact JSON, no trailing newline.
    pub fn body(&self) -> Vec<u8> {
        let envelope = self.envelope();
        let body = if self.as_array { serde_json::to_vec(&[envelope]) } else { serde_json::to_vec(&envelope) };
        // Serializing these plain structs cannot fail.
        body.unwrap_or_default()
    }

    pub(super) fn envelope(&self) -> NotificationEnvelope<'_> {
        NotificationEnvelope {
            data: NotificationData {
                version: "1",
                client_provided_subscription_name: &self.subscription_name,
                health_user_id: &self.health_user_id,
                operation: self.operation.as_str(),
                data_type: "steps",
                intervals: self.dates.iter().map(|d| self.interval(*d)).collect(),
            },
        }
    }

    fn interval(&self, date: Date) -> IntervalJson {
        let (start, end) = match self.window {
            Window::WholeDay => {
                let next = date.tomorrow().unwrap_or(date);
                (date.to_datetime(Time::midnight()), next.to_datetime(Time::midnight()))
            }
            Window::Between(start, end) => (date.to_datetime(start), date.to_datetime(end)),
        };
        let physical = |dt: DateTime| {
            dt.to_zoned_datetime(self.time_zone.clone()).map(|z| z.timestamp().to_string()).unwrap_or_default()
        };
        IntervalJson {
            physical_time_interval: TimeInterval { start_time: physical(start), end_time: physical(end) },
            civil_date_time_interval: self.civil_intervals.then(|| CivilInterval {
                start_date_time: CivilDateTimeJson::from(start),
                end_date_time: CivilDateTimeJson::from(end),
            }),
            civil_iso8601_time_interval: self
                .civil_intervals
                .then(|| TimeInterval { start_time: start.to_string(), end_time: end.to_string() }),
        }
    }
}

/// What one delivery attempt got: an HTTP status, or why there was none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Status(u16),
    Failed(String),
}

impl Attempt {
    pub fn status(&self) -> Option<u16> {
        match self {
            Attempt::Status(status) => Some(*status),
            Attempt::Failed(_) => None,
        }
    }

    fn from_result(result: Result<reqwest::Response, reqwest::Error>) -> Self {
        match result {
            Ok(response) => Attempt::Status(response.status().as_u16()),
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }
}

/// How a notification went: every attempt in order, and the exact body and signature sent.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub statuses: Vec<Attempt>,
    pub attempts: u32,
    pub body: Vec<u8>,
    pub signature: String,
}

impl Delivery {
    /// The subscriber answered 204 in the end.
    pub fn delivered(&self) -> bool {
        self.statuses.last() == Some(&Attempt::Status(204))
    }

    pub fn last_status(&self) -> Option<u16> {
        self.statuses.last().and_then(Attempt::status)
    }
}

/// Several notifications in one array body, as Google sends up to 99 at once.
pub(super) fn array_body(notices: &[Notification]) -> Vec<u8> {
    let objects: Vec<NotificationEnvelope<'_>> = notices.iter().map(Notification::envelope).collect();
    serde_json::to_vec(&objects).unwrap_or_default()
}

/// The client Google posts to subscribers with.
pub(super) struct WebhookSender {
    http: reqwest::Client,
}

impl WebhookSender {
    pub(super) fn new() -> Result<Self, FakeError> {
        let http = subscriber_client(Duration::from_secs(10)).build().map_err(FakeError::Client)?;
        Ok(Self { http })
    }

    /// One verification POST; the status, or 0 when no HTTP answer came.
    pub(super) async fn verification(&self, url: &str, authorization: Option<&str>) -> u16 {
        let mut request = self.http.post(url).header(header::CONTENT_TYPE, "application/json").body(VERIFICATION_BODY);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        status_or_zero(request, url, "verification POST").await
    }

    /// One POST of `body` with exactly `headers` (plus a JSON content type unless given).
    pub(super) async fn raw(&self, url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Attempt {
        let mut request = self.http.post(url);
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Attempt::from_result(request.body(body).send().await)
    }

    /// POSTs `body` signed with `signature`, retrying with doubling backoff until a 204 or
    /// the notice's `max_attempts`.
    pub(super) async fn deliver(
        &self,
        url: &str,
        body: Vec<u8>,
        signature: String,
        options: &Notification,
    ) -> Delivery {
        let max_attempts = options.max_attempts.max(1);
        let mut statuses = Vec::new();
        let mut backoff = options.backoff;
        for attempt in 1..=max_attempts {
            let mut request = self
                .http
                .post(url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(options.header_name.as_str(), signature.as_str());
            if let Some(value) = &options.authorization {
                request = request.header(header::AUTHORIZATION, value.as_str());
            }
            let outcome = Attempt::from_result(request.body(body.clone()).send().await);
            let delivered = outcome == Attempt::Status(204);
            statuses.push(outcome);
            if delivered || attempt == max_attempts {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
        Delivery { attempts: statuses.len() as u32, statuses, body, signature }
    }
}
