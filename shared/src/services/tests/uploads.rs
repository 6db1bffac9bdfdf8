//! Phone uploads: valid days counted, invalid ones reported, nothing written when nothing is
//! usable or nothing changed, and a phone source turned back on by its next upload.

use super::*;
use crate::domain::ConnectionStatus;
use crate::services::{DeviceUpload, RejectedDay, UploadReport};

/// An upload from alice's iPhone in Paris.
fn from_iphone(values: Vec<DailyValue>) -> DeviceUpload {
    from_phone_in("Europe/Paris", values)
}

fn applied(report: &UploadReport) -> Vec<(LocalDate, i64)> {
    report.applied.iter().map(|a| (a.local_date, a.steps)).collect()
}

fn rejected(report: &UploadReport) -> Vec<(String, &str)> {
    report.rejected.iter().map(|r| (r.local_date.to_string(), r.error.as_str())).collect()
}

#[tokio::test]
async fn valid_days_are_applied_and_counted_in_a_joined_challenge() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;

    let report =
        w.uploads.upload(&alice, from_iphone(vec![steps("2026-11-24", 8000), steps("2026-11-25", 3000)])).await;

    let report = report.unwrap();
    assert_eq!(applied(&report), [(date("2026-11-24"), 8000), (date("2026-11-25"), 3000)]);
    assert_eq!(rejected(&report), []);
    assert_eq!(w.total(&november, &alice).await, (11_000, 2));
    let phone = w.connection(&alice, Provider::AppleHealth).await.expect("made by the first upload");
    assert_eq!((phone.status, phone.time_zone.as_deref()), (ConnectionStatus::Active, Some("Europe/Paris")));
    assert_eq!((phone.last_success_at, phone.last_data_date), (Some(w.now()), Some(date("2026-11-25"))));
}

#[tokio::test]
async fn invalid_days_are_reported_with_their_codes_and_the_rest_applied() {
    let w = World::new();
    let alice = user("alice");
    let mut upload = from_iphone(vec![
        steps("2026-11-21", -5),
        steps("2026-11-22", 250_000),
        steps("2026-11-23", 4000),
        steps("2026-11-28", 10),
    ]);
    upload.rejected.push(RejectedDay { local_date: "yesterday".into(), error: "invalid_date".into() });

    let report = w.uploads.upload(&alice, upload).await.unwrap();

    assert_eq!(applied(&report), [(date("2026-11-23"), 4000)]);
    assert_eq!(
        rejected(&report),
        [
            (r#""yesterday""#.to_owned(), "invalid_date"),
            (r#""2026-11-21""#.to_owned(), "negative"),
            (r#""2026-11-22""#.to_owned(), "above_cap"),
            (r#""2026-11-28""#.to_owned(), "future_date"),
        ]
    );
    assert_eq!(w.store.day(&alice, date("2026-11-22")), None);
}

#[tokio::test]
async fn an_upload_with_nothing_usable_writes_nothing_at_all() {
    let w = World::new();
    let alice = user("alice");

    let report = w.uploads.upload(&alice, from_iphone(vec![steps("2026-11-24", -1)])).await.unwrap();

    assert_eq!(applied(&report), []);
    assert_eq!(rejected(&report), [(r#""2026-11-24""#.to_owned(), "negative")]);
    assert_eq!(w.store.writes(), 0);
    assert_eq!(w.connection(&alice, Provider::AppleHealth).await, None, "not even the connection");
}

#[tokio::test]
async fn uploading_the_same_days_again_writes_nothing() {
    let w = World::new();
    let alice = user("alice");
    let days = || from_iphone(vec![steps("2026-11-24", 8000), steps("2026-11-25", 3000)]);
    w.uploads.upload(&alice, days()).await.unwrap();
    let writes = w.store.writes();

    w.clock.advance(Duration::from_secs(600));
    let again = w.uploads.upload(&alice, days()).await.unwrap();

    assert_eq!(applied(&again), [(date("2026-11-24"), 8000), (date("2026-11-25"), 3000)]);
    assert_eq!(w.store.writes(), writes, "no day, connection or stamp written");
    assert_eq!(w.store.day(&alice, date("2026-11-24")).unwrap().total.get(), 8000, "never added up");
}

#[tokio::test]
async fn a_phone_source_turned_off_is_active_again_on_its_next_upload() {
    let w = World::new();
    let alice = user("alice");
    w.uploads.upload(&alice, from_iphone(vec![steps("2026-11-24", 8000)])).await.unwrap();
    w.store.disconnect(&alice, Provider::AppleHealth).await.unwrap();
    let before = w.connection(&alice, Provider::AppleHealth).await.unwrap();

    w.uploads.upload(&alice, from_iphone(vec![steps("2026-11-25", 3000)])).await.unwrap();

    let phone = w.connection(&alice, Provider::AppleHealth).await.unwrap();
    assert_eq!(phone.status, ConnectionStatus::Active);
    assert_eq!(phone.token_version, before.token_version + 2, "back on, then its installation bound again");
    assert!(phone.installs.contains_key("iphone"));
    assert_eq!((phone.last_success_at, phone.last_data_date), (Some(w.now()), Some(date("2026-11-25"))));
}

/// Alice's iPhone counted 9,000 for Nov 24; her iPad, which she carried only part of the day,
/// uploads 3,000 for it later: the day stays 9,000 (never 12,000, never 3,000). Each device's
/// own later reading replaces its earlier one; an older reading arriving late changes nothing.
/// A phone stuck in a loop (or a stolen token) sends changing days again and again: twelve
/// uploads that change something pass in a minute, then every upload is refused with the
/// seconds to the next minute, and nothing more is written; unchanged re-uploads are never
/// counted (they write nothing); the next minute passes again.
#[tokio::test]
async fn a_person_may_send_twelve_changing_uploads_a_minute_then_waits() {
    let w = World::new();
    let alice = user("alice");
    let upload = |steps_today: i64| w.uploads.upload(&alice, from_iphone(vec![steps("2026-11-25", steps_today)]));

    for i in 0..12 {
        upload(1000 + i).await.unwrap();
    }
    let writes = w.store.writes();
    let refused_upload = upload(5000).await;

    assert_eq!(
        refused(refused_upload),
        r#"TooSoon { message: "too many uploads that changed your days this minute; send again in 60 seconds", retry_after: 60s }"#
    );
    assert_eq!(w.store.writes(), writes, "nothing written");
    assert_eq!(w.store.day(&alice, date("2026-11-25")).map(|d| d.total.get()), Some(1011));
    w.clock.advance(std::time::Duration::from_secs(60));
    upload(5000).await.unwrap();
    assert_eq!(w.store.day(&alice, date("2026-11-25")).map(|d| d.total.get()), Some(5000));
    for _ in 0..20 {
        upload(5000).await.expect("an unchanged re-upload is not counted");
    }
}

/// D+1 arrives before D (a late upload of an older day): the newest data date stays D+1, so
/// the diagnosis never calls a phone that is syncing silent.
#[tokio::test]
async fn a_late_older_day_never_moves_the_newest_data_date_back() {
    let w = World::new();
    let alice = user("alice");

    w.uploads.upload(&alice, from_iphone(vec![steps("2026-11-25", 3000)])).await.unwrap();
    w.clock.advance(std::time::Duration::from_secs(2 * 3600));
    w.uploads.upload(&alice, from_iphone(vec![steps("2026-11-24", 8000)])).await.unwrap();

    let phone = w.connection(&alice, Provider::AppleHealth).await.unwrap();
    assert_eq!(phone.last_data_date, Some(date("2026-11-25")));
    assert_eq!(w.store.day(&alice, date("2026-11-24")).map(|d| d.total.get()), Some(8000), "the older day counts");
}

#[tokio::test]
async fn two_devices_on_one_platform_never_add_up_or_lower_the_day() {
    let w = World::new();
    let alice = user("alice");
    let november = w.challenge("november", "2026-11-01", "2026-11-30").await;
    w.join(&november, &alice).await;
    let reading = |install: &str, steps: i64, minutes_ago: i64| DeviceUpload {
        install_id: install.into(),
        observed_at: Some(w.now() - jiff::SignedDuration::from_mins(minutes_ago)),
        ..from_iphone(vec![DailyValue { date: date("2026-11-24"), steps, observed_at: None }])
    };

    w.uploads.upload(&alice, reading("iphone", 9000, 60)).await.unwrap();
    w.uploads.upload(&alice, reading("ipad", 3000, 30)).await.unwrap();
    assert_eq!(w.total(&november, &alice).await, (9000, 1));
    w.uploads.upload(&alice, reading("iphone", 8500, 90)).await.unwrap();
    assert_eq!(w.total(&november, &alice).await, (9000, 1), "an older iPhone reading arrived late");
    w.uploads.upload(&alice, reading("iphone", 9400, 10)).await.unwrap();
    assert_eq!(w.total(&november, &alice).await, (9400, 1));

    let future = reading("iphone", 9999, -10);
    assert_eq!(
        refused(w.uploads.upload(&alice, future).await),
        r#"Invalid { field: "observed_at", message: "is in the future" }"#
    );
}

/// An app installation feeds one person at a time. Alice's iPhone uploads; Bob signs in on it
/// and uploads: refused (409), nothing counted. Alice turns Apple Health off in StepSync, which
/// frees the installation; Bob's next upload binds it, and the days it may have counted for
/// Alice (through today, on the latest clock on Earth) are refused, later ones count.
#[tokio::test]
async fn an_installation_feeds_one_person_and_a_new_holder_starts_after_the_release() {
    let w = World::new();
    let (alice, bob) = (user("alice"), user("bob"));
    w.uploads.upload(&alice, from_iphone(vec![steps("2026-11-24", 8000)])).await.unwrap();

    let refused = w.uploads.upload(&bob, from_iphone(vec![steps("2026-11-24", 8000)])).await;
    assert!(
        matches!(&refused, Err(ServiceError::Conflict(m)) if m.contains("another StepSync account")),
        "{refused:?}"
    );
    assert_eq!(w.store.day(&bob, date("2026-11-24")), None);

    w.connecting.disconnect(&alice, Provider::AppleHealth).await.unwrap();
    w.clock.set("2026-11-28T18:00:00Z".parse().unwrap());
    let days = vec![steps("2026-11-26", 7000), steps("2026-11-27", 6000), steps("2026-11-28", 500)];
    let report = w.uploads.upload(&bob, from_iphone(days)).await.unwrap();

    // Released on Nov 25 at 18:00 UTC: Nov 26 already at UTC+14, whose tomorrow Alice may have sent.
    assert_eq!(applied(&report), [(date("2026-11-28"), 500)]);
    assert_eq!(
        rejected(&report),
        [
            (r#""2026-11-26""#.to_owned(), "before_device_linked"),
            (r#""2026-11-27""#.to_owned(), "before_device_linked")
        ]
    );
    assert_eq!(w.owner(Provider::AppleHealth, "iphone").await, Some(bob.clone()));
    let phone = w.connection(&bob, Provider::AppleHealth).await.unwrap();
    assert_eq!(phone.installs.get("iphone"), Some(&Some(date("2026-11-28"))));
    // Bound once: the next upload from it claims nothing (no write beyond its own).
    let writes = w.store.writes();
    w.uploads.upload(&bob, from_iphone(vec![steps("2026-11-28", 500)])).await.unwrap();
    assert_eq!(w.store.writes(), writes, "unchanged, and no claim");
}
