//! The keyset, webhook signatures, notifications and the verification handshake.

use super::*;

#[tokio::test]
async fn the_served_keyset_has_the_fixtures_tink_layout() {
    let fake = FakeGoogleHealth::start().await;

    let keyset = served_keyset(&fake).await;

    let fixture = fixture_json("webhook_keyset.json");
    assert_eq!(sorted_keys(&keyset), sorted_keys(&fixture));
    assert_eq!(sorted_keys(&keyset["key"][0]), sorted_keys(&fixture["key"][0]));
    assert_eq!(keyset["primaryKeyId"], fake.primary_key_id());
    let ours = STANDARD.decode(keyset["key"][0]["keyData"]["value"].as_str().unwrap()).unwrap();
    let theirs = STANDARD.decode(fixture["key"][0]["keyData"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours[..13], theirs[..13], "version, params and the x header");
    assert_eq!(ours[45..48], theirs[45..48], "the y header");
    assert_eq!(keys_of(&keyset).len(), 1);
    assert_eq!(fake.calls("keyset"), 1);
}

#[tokio::test]
async fn a_keyset_fault_fails_one_fetch_and_the_next_fetch_serves_the_keys() {
    let fake = FakeGoogleHealth::start().await;
    fake.fail_next(FaultTarget::Keyset, Fault::ServerError, 1);

    let failed = http().get(fake.keyset_url()).send().await.unwrap();

    assert_eq!(failed.status(), 500);
    assert_eq!(served_keyset(&fake).await["primaryKeyId"], fake.primary_key_id());
    assert_eq!(fake.calls("keyset"), 2);
}

#[test]
fn the_fixture_signatures_verify_with_this_reading_of_tink_keysets() {
    let keys = keys_of(&fixture_json("webhook_keyset.json"));
    let signature = String::from_utf8(fixture("notification_array.signature")).unwrap();

    assert!(verifies(&keys, &fixture("notification_array.json"), &signature));
    assert!(!verifies(&keys, &fixture("notification_array_tampered.json"), &signature));
    let delete_signature = String::from_utf8(fixture("notification_object_delete.signature")).unwrap();
    assert!(verifies(&keys, &fixture("notification_object_delete.json"), &delete_signature));
}

#[test]
fn notification_bodies_match_the_fixtures_byte_for_byte() {
    let upsert = Notification::upsert(PERSON, ["2026-11-24"]).subscription_name("8d0c3f7e-2b1a-4c55-9e61-3f0f4a2b9c10");
    let delete = Notification::delete(PERSON, ["2026-11-23"])
        .single_object()
        .whole_day()
        .physical_only()
        .subscription_name("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b");

    assert_eq!(
        String::from_utf8(upsert.body()).unwrap(),
        String::from_utf8(fixture("notification_array.json")).unwrap()
    );
    assert_eq!(
        String::from_utf8(delete.body()).unwrap(),
        String::from_utf8(fixture("notification_object_delete.json")).unwrap()
    );
}

#[tokio::test]
async fn a_signed_notification_verifies_against_the_keyset_the_fake_serves() {
    let fake = FakeGoogleHealth::start().await;
    let subscriber = receiver(|_, _| 204).await;
    let notice = Notification::upsert(PERSON, ["2026-11-24", "2026-11-25"]).authorization("webhook-secret");

    let delivery = fake.notify(&subscriber.url, notice).await;

    assert!(delivery.delivered());
    assert_eq!((delivery.attempts, delivery.statuses.clone()), (1, vec![Attempt::Status(204)]));
    let received = &subscriber.requests()[0];
    assert_eq!(received.body, delivery.body);
    assert_eq!(received.headers[header::AUTHORIZATION], "webhook-secret");
    assert_eq!(received.headers[header::CONTENT_TYPE], "application/json");
    let signature = received.headers["x-healthapi-signature"].to_str().unwrap();
    let keys = keys_of(&served_keyset(&fake).await);
    assert!(verifies(&keys, &received.body, signature));
    assert!(!verifies(&keys, &[&received.body[..], b" "].concat(), signature));
    let body: Value = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(body[0]["data"]["intervals"].as_array().unwrap().len(), 2);
    assert_eq!(body[0]["data"]["healthUserId"], PERSON);
    assert_eq!(body[0]["data"]["intervals"][1]["civilDateTimeInterval"]["startDateTime"]["date"]["day"], 25);
}

#[tokio::test]
async fn after_a_rotation_the_new_key_signs_and_a_stale_keyset_lacks_it_until_published() {
    let fake = FakeGoogleHealth::start().await;
    let old = fake.primary_key_id();
    let new = fake.rotate_key();
    fake.set_publish_newest_key(false);
    let body = br#"{"data":{}}"#;
    let signature = fake.sign(body);

    let stale = served_keyset(&fake).await;
    assert_eq!(stale["primaryKeyId"], old);
    assert!(!verifies(&keys_of(&stale), body, &signature));

    fake.set_publish_newest_key(true);
    let fresh = served_keyset(&fake).await;
    assert_eq!(fresh["primaryKeyId"], new);
    assert_eq!(keys_of(&fresh).len(), 2);
    assert!(verifies(&keys_of(&fresh), body, &signature));

    fake.drop_old_keys();
    assert_eq!(fake.key_ids(), vec![new]);
    assert!(fake.verifying_key(old).is_none());
}

#[tokio::test]
async fn a_notification_is_retried_with_backoff_until_the_subscriber_answers_204() {
    let fake = FakeGoogleHealth::start().await;
    let subscriber = receiver(|i, _| {
        if i == 0 {
            500
        } else if i == 1 {
            200
        } else {
            204
        }
    })
    .await;
    let started = Instant::now();

    let delivery = fake.notify(&subscriber.url, Notification::upsert(PERSON, ["2026-11-24"])).await;

    assert_eq!(delivery.statuses, vec![Attempt::Status(500), Attempt::Status(200), Attempt::Status(204)]);
    assert_eq!(delivery.attempts, 3);
    assert!(started.elapsed() >= Duration::from_millis(150), "50 ms then 100 ms");
    let requests = subscriber.requests();
    assert!(requests.iter().all(|r| r.body == delivery.body), "every retry is the same body");
}

#[tokio::test]
async fn a_notification_gives_up_after_max_attempts_reporting_connection_errors() {
    let fake = FakeGoogleHealth::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/webhook", listener.local_addr().unwrap())
    };

    let delivery = fake.notify(&closed, Notification::upsert(PERSON, ["2026-11-24"]).max_attempts(2)).await;

    assert_eq!(delivery.attempts, 2);
    assert!(delivery.statuses.iter().all(|a| matches!(a, Attempt::Failed(_))));
    assert!(!delivery.delivered());
}

#[tokio::test]
async fn a_single_object_notification_can_use_the_other_header_name_in_any_case() {
    let fake = FakeGoogleHealth::start().await;
    let subscriber = receiver(|_, _| 204).await;
    let notice =
        Notification::delete(PERSON, ["2026-11-23"]).single_object().header_name("Google-Health-Api-Signature");

    let delivery = fake.notify(&subscriber.url, notice).await;

    let received = &subscriber.requests()[0];
    assert!(received.headers.get("x-healthapi-signature").is_none());
    assert_eq!(received.headers["google-health-api-signature"], delivery.signature.as_str());
    assert!(received.headers.get(header::AUTHORIZATION).is_none());
    let body: Value = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(body["data"]["operation"], "DELETE");
}

#[tokio::test]
async fn many_notifications_go_in_one_array_body() {
    let fake = FakeGoogleHealth::start().await;
    let subscriber = receiver(|_, _| 204).await;
    let notices =
        [Notification::upsert("a-1", ["2026-11-24"]), Notification::upsert("b-2", ["2026-11-23", "2026-11-24"])];

    let delivery = fake.notify_many(&subscriber.url, &notices).await;

    let body: Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(body[1]["data"]["healthUserId"], "b-2");
    assert!(verifies(&keys_of(&fake.keyset_json()), &subscriber.requests()[0].body, &delivery.signature));
}

#[tokio::test]
async fn a_raw_notification_is_sent_once_with_exactly_the_given_headers() {
    let fake = FakeGoogleHealth::start().await;
    let subscriber = receiver(|_, _| 401).await;
    let body = b"[{\"data\":{}}]".to_vec();
    let signature = fake.sign(&body);

    let attempt = fake.notify_raw(&subscriber.url, body.clone(), &[("X-HEALTHAPI-SIGNATURE", &signature)]).await;

    assert_eq!(attempt, Attempt::Status(401));
    let requests = subscriber.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body, body);
    assert_eq!(requests[0].headers["x-healthapi-signature"], signature.as_str());
}

#[tokio::test]
async fn verification_posts_the_handshake_with_and_without_the_secret() {
    let fake = FakeGoogleHealth::start().await;
    let subscriber =
        receiver(
            |_, headers| {
                if headers.get(header::AUTHORIZATION).is_some_and(|v| v == "s3cret") { 201 } else { 401 }
            },
        )
        .await;

    let statuses = fake.verify_endpoint(&subscriber.url, "s3cret").await;

    assert_eq!(statuses, (201, 401));
    let requests = subscriber.requests();
    assert_eq!(requests[0].body, fixture("verification.json").trim_ascii_end());
    assert_eq!(requests[1].body, VERIFICATION_BODY.as_bytes());
    assert!(requests[1].headers.get(header::AUTHORIZATION).is_none());
}
