//! The Lambda handlers, called the way the runtime calls them, fed the samples in `events/`.

use functions::app::App;
use functions::sync_worker::{WorkerError, WorkerResult, handle};
use stepsync::domain::{Connection, ConnectionStatus, Provider, UserId};
use stepsync::ports::ConnectionStore;
use support::{Backend, TestEnv};

fn sample(name: &str) -> serde_json::Value {
    let path = stepsync_local::workspace_root().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn app(env: &TestEnv) -> App {
    support::app(env, vec![])
}

#[tokio::test]
async fn the_sync_requested_sample_syncs_its_connection() {
    let env = TestEnv::new(Backend::Dynoxide).await;
    let app = app(&env);
    let event = sample("sync_requested.json");
    let user = UserId::parse(event["detail"]["user"].as_str().unwrap()).unwrap();
    env.store.create_connection(&Connection::new(user.clone(), Provider::Fitbit, env.now())).await.unwrap();

    let result = handle(&app, event).await.unwrap();
    assert_eq!(result, WorkerResult::Failed { code: "legacy_retired".into() });
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
