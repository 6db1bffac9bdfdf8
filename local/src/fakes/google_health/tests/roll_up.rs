//! The Health API's `dailyRollUp` and identity, and the faults and counters around them.

use super::*;

#[tokio::test]
async fn a_token_without_the_activity_scope_gets_403_missing_oauth_scope_from_roll_up() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person(PERSON, None);
    let token = connect(&fake, PERSON, Some(&[SETTINGS_SCOPE])).await;
    assert_eq!(token["scope"], SETTINGS_SCOPE);

    let (status, body, _) =
        roll_up(&fake, token["access_token"].as_str().unwrap(), &range((2026, 11, 21), (2026, 11, 26))).await;

    assert_eq!(status, 403);
    assert_eq!(body, fixture_json("error_403_missing_scope.json"));
}

#[tokio::test]
async fn roll_up_refuses_more_than_90_days_with_invalid_rollup_query_duration_but_takes_exactly_90() {
    let fake = FakeGoogleHealth::start().await;
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);

    let (status, body, _) = roll_up(&fake, &tokens.access_token, &range((2026, 1, 1), (2026, 4, 2))).await;
    assert_eq!(status, 400);
    assert_eq!(body, fixture_json("error_400_range.json"));

    let (status, _, _) = roll_up(&fake, &tokens.access_token, &range((2026, 1, 1), (2026, 4, 1))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn roll_up_refuses_an_empty_range_another_window_and_malformed_bodies_with_invalid_argument() {
    let fake = FakeGoogleHealth::start().await;
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
    let mut weekly = range((2026, 11, 1), (2026, 11, 8));
    weekly["windowSizeDays"] = json!(7);
    let bodies = [
        range((2026, 11, 8), (2026, 11, 8)),
        range((2026, 11, 8), (2026, 11, 1)),
        weekly,
        range((2026, 2, 30), (2026, 3, 2)),
        json!({ "windowSizeDays": 1 }),
        json!("not an object"),
    ];
    for body in bodies {
        let (status, answer, _) = roll_up(&fake, &tokens.access_token, &body).await;
        assert_eq!((status, answer["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{body}");
        assert_eq!(error_reason(&answer), None);
    }
    let response = http()
        .post(format!("{}/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp", fake.api_base()))
        .bearer_auth(&tokens.access_token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn roll_up_reproduces_the_fixture_pages_for_the_fixture_days() {
    let fake = FakeGoogleHealth::start().await;
    for (day, steps) in [("2026-11-21", 11873), ("2026-11-22", 6240), ("2026-11-23", 0), ("2026-11-24", 0)] {
        fake.set_steps(PERSON, day, steps);
    }
    fake.set_steps(PERSON, Date::constant(2026, 11, 25), 4310);
    fake.set_page_size(4);
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);

    let (_, page1, _) = roll_up(&fake, &tokens.access_token, &range((2026, 11, 21), (2026, 11, 27))).await;
    let mut next = range((2026, 11, 21), (2026, 11, 27));
    next["pageToken"] = page1["nextPageToken"].clone();
    let (_, page2, _) = roll_up(&fake, &tokens.access_token, &next).await;

    assert_eq!(page1["rollupDataPoints"], fixture_json("daily_rollup.json")["rollupDataPoints"]);
    assert!(page1["nextPageToken"].is_string());
    assert_eq!(page2, fixture_json("daily_rollup_page2.json"));
}

#[tokio::test]
async fn roll_up_pages_only_days_with_data_out_of_order_and_in_every_count_form() {
    let fake = FakeGoogleHealth::start().await;
    let days = [("2026-03-01", 10), ("2026-03-02", 0), ("2026-03-03", 0), ("2026-03-04", 44), ("2026-03-06", 66)];
    for (day, steps) in days {
        fake.set_steps(PERSON, day, steps);
    }
    for day in 7..=9 {
        fake.set_steps(PERSON, Date::constant(2026, 3, day), 1000 + day as u64);
    }
    fake.set_steps(PERSON, "2026-02-28", 5); // outside the range
    fake.set_steps(PERSON, "2026-03-10", 5); // the exclusive end
    fake.clear_steps(PERSON, "2026-03-10");
    fake.set_steps(PERSON, "2026-03-10", 5);
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
    let body = range((2026, 3, 1), (2026, 3, 10));

    let (_, page1, _) = roll_up(&fake, &tokens.access_token, &body).await;
    // The token may come in the query string too.
    let token = page1["nextPageToken"].as_str().unwrap().to_owned();
    let response = http()
        .post(format!("{}/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp", fake.api_base()))
        .query(&[("pageToken", token.as_str())])
        .bearer_auth(&tokens.access_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let page2: Value = response.json().await.unwrap();

    let first = parsed_points(&page1);
    assert_eq!(first.len(), 5);
    let mut sorted = first.clone();
    sorted.sort();
    assert_ne!(first, sorted, "points come out of order");
    assert!(page2.get("nextPageToken").is_none());
    let mut all = [first, parsed_points(&page2)].concat();
    all.sort();
    let expected = [
        ("2026-03-01", 10),
        ("2026-03-02", 0),
        ("2026-03-03", 0),
        ("2026-03-04", 44),
        ("2026-03-06", 66),
        ("2026-03-07", 1007),
        ("2026-03-08", 1008),
        ("2026-03-09", 1009),
    ];
    assert_eq!(all, expected.map(|(d, s)| (d.to_owned(), s)).to_vec());
    let forms: Vec<&Value> =
        [&page1, &page2].iter().flat_map(|p| p["rollupDataPoints"].as_array().unwrap()).map(|p| &p["steps"]).collect();
    assert!(forms.iter().any(|s| s["countSum"].is_string()));
    assert!(forms.iter().any(|s| s["countSum"].is_number()));
    assert!(forms.iter().any(|s| s["countSum"] == "0"));
    assert!(forms.iter().any(|s| s.as_object().unwrap().is_empty()));
}

#[tokio::test]
async fn roll_up_over_days_without_data_answers_an_empty_object() {
    let fake = FakeGoogleHealth::start().await;
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);

    let (status, body, _) = roll_up(&fake, &tokens.access_token, &range((2026, 3, 1), (2026, 3, 10))).await;

    assert_eq!((status, body), (200, json!({})));
}

#[tokio::test]
async fn a_page_token_from_another_range_or_made_up_is_refused() {
    let fake = FakeGoogleHealth::start().await;
    for day in 1..=7 {
        fake.set_steps(PERSON, Date::constant(2026, 3, day), 100);
    }
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
    let (_, page1, _) = roll_up(&fake, &tokens.access_token, &range((2026, 3, 1), (2026, 3, 8))).await;

    for token in [page1["nextPageToken"].clone(), json!("garbage!")] {
        let mut other = range((2026, 3, 1), (2026, 3, 9));
        other["pageToken"] = token;
        let (status, body, _) = roll_up(&fake, &tokens.access_token, &other).await;
        assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
    }
}

// --- faults and counters ---

#[tokio::test]
async fn scripted_rate_limits_and_server_errors_hit_the_api_then_it_recovers() {
    let fake = FakeGoogleHealth::start().await;
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
    fake.fail_next(FaultTarget::Api, Fault::RateLimited { retry_after: Some(7) }, 1);
    fake.fail_next(FaultTarget::Api, Fault::RateLimited { retry_after: None }, 1);
    fake.fail_next(FaultTarget::Api, Fault::ServerError, 1);
    let body = range((2026, 3, 1), (2026, 3, 2));

    let (status, answer, headers) = roll_up(&fake, &tokens.access_token, &body).await;
    assert_eq!((status, answer), (429, fixture_json("error_429.json")));
    assert_eq!(headers[header::RETRY_AFTER], "7");
    let (status, _, headers) = roll_up(&fake, &tokens.access_token, &body).await;
    assert_eq!(status, 429);
    assert!(headers.get(header::RETRY_AFTER).is_none());
    let (status, answer) = get_identity(&fake, &tokens.access_token).await;
    assert_eq!((status, answer["error"]["status"].as_str()), (500, Some("INTERNAL")));

    assert_eq!(roll_up(&fake, &tokens.access_token, &body).await.0, 200);
    assert_eq!((fake.calls("rollup"), fake.calls("identity")), (3, 1));
}

#[tokio::test]
async fn token_faults_leave_the_api_alone_and_a_slow_answer_still_arrives() {
    let fake = FakeGoogleHealth::start().await;
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
    fake.fail_next(FaultTarget::Token, Fault::ServerError, 2);
    fake.fail_next(FaultTarget::Token, Fault::Slow(Duration::from_millis(200)), 1);

    assert_eq!(get_identity(&fake, &tokens.access_token).await.0, 200);
    assert_eq!(refresh(&fake, &tokens.refresh_token).await.0, 500);
    assert_eq!(refresh(&fake, &tokens.refresh_token).await.0, 500);
    let started = Instant::now();
    assert_eq!(refresh(&fake, &tokens.refresh_token).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(fake.calls("token_refresh"), 3);
    assert_eq!(fake.calls("token_code"), 0);
}
