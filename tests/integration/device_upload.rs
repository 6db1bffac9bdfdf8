//! Apple Health and Health Connect totals uploaded by the phone, through the real
//! `manual-sync` handler, on dynoxide.

use jiff::tz::TimeZone;
use serde_json::{Value, json};
use stepsync::domain::{DailyValue, ParticipantTotals, Provider, UserId};
use stepsync::ports::{ChallengeStore, ConnectionStore, StepStore};
use stepsync_local::harness::{self, TestEnv, body_json, date, request_from_sample, unique};
use stepsync_local::on_both_backends;

on_both_backends!(
    reuploading_the_same_days_sends_zero_writes_and_two_phones_never_add_up,
    phone_and_google_resolve_by_primary_or_maximum_and_the_leaderboard_stays_exact,
    bad_uploads_get_field_errors_and_mixed_uploads_keep_their_valid_days,
    an_installation_feeds_one_person_through_the_api,
    a_person_uploading_too_often_is_told_when_to_send_again,
);

fn user() -> UserId {
    UserId::parse(&unique("walker")).unwrap()
}

async fn upload(app: &functions::app::App, user: &UserId, body: Value) -> (u16, Value) {
    let text = body.to_string();
    let req = request_from_sample("device_upload.json", Some(user), |e| e["body"] = text.into());
    let res = functions::manual_sync::handle(app, req).await;
    (res.status().as_u16(), body_json(&res))
}

fn days(pairs: &[(&str, i64)]) -> Value {
    Value::Array(pairs.iter().map(|(d, s)| json!({"local_date": d, "steps": s})).collect())
}

fn phone(install: &str, pairs: &[(&str, i64)]) -> Value {
    json!({"platform": "apple_health", "install_id": install, "time_zone": "America/Chicago", "days": days(pairs)})
}

async fn reuploading_the_same_days_sends_zero_writes_and_two_phones_never_add_up(env: TestEnv) {
    let app = harness::app(&env, vec![]);
    let walker = user();
    let c = env.challenge("2026-11-01", "2026-11-30").await;
    env.challenges().join(&c, &walker, env.now()).await.unwrap();
    let week = [("2026-11-22", 9000), ("2026-11-23", 10_212), ("2026-11-24", 8421)];
    let (status, body) = upload(&app, &walker, phone("iphone", &week)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"].as_array().unwrap().len(), 3);
    let connection =
        env.store.get_connection(&walker, Provider::AppleHealth).await.unwrap().expect("created on the first upload");
    assert_eq!(connection.time_zone.as_deref(), Some("America/Chicago"));

    env.counter.reset();
    let (status, _) = upload(&app, &walker, phone("iphone", &week)).await;
    assert_eq!(status, 200);
    assert_eq!(env.counter.writes(), 0, "re-uploading the same days writes nothing: {:?}", env.counter.snapshot());

    // A second phone on the same Apple ID uploads the same totals: still one count.
    let (status, _) = upload(&app, &walker, phone("ipad", &week)).await;
    assert_eq!(status, 200);
    let totals = env.challenges().recompute(&c, &walker).await.unwrap();
    assert_eq!(totals.best().total, 9000 + 10_212 + 8421);
    assert_eq!(env.store.participant(&c, &walker).await.unwrap().unwrap().sources, totals);
    // A later upload overwrites (the phone recounted), never adds.
    upload(&app, &walker, phone("ipad", &[("2026-11-24", 8500)])).await;
    assert_eq!(env.challenges().recompute(&c, &walker).await.unwrap().best().total, 9000 + 10_212 + 8500);
    assert_eq!(env.store.participant(&c, &walker).await.unwrap().unwrap().totals().total, 9000 + 10_212 + 8500);
}

async fn phone_and_google_resolve_by_primary_or_maximum_and_the_leaderboard_stays_exact(env: TestEnv) {
    let app = harness::app(&env, vec![]);
    let walker = user();
    let c = env.challenge("2026-11-01", "2026-11-30").await;
    env.challenges().join(&c, &walker, env.now()).await.unwrap();
    upload(&app, &walker, phone("iphone", &[("2026-11-24", 8421)])).await;
    env.engine
        .apply(
            &walker,
            Provider::GoogleHealth,
            &TimeZone::UTC,
            &[DailyValue { date: date("2026-11-24"), steps: 7900, observed_at: None }],
        )
        .await
        .unwrap();
    let day = env.store.load_user_days(&walker, &[date("2026-11-24")]).await.unwrap().days[&date("2026-11-24")].clone();
    assert_eq!(day.total.get(), 8421, "the larger of the two, never 16321");
    assert_eq!(env.store.participant(&c, &walker).await.unwrap().unwrap().totals().total, 8421);

    // With Google as the primary source, its value decides the next time the day moves.
    let rev = env.store.load_user_days(&walker, &[]).await.unwrap().profile.rev;
    env.store.set_primary_source(&walker, Some(Provider::GoogleHealth), rev).await.unwrap();
    env.engine
        .apply(
            &walker,
            Provider::GoogleHealth,
            &TimeZone::UTC,
            &[DailyValue { date: date("2026-11-24"), steps: 7950, observed_at: None }],
        )
        .await
        .unwrap();
    let day = env.store.load_user_days(&walker, &[date("2026-11-24")]).await.unwrap().days[&date("2026-11-24")].clone();
    assert_eq!(day.total.get(), 7950);
    let stored = env.store.participant(&c, &walker).await.unwrap().unwrap().sources;
    assert_eq!(stored, env.challenges().recompute(&c, &walker).await.unwrap(), "the leaderboard stays exact");
    // The challenge counts the best single source over its window, whatever the day shows.
    assert_eq!(stored.counted(), Some((Provider::AppleHealth, ParticipantTotals { total: 8421, days: 1 })));
}

async fn bad_uploads_get_field_errors_and_mixed_uploads_keep_their_valid_days(env: TestEnv) {
    let app = harness::app(&env, vec![]);
    let walker = user();
    let field_of = |body: &Value| body["error"]["field"].as_str().map(str::to_owned);
    let cases = [
        (json!("not an object"), "body"),
        (
            json!({"platform": "fitbit", "install_id": "x", "time_zone": "UTC", "days": days(&[("2026-11-24", 1)])}),
            "platform",
        ),
        (json!({"platform": "apple_health", "time_zone": "UTC", "days": days(&[("2026-11-24", 1)])}), "install_id"),
        (
            json!({"platform": "apple_health", "install_id": "x", "time_zone": "Mars/Olympus", "days": days(&[("2026-11-24", 1)])}),
            "time_zone",
        ),
        (json!({"platform": "apple_health", "install_id": "x", "time_zone": "UTC", "days": []}), "days"),
    ];
    for (body, field) in cases {
        let (status, answer) = upload(&app, &walker, body.clone()).await;
        assert_eq!((status, field_of(&answer).as_deref()), (400, Some(field)), "{body}: {answer}");
    }
    let month: Vec<(String, i64)> = (0..32).map(|i| (date("2026-10-20").add_days(i).to_string(), 100)).collect();
    let pairs: Vec<(&str, i64)> = month.iter().map(|(d, s)| (d.as_str(), *s)).collect();
    let (status, answer) = upload(&app, &walker, phone("iphone", &pairs)).await;
    assert_eq!((status, field_of(&answer).as_deref()), (400, Some("days")), "32 days: {answer}");
    let req = request_from_sample("device_upload.json", Some(&walker), |e| e["body"] = "{not json".into());
    assert_eq!(functions::manual_sync::handle(&app, req).await.status(), 400, "malformed JSON");
    let (status, answer) = upload(&app, &walker, phone("iphone", &[("2026-11-28", 500)])).await;
    assert_eq!(status, 400, "only a future date: {answer}");
    assert_eq!(answer["rejected"], json!([{"local_date": "2026-11-28", "error": "future_date"}]));
    assert!(env.store.load_user_days(&walker, &[date("2026-11-28")]).await.unwrap().days.is_empty());

    // A mixed upload: the valid days are kept, each invalid one says why. `5000.0` is the
    // integer the contract asks for (JSON Schema's integer 5000), written as some encoders do.
    let mixed = json!({"platform": "health_connect", "install_id": "pixel", "time_zone": "Europe/Berlin", "days": [
        {"local_date": "2026-11-19", "steps": 5000.0},
        {"local_date": "2026-11-20", "steps": 6000},
        {"local_date": "2026-11-21", "steps": -5},
        {"local_date": "2026-11-22", "steps": 250000},
        {"local_date": "2026-11-23", "steps": 12.5},
        {"local_date": "2026-11-24", "steps": 300},
        {"local_date": "2026-11-24", "steps": 400},
        {"local_date": "24/11/2026", "steps": 1},
        {"local_date": "2026-11-25", "steps": 7000},
    ]});
    let (status, answer) = upload(&app, &walker, mixed).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["applied"],
        json!([
            {"local_date": "2026-11-19", "steps": 5000},
            {"local_date": "2026-11-20", "steps": 6000},
            {"local_date": "2026-11-25", "steps": 7000},
        ])
    );
    let mut errors: Vec<(String, String)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["local_date"].as_str().unwrap().to_owned(), r["error"].as_str().unwrap().to_owned()))
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("2026-11-21".to_owned(), "negative".to_owned()),
            ("2026-11-22".to_owned(), "above_cap".to_owned()),
            ("2026-11-23".to_owned(), "not_an_integer".to_owned()),
            ("2026-11-24".to_owned(), "duplicate_date".to_owned()),
            ("2026-11-24".to_owned(), "duplicate_date".to_owned()),
            ("24/11/2026".to_owned(), "invalid_date".to_owned()),
        ]
    );
    let stored = env.store.load_user_window(&walker, date("2026-11-19"), date("2026-11-26")).await.unwrap().days;
    let kept: Vec<(String, u32)> = stored.values().map(|d| (d.date.to_string(), d.total.get())).collect();
    assert_eq!(
        kept,
        [("2026-11-19".to_owned(), 5000), ("2026-11-20".to_owned(), 6000), ("2026-11-25".to_owned(), 7000)]
    );
}

/// An installation is bound to the first person who uploads from it (the phone connection
/// keeps it, the owner item holds it): another person's upload from it is 409 and counts
/// nothing; once the holder turns Apple Health off, the next person's days count from the day
/// after the release.
async fn an_installation_feeds_one_person_through_the_api(env: TestEnv) {
    let app = harness::app(&env, vec![]);
    let (alice, bob) = (user(), user());
    let install = unique("ipad");
    let (status, body) = upload(&app, &alice, phone(&install, &[("2026-11-24", 8000)])).await;
    assert_eq!(status, 200, "{body}");
    let phone_connection = env.store.get_connection(&alice, Provider::AppleHealth).await.unwrap().unwrap();
    assert_eq!(phone_connection.installs.get(&install), Some(&None), "{:?}", env.backend);

    let (status, body) = upload(&app, &bob, phone(&install, &[("2026-11-24", 8000)])).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")), "{body}");
    assert!(env.store.load_user_days(&bob, &[date("2026-11-24")]).await.unwrap().days.is_empty());

    let req = request_from_sample("oauth_disconnect.json", Some(&alice), |e| {
        e["rawPath"] = "/v1/connections/apple_health".into();
        e["pathParameters"]["provider"] = "apple_health".into();
    });
    let res = functions::oauth::handle(&app, req).await;
    assert_eq!(res.status().as_u16(), 204, "{}", body_json(&res));
    let off = env.store.get_connection(&alice, Provider::AppleHealth).await.unwrap().unwrap();
    assert!(off.installs.is_empty(), "released with the connection");

    env.clock.set("2026-11-28T18:00:00Z".parse().unwrap());
    let (status, body) = upload(&app, &bob, phone(&install, &[("2026-11-27", 6000), ("2026-11-28", 500)])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], json!([{"local_date": "2026-11-28", "steps": 500}]));
    assert_eq!(body["rejected"][0]["error"], "before_device_linked");
    assert_eq!(env.store.provider_account_owner(Provider::AppleHealth, &install).await.unwrap(), Some(bob));
}

/// Past the per-person rate (two a minute here), the API answers 429 with `Retry-After`, in the
/// error shape every route uses, and the next minute's upload passes.
async fn a_person_uploading_too_often_is_told_when_to_send_again(env: TestEnv) {
    let app = harness::app(&env, vec![("STEPSYNC_UPLOADS_PER_MINUTE", "2".to_owned())]);
    let walker = user();
    let send = |steps: i64| {
        let text = phone("iphone", &[("2026-11-24", steps)]).to_string();
        let req = request_from_sample("device_upload.json", Some(&walker), |e| e["body"] = text.into());
        functions::manual_sync::handle(&app, req)
    };
    assert_eq!(send(1000).await.status(), 200);
    assert_eq!(send(2000).await.status(), 200);
    let res = send(3000).await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(body_json(&res)["error"]["code"], "too_many_requests");
    let day = env.store.load_user_days(&walker, &[date("2026-11-24")]).await.unwrap().days[&date("2026-11-24")].clone();
    assert_eq!(day.total.get(), 2000, "the refused upload changed nothing");
    env.clock.advance(std::time::Duration::from_secs(60));
    assert_eq!(send(3000).await.status(), 200);
}
