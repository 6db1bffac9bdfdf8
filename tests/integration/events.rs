//! The EventBridge publisher against moto: a bus, a rule with an SQS target, and the events
//! read back from the queue.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use stepsync::aws::{EventBridgePublisher, RequestCounter, local_sdk_config};
use stepsync::domain::{LocalDate, Provider, UserId};
use stepsync::events::{Event, StepsUpdated};
use stepsync::ports::EventPublisher;
use stepsync_local::harness::unique;
use stepsync_local::moto::MotoServer;

/// Breaks the `Detail` of two entries in the first PutEvents request, so moto answers with
/// two failed entries (`MalformedDetail`) the way EventBridge answers a partial failure.
#[derive(Debug, Default)]
struct BreakTwoEntriesOnce(AtomicBool);

impl Intercept for BreakTwoEntriesOnce {
    fn name(&self) -> &'static str {
        "BreakTwoEntriesOnce"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let is_put_events = request.headers().get("x-amz-target").is_some_and(|t| t.ends_with(".PutEvents"));
        if !is_put_events || self.0.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let mut body: serde_json::Value = serde_json::from_slice(request.body().bytes().ok_or("streaming body")?)?;
        for i in [1, 4] {
            body["Entries"][i]["Detail"] = serde_json::Value::String("{not json".into());
        }
        let bytes = serde_json::to_vec(&body)?;
        request.headers_mut().insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        Ok(())
    }
}

struct Bus {
    publisher: EventBridgePublisher,
    counter: RequestCounter,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

async fn bus_with_queue(break_first_call: bool) -> Bus {
    let moto = MotoServer::shared().expect("moto starts (make test installs it)");
    let sdk = local_sdk_config(moto.endpoint());
    let counter = RequestCounter::default();
    let mut config = aws_sdk_eventbridge::config::Builder::from(&sdk).interceptor(counter.clone());
    if break_first_call {
        config = config.interceptor(BreakTwoEntriesOnce::default());
    }
    let events = aws_sdk_eventbridge::Client::from_conf(config.build());
    let sqs = aws_sdk_sqs::Client::new(&sdk);

    let bus = unique("bus");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let queue_url = sqs.create_queue().queue_name(unique("queue")).send().await.unwrap().queue_url.unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .name("all-stepsync")
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["stepsync"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("all-stepsync")
        .event_bus_name(&bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap())
        .send()
        .await
        .unwrap();
    counter.reset();
    Bus { publisher: EventBridgePublisher::new(events, bus), counter, sqs, queue_url }
}

fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            Event::StepsUpdated(StepsUpdated {
                user: UserId::parse(&format!("user-{i}")).unwrap(),
                date: LocalDate::parse("2026-11-24").unwrap(),
                old_total: 0,
                new_total: 100 + i as u32,
                version: 1,
                source: Provider::GoogleHealth,
            })
        })
        .collect()
}

/// Reads the queue until `expected` messages came or 15 s passed.
async fn read_back(bus: &Bus, expected: usize) -> Vec<Event> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.len() < expected && Instant::now() < deadline {
        let out = bus
            .sqs
            .receive_message()
            .queue_url(&bus.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in out.messages.unwrap_or_default() {
            let body = message.body.unwrap();
            got.push(serde_json::from_str::<Event>(&body).unwrap_or_else(|e| panic!("{e}: {body}")));
        }
    }
    got
}

fn totals(events: &[Event]) -> BTreeSet<u32> {
    events
        .iter()
        .map(|e| match e {
            Event::StepsUpdated(s) => s.new_total,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn twenty_three_events_go_out_in_three_put_events_calls() {
    let bus = bus_with_queue(false).await;
    let sent = events(23);
    bus.publisher.publish(&sent).await.unwrap();
    assert_eq!(bus.counter.count("PutEvents"), 3);
    let received = read_back(&bus, 23).await;
    assert_eq!(received.len(), 23);
    assert_eq!(totals(&received), totals(&sent));
}

#[tokio::test]
async fn the_failed_entries_of_a_partly_failed_batch_are_retried_alone() {
    let bus = bus_with_queue(true).await;
    let sent = events(23);
    bus.publisher.publish(&sent).await.unwrap();
    assert_eq!(bus.counter.count("PutEvents"), 4, "three batches and one retry of the two failed entries");
    let received = read_back(&bus, 23).await;
    assert_eq!(received.len(), 23, "each event exactly once");
    assert_eq!(totals(&received), totals(&sent));
}

/// docs/EVENTS.md: every JSON example parses as the code's event, and the code writes back
/// exactly the example's `detail` (no field the doc lacks, none it has that the code drops).
#[test]
fn every_documented_event_is_what_the_code_reads_and_writes() {
    let doc = std::fs::read_to_string(stepsync_local::workspace_root().join("docs/EVENTS.md")).unwrap();
    let examples: Vec<&str> = doc.split("```json").skip(1).filter_map(|rest| rest.split("```").next()).collect();
    let mut kinds = BTreeSet::new();
    for example in examples {
        let envelope: serde_json::Value = serde_json::from_str(example).unwrap_or_else(|e| panic!("{e}: {example}"));
        if envelope.get("detail").is_none() {
            continue; // a rule pattern, not an event
        }
        let event: Event = serde_json::from_value(envelope.clone()).unwrap_or_else(|e| panic!("{e}: {example}"));
        let written: serde_json::Value = serde_json::from_str(&event.detail_json()).unwrap();
        assert_eq!(written, envelope["detail"], "{}", event.detail_type());
        assert_eq!(envelope["detail-type"], event.detail_type());
        kinds.insert(event.detail_type());
    }
    assert_eq!(
        kinds,
        BTreeSet::from(["ConnectionStatusChanged", "DigestDue", "ReminderDue", "StepsUpdated"]),
        "every public event is documented"
    );
}
