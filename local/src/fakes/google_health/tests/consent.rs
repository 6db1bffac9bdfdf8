//! The consent page and the browserless consent helpers.

use super::*;

#[test]
fn the_handle_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<FakeGoogleHealth>();
    shareable::<Notification>();
}

#[test]
fn dates_can_be_given_as_strings_slices_or_dates() {
    let from_slice = Notification::upsert(PERSON, &["2026-11-24", "2026-11-25"][..]);
    let from_dates = Notification::upsert(PERSON, vec![Date::constant(2026, 11, 24), Date::constant(2026, 11, 25)]);

    assert_eq!(from_slice.dates, from_dates.dates);
}

#[tokio::test]
async fn the_consent_page_offers_approve_and_deny_with_every_requested_scope_ticked() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person(PERSON, None);
    let url = format!("{}&login_hint={PERSON}", authorize_url(&fake, &pkce().1, &[ACTIVITY_SCOPE, SETTINGS_SCOPE]));

    let response = http().get(&url).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="approve""#) && html.contains(r#"id="deny""#), "{html}");
    assert!(html.contains(&format!(r#"name="granted_scope" value="{ACTIVITY_SCOPE}" checked"#)), "{html}");
    assert!(html.contains(&format!(r#"name="granted_scope" value="{SETTINGS_SCOPE}" checked"#)), "{html}");
    assert!(html.contains(r#"<input type="hidden" name="state" value="st-42">"#), "{html}");
    assert_eq!(fake.calls("authorize"), 1);
}

#[tokio::test]
async fn without_a_login_hint_the_consent_page_lists_the_people_to_sign_in_as() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person("alice-1", None);
    fake.add_person("bob-2", Some("228S74"));

    let html =
        http().get(authorize_url(&fake, &pkce().1, &[ACTIVITY_SCOPE])).send().await.unwrap().text().await.unwrap();

    assert!(html.contains(r#"id="account-0" data-health-user-id="alice-1""#), "{html}");
    assert!(html.contains(r#"id="account-1" data-health-user-id="bob-2""#), "{html}");
    assert!(html.contains("login_hint=bob-2"), "{html}");
}

#[tokio::test]
async fn the_consent_page_refuses_an_unknown_client_a_token_response_type_and_a_plain_challenge() {
    let fake = FakeGoogleHealth::start().await;
    let good = authorize_url(&fake, &pkce().1, &[ACTIVITY_SCOPE]);
    let bad_urls = [
        good.replace("client_id=fake-client-id", "client_id=someone-else"),
        good.replace("response_type=code", "response_type=token"),
        good.replace("code_challenge_method=S256", "code_challenge_method=plain"),
        good.replace("code_challenge_method=S256", ""),
    ];
    for url in bad_urls {
        let response = http().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{url}");
        assert!(response.text().await.unwrap().contains(r#"id="error""#));
    }
}

#[tokio::test]
async fn approving_the_form_redirects_with_a_code_the_state_and_only_the_ticked_scopes() {
    let fake = FakeGoogleHealth::start().await;
    fake.add_person(PERSON, None);
    let (verifier, challenge) = pkce();
    let scope = format!("{ACTIVITY_SCOPE} {SETTINGS_SCOPE}");
    // What a browser posts with the settings box unticked.
    let form = [
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", scope.as_str()),
        ("access_type", "offline"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "st-42"),
        ("login_hint", PERSON),
        ("granted_scope", ACTIVITY_SCOPE),
        ("decision", "approve"),
    ];

    let response = http().post(format!("{}/o/oauth2/consent", fake.base_url())).form(&form).send().await.unwrap();

    assert_eq!(response.status(), 302);
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-42"));
    let (status, token) = exchange(&fake, &query_param(&location, "code").unwrap(), &verifier).await;
    assert_eq!(status, 200);
    assert_eq!(token["scope"], ACTIVITY_SCOPE);
}

#[tokio::test]
async fn denying_the_form_redirects_with_access_denied_and_the_state() {
    let fake = FakeGoogleHealth::start().await;
    let challenge = pkce().1;
    let form = [
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", ACTIVITY_SCOPE),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "st-42"),
        ("decision", "deny"),
    ];

    let response = http().post(format!("{}/o/oauth2/consent", fake.base_url())).form(&form).send().await.unwrap();

    assert_eq!(response.status(), 302);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert_eq!(location, format!("{REDIRECT}?error=access_denied&state=st-42&iss=https%3A%2F%2Faccounts.google.com"));
    assert_eq!(fake.deny(&authorize_url(&fake, &challenge, &[ACTIVITY_SCOPE])), location);
}
