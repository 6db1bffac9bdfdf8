//! The token and revoke endpoints: code exchange, refresh, revocation and expiry.

use super::*;

#[tokio::test]
async fn a_code_exchanged_with_the_right_verifier_answers_like_the_fixture_and_identifies_the_person() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person(PERSON, Some("228S74"));

    let token = connect(&fake, PERSON, Some(&[ACTIVITY_SCOPE])).await;

    assert_eq!(sorted_keys(&token), sorted_keys(&fixture_json("token_code_exchange.json")));
    assert_eq!(token["expires_in"], 3599);
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], ACTIVITY_SCOPE);
    let (status, identity) = get_identity(&fake, token["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(identity, fixture_json("identity.json"));
    assert_eq!(fake.calls("token_code"), 1);
    assert_eq!(fake.calls("identity"), 1);
}

#[tokio::test]
async fn a_person_without_a_fitbit_past_has_an_empty_legacy_user_id() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person("pixel-only-7", None);
    let tokens = fake.grant_tokens("pixel-only-7", &[ACTIVITY_SCOPE]);

    let (_, identity) = get_identity(&fake, &tokens.access_token).await;

    assert_eq!(identity, json!({ "name": "users/me/identity", "healthUserId": "pixel-only-7", "legacyUserId": "" }));
}

#[tokio::test]
async fn a_wrong_verifier_is_refused_with_invalid_grant_and_the_code_still_works_after() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person(PERSON, None);
    let (verifier, challenge) = pkce();
    let location = fake.approve(&authorize_url(&fake, &challenge, &[ACTIVITY_SCOPE]), PERSON);
    let code = query_param(&location, "code").unwrap();

    let (status, body) = exchange(&fake, &code, &pkce().0).await;

    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(sorted_keys(&body), sorted_keys(&fixture_json("token_invalid_grant.json")));
    assert_eq!(exchange(&fake, &code, &verifier).await.0, 200);
}

#[tokio::test]
async fn a_code_cannot_be_exchanged_twice() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person(PERSON, None);
    let (verifier, challenge) = pkce();
    let location = fake.approve(&authorize_url(&fake, &challenge, &[ACTIVITY_SCOPE]), PERSON);
    let code = query_param(&location, "code").unwrap();
    assert_eq!(exchange(&fake, &code, &verifier).await.0, 200);

    let (status, body) = exchange(&fake, &code, &verifier).await;

    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn an_expired_code_or_another_redirect_uri_is_refused_with_invalid_grant() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person(PERSON, None);
    let (verifier, challenge) = pkce();
    let url = authorize_url(&fake, &challenge, &[ACTIVITY_SCOPE]);
    let code = query_param(&fake.approve(&url, PERSON), "code").unwrap();
    let (status, body) = post_token(
        &fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("redirect_uri", "http://127.0.0.1:9/oauth/callback/"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    fake.set_code_lifetime(Duration::ZERO);
    let (status, body) = exchange(&fake, &code, &verifier).await;

    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(body["error_description"], "The authorization code has expired.");
}

#[tokio::test]
async fn an_unknown_client_or_a_wrong_secret_gets_401_invalid_client() {
    let fake = FakeGoogleHealth::start().await;
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
    let attempts = [("someone-else", DEFAULT_CLIENT_SECRET), (DEFAULT_CLIENT_ID, "wrong-secret")];
    for (client_id, secret) in attempts {
        let (status, body) = post_token(
            &fake,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &tokens.refresh_token),
                ("client_id", client_id),
                ("client_secret", secret),
            ],
        )
        .await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{client_id}");
    }
    // HTTP Basic client authentication works as well as the form fields.
    let response = http()
        .post(fake.token_url())
        .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", tokens.refresh_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_refresh_gives_a_new_access_token_and_no_refresh_token_so_the_old_one_keeps_working() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person(PERSON, None);
    let token = connect(&fake, PERSON, None).await;
    let refresh_token = token["refresh_token"].as_str().unwrap();

    let (status, first_refresh) = refresh(&fake, refresh_token).await;
    let (_, second_refresh) = refresh(&fake, refresh_token).await;

    assert_eq!(status, 200);
    assert_eq!(sorted_keys(&first_refresh), sorted_keys(&fixture_json("token_refresh.json")));
    assert_eq!(first_refresh["scope"], format!("{ACTIVITY_SCOPE} {SETTINGS_SCOPE}"));
    assert_ne!(first_refresh["access_token"], token["access_token"]);
    assert_ne!(second_refresh["access_token"], first_refresh["access_token"]);
    assert_eq!(get_identity(&fake, second_refresh["access_token"].as_str().unwrap()).await.0, 200);
    assert_eq!(fake.calls("token_refresh"), 2);
}

#[tokio::test]
async fn a_revoked_grant_refuses_refresh_with_invalid_grant_and_its_access_tokens_with_401() {
    let fake = FakeGoogleHealth::start().await;
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);

    fake.revoke_grant(PERSON);

    let (status, body) = refresh(&fake, &tokens.refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body) = get_identity(&fake, &tokens.access_token).await;
    assert_eq!(status, 401);
    assert_eq!(body, fixture_json("error_401.json"));
}

#[tokio::test]
async fn the_revoke_endpoint_revokes_the_grant_behind_the_token_it_is_given() {
    let fake = FakeGoogleHealth::start().await;
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);
    let other = fake.grant_tokens("someone-else", &[ACTIVITY_SCOPE]);

    let response = http().post(fake.revoke_url()).form(&[("token", &tokens.refresh_token)]).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(get_identity(&fake, &tokens.access_token).await.0, 401);
    assert_eq!(refresh(&fake, &tokens.refresh_token).await.0, 400);
    assert_eq!(get_identity(&fake, &other.access_token).await.0, 200);
    let again = http().post(fake.revoke_url()).form(&[("token", &tokens.refresh_token)]).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(fake.calls("revoke"), 2);
}

#[tokio::test]
async fn an_expired_access_token_gets_401_until_refreshed() {
    let fake = FakeGoogleHealth::start().await;
    let tokens = fake.grant_tokens(PERSON, &[ACTIVITY_SCOPE]);

    fake.expire_access_tokens(PERSON);

    let (status, body) = get_identity(&fake, &tokens.access_token).await;
    assert_eq!((status, body), (401, fixture_json("error_401.json")));
    let (_, refreshed) = refresh(&fake, &tokens.refresh_token).await;
    assert_eq!(get_identity(&fake, refreshed["access_token"].as_str().unwrap()).await.0, 200);
    assert_eq!(get_identity(&fake, "ya29.never-issued").await.0, 401);
}

#[tokio::test]
async fn without_access_type_offline_the_code_exchange_has_no_refresh_token() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person(PERSON, None);
    let (verifier, challenge) = pkce();
    let url = authorize_url(&fake, &challenge, &[ACTIVITY_SCOPE]).replace("access_type=offline", "access_type=online");

    let code = query_param(&fake.approve(&url, PERSON), "code").unwrap();
    let (status, token) = exchange(&fake, &code, &verifier).await;

    assert_eq!(status, 200);
    assert!(token.get("refresh_token").is_none(), "{token}");
}
