//! Every committed day change becomes exactly one `StepsUpdated`, carrying the day's version.
//!
//! The events are not published by the write that commits the day: a function that dies right
//! after its commit (or a "Sync steps" past its deadline) would lose them, and the retry sees
//! the day unchanged. They come from the table's change stream instead (DynamoDB Streams,
//! `DayEventsFunction` in `template.yaml`; the local stack polls the same stream): one stream
//! record per committed write, in commit order per day, retried until published. A record
//! delivered twice publishes the same event twice; `(user, date, version)` identifies it, so
//! consumers drop the second and order by `version`.

use crate::domain::{Provider, resolved_source};
use crate::events::{Event, StepsUpdated};
pub use crate::ports::DayChange;
use crate::ports::EventPublisher;
use std::sync::Arc;

/// EventBridge takes at most 10 entries per call: a failed call names its first record.
const EVENTS_PER_CALL: usize = 10;

/// The event for one committed change: the source whose value the write changed (a write
/// changes one), else the platform whose installation it changed, else the day's resolved one.
pub fn steps_updated(change: &DayChange) -> Option<StepsUpdated> {
    let (old, new) = (change.old.as_ref(), &change.new);
    let before = |p: &Provider| old.and_then(|o| o.sources.get(p));
    let moved_source = Provider::ALL.into_iter().find(|p| before(p) != new.sources.get(p));
    let moved_install = new
        .installs
        .iter()
        .find(|(key, value)| old.and_then(|o| o.installs.get(*key)) != Some(*value))
        .map(|((platform, _), _)| *platform);
    let source = moved_source.or(moved_install).or_else(|| resolved_source(&new.sources, None))?;
    Some(StepsUpdated {
        user: new.user.clone(),
        date: new.date,
        old_total: old.map_or(0, |o| o.total.get()),
        new_total: new.total.get(),
        version: new.version,
        source,
    })
}

pub struct DayEvents {
    pub publisher: Arc<dyn EventPublisher>,
}

impl DayEvents {
    /// Publishes one `StepsUpdated` per change, in order. On a failure returns the id of the
    /// first change not known to be published: the stream hands it and every later record
    /// back (`ReportBatchItemFailures`), so nothing is lost; what was published twice carries
    /// its version.
    pub async fn publish(&self, changes: &[DayChange]) -> Result<usize, String> {
        let mut published = 0;
        for chunk in changes.chunks(EVENTS_PER_CALL) {
            let events: Vec<Event> = chunk.iter().filter_map(steps_updated).map(Event::StepsUpdated).collect();
            if events.is_empty() {
                continue;
            }
            if let Err(error) = self.publisher.publish(&events).await {
                tracing::error!(%error, first = %chunk[0].id, "day changes not published; the stream retries them");
                return Err(chunk[0].id.clone());
            }
            published += events.len();
        }
        Ok(published)
    }
}
