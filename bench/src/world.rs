//! The population the sweep and the request counts run on: the integration tests' harness (a
//! table with a request counter, a recording publisher, a fixed clock) on the chosen store,
//! the real functions' `App` over it, fake Google Health, one open challenge, and people
//! connected through Google as the local demo seeds them.

use crate::args::Store;
use crate::error::BenchError;
use aws_sdk_dynamodb::types::AttributeValue;
use functions::app::App;
use futures::StreamExt;
use std::time::Instant;
use stepsync::domain::{ChallengeId, LocalDate, Provider, UserId, local_today};
use stepsync_local::demo::{google_tokens, store_connection};
use stepsync_local::fakes::google_health::FakeGoogleHealth;
use stepsync_local::harness::{self, Backend, TestEnv};
use stepsync_local::table::Stream;

type Item = std::collections::HashMap<String, AttributeValue>;

/// Seeding runs this many people at once.
const SEED_CONCURRENCY: usize = 16;

pub struct Person {
    pub user: UserId,
    /// The Google Health account id.
    pub account: String,
}

pub struct World {
    pub env: TestEnv,
    pub app: App,
    pub google: FakeGoogleHealth,
    pub challenge: ChallengeId,
    pub people: Vec<Person>,
}

impl World {
    /// A fresh table on `store`, with or without its change stream (a sweep reads none:
    /// `stepsync_local::table::Stream::Off` says why it goes faster without).
    pub async fn start(store: Store, stream: Stream) -> Result<Self, BenchError> {
        let backend = match store {
            Store::Dynoxide => Backend::Dynoxide,
            Store::Moto => {
                // The harness would panic without moto; say what to do instead.
                stepsync_local::moto::MotoServer::shared().map_err(|e| BenchError::setup("moto", e))?;
                Backend::Moto
            }
        };
        let env = TestEnv::new_with(backend, stream).await;
        let google =
            FakeGoogleHealth::start_on_port(0).await.map_err(|e| BenchError::setup("fake Google Health", e))?;
        let app = harness::app(&env, harness::google_vars(&google));
        let challenge = env.challenge("2026-11-01", "2026-12-31").await;
        Ok(Self { env, app, google, challenge, people: Vec::new() })
    }

    /// The people's local "today" (UTC) at the harness's fixed clock.
    pub fn today(&self) -> LocalDate {
        local_today(self.env.now(), &jiff::tz::TimeZone::UTC)
    }

    /// Adds `count` people named `{prefix}-{i}`: each a Google Health account in the fake with
    /// tokens good for a day, a connection due now, and a membership in the challenge.
    pub async fn add_people(&mut self, prefix: &str, count: usize, progress: &dyn Fn(&str)) -> Result<(), BenchError> {
        let start = Instant::now();
        let expires_at = self.env.now() + jiff::SignedDuration::from_hours(24);
        let names: Vec<(UserId, String)> = (0..count)
            .map(|i| {
                let user = UserId::parse(&format!("{prefix}-{i:05}")).map_err(|e| BenchError::setup("people", e))?;
                Ok((user, format!("{prefix}-account-{i:05}")))
            })
            .collect::<Result<_, BenchError>>()?;
        let this = &*self;
        let mut seeded = futures::stream::iter(names)
            .map(|(user, account)| async move {
                let tokens = google_tokens(&this.google, &account, expires_at);
                store_connection(&this.app, &user, Provider::GoogleHealth, &account, Some(&tokens), None, "UTC")
                    .await
                    .map_err(|e| BenchError::setup("people", e))?;
                this.env
                    .challenges()
                    .join(&this.challenge, &user, this.env.now())
                    .await
                    .map_err(|e| BenchError::setup("people", e))?;
                Ok::<_, BenchError>(Person { user, account })
            })
            .buffer_unordered(SEED_CONCURRENCY);
        let mut people = Vec::with_capacity(count);
        while let Some(person) = seeded.next().await {
            people.push(person?);
            if people.len() % 1000 == 0 {
                progress(&format!("  seeded {}/{count} people ({:.0} s)", people.len(), start.elapsed().as_secs_f64()));
            }
        }
        drop(seeded);
        self.people.extend(people);
        Ok(())
    }
}

impl World {
    /// Everything stored for `person` (connection, profile, days) and their participant item,
    /// as the table holds them (for their sizes). The keys are the data model's
    /// (docs/DATA_MODEL.md).
    pub async fn person_items(&self, person: &Person) -> Result<Vec<Item>, BenchError> {
        let failed = |e: &dyn std::fmt::Display| BenchError::measurement("item sizes", e.to_string());
        let client = aws_sdk_dynamodb::Client::new(&stepsync::aws::local_sdk_config(&self.env.endpoint));
        let own = client
            .query()
            .table_name(&self.env.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{}", person.user)))
            .send()
            .await
            .map_err(|e| failed(&aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        let participant = client
            .get_item()
            .table_name(&self.env.table)
            .key("pk", AttributeValue::S(format!("CHAL#{}", self.challenge)))
            .key("sk", AttributeValue::S(format!("PART#{}", person.user)))
            .send()
            .await
            .map_err(|e| failed(&aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(own.items.unwrap_or_default().into_iter().chain(participant.item).collect())
    }
}
