//! The Lambda handlers, called the way the runtime calls them, fed the samples in `events/`.

use functions::app::App;
use functions::sync_worker::{WorkerError, WorkerResult, handle};
use stepsync::domain::{Connection, ConnectionStatus, Provider, UserId};
use stepsync::ports::ConnectionStore;
use stepsync_local::harness::{self, Backend, TestEnv};

fn sample(name: &str) -> serde_json::Value {
    let path = stepsync_local::workspace_root().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn app(env: &TestEnv) -> App {
    harness::app(env, vec![])
}

#[tokio::test]
async fn the_sync_requested_sample_syncs_its_connection() {
    let env = TestEnv::new(Backend::Dynoxide).await;
    let app = app(&env);
    let event = sample("sync_requested.json");
    let user = UserId::parse(event["detail"]["user"].as_str().unwrap()).unwrap();
    env.store.create_connection(&Connection::new(user.clone(), Provider::Fitbit, env.now())).await.unwrap();

    let result = handle(&app, event).await.unwrap();
    assert_eq!(result, WorkerResult::Failed { code: stepsync::domain::FailureCode::LegacyRetired });
    let stored = env.store.get_connection(&user, Provider::Fitbit).await.unwrap().unwrap();
    assert_eq!(stored.status, ConnectionStatus::ReconnectRequired);
}

#[tokio::test]
async fn an_unknown_event_is_a_typed_error_not_a_panic() {
    let env = TestEnv::new(Backend::Dynoxide).await;
    let app = app(&env);
    let err = handle(&app, serde_json::json!({"detail-type": "Nope", "detail": {}})).await.unwrap_err();
    assert!(matches!(err, WorkerError::BadEvent(_)));
    let mut event = sample("sync_requested.json");
    event["detail"]["user"] = serde_json::json!("bad#id");
    assert!(matches!(handle(&app, event).await.unwrap_err(), WorkerError::BadEvent(_)));
}

/// Deployed, secrets come from SSM SecureString parameters (moto's SSM here), fetched in one
/// call and never from plain environment values.
#[tokio::test]
async fn secrets_are_read_from_ssm_parameters() {
    let moto = stepsync_local::moto::MotoServer::shared().expect("moto starts (make test installs it)");
    let sdk = stepsync::aws::local_sdk_config(moto.endpoint());
    let prefix = format!("/{}", harness::unique("stepsync"));
    // Given: the parameters exist (PutParameter in moto's JSON protocol; moto reads the region
    // from the credential scope and checks no signature).
    let http = reqwest::Client::new();
    for (name, value) in [("token-key", harness::TEST_TOKEN_KEY), ("google-secret", "g-secret"), ("hook", "h-secret")] {
        let put = http
            .post(format!("{}/", moto.endpoint()))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "AmazonSSM.PutParameter")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/ssm/aws4_request")
            .body(
                serde_json::json!({"Name": format!("{prefix}/{name}"), "Value": value, "Type": "SecureString"})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "PutParameter: {}", put.status());
    }
    let mut vars: std::collections::HashMap<String, String> = [
        ("STEPSYNC_TOKEN_KEY_PARAMETER", format!("{prefix}/token-key")),
        ("STEPSYNC_GOOGLE_CLIENT_SECRET_PARAMETER", format!("{prefix}/google-secret")),
        ("STEPSYNC_GOOGLE_WEBHOOK_SECRET_PARAMETER", format!("{prefix}/hook")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // The public webhook loads only its endpoint secret: the token key stays in SSM.
    let mut webhook_vars = vars.clone();
    let webhook_secrets = stepsync::config::Loads::VERIFIERS.secret_settings();
    stepsync::aws::resolve_secret_parameters(&sdk, &webhook_secrets, &mut webhook_vars).await.unwrap();
    assert_eq!(webhook_vars["STEPSYNC_GOOGLE_WEBHOOK_SECRET"], "h-secret");
    assert!(!webhook_vars.contains_key("STEPSYNC_TOKEN_KEY"));
    assert!(!webhook_vars.contains_key("STEPSYNC_GOOGLE_CLIENT_SECRET"));

    // Challenges and the sweep load no secret: no call at all, even to an SSM that is not there.
    let nowhere = stepsync::aws::local_sdk_config("http://127.0.0.1:9");
    let mut untouched = vars.clone();
    let none = stepsync::config::Loads::STORE_ONLY.secret_settings();
    stepsync::aws::resolve_secret_parameters(&nowhere, &none, &mut untouched).await.unwrap();
    assert_eq!(untouched, vars);
    let unreachable = stepsync::aws::resolve_secret_parameters(&nowhere, &webhook_secrets, &mut untouched).await;
    assert!(matches!(unreachable, Err(stepsync::aws::SecretsError::Ssm(_))), "{unreachable:?}");

    let everything = stepsync::config::Loads::EVERYTHING.secret_settings();
    stepsync::aws::resolve_secret_parameters(&sdk, &everything, &mut vars).await.unwrap();
    assert_eq!(vars["STEPSYNC_TOKEN_KEY"], harness::TEST_TOKEN_KEY);
    assert_eq!(vars["STEPSYNC_GOOGLE_CLIENT_SECRET"], "g-secret");
    assert_eq!(vars["STEPSYNC_GOOGLE_WEBHOOK_SECRET"], "h-secret");
    assert!(!vars.contains_key("STEPSYNC_MISFIT_CLIENT_SECRET"));

    vars.insert("STEPSYNC_MISFIT_CLIENT_SECRET_PARAMETER".into(), format!("{prefix}/nope"));
    let err = stepsync::aws::resolve_secret_parameters(&sdk, &everything, &mut vars).await.unwrap_err();
    assert!(
        matches!(err, stepsync::aws::SecretsError::Missing(ref s) if s == "STEPSYNC_MISFIT_CLIENT_SECRET"),
        "{err}"
    );
}
