//! The `challenges` API end to end: the real handler, fed `lambda_http` requests built from the
//! `events/challenges_*.json` samples, against local DynamoDB (dynoxide: the adapter's contract
//! on both implementations is `store` and `engine`'s).

use functions::app::App;
use jiff::tz::TimeZone;
use lambda_http::Body;
use serde_json::{Value, json};
use std::collections::HashMap;
use stepsync::config::Config;
use stepsync::domain::{DailyValue, Provider, UserId};
use stepsync_local::harness::{TestEnv, date, unique};
use stepsync_local::on_dynoxide;

on_dynoxide!(
    an_admin_creates_a_challenge_that_everyone_can_see,
    only_admins_create_and_bad_input_names_the_field,
    joining_counts_the_days_already_in_the_window,
    leaderboard_pages_chain_with_competition_ranks,
    a_challenge_takes_late_days_in_grace_then_freezes_when_final,
    a_token_reaches_only_its_own_user,
    requests_without_claims_are_refused_and_unknown_routes_are_not_found,
);

const TOKEN_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";
/// The challenge id the samples carry in their paths.
const SAMPLE_ID: &str = "Qm9yZWFsLVdhbGsx";
const SAMPLES: [&str; 9] = [
    "challenges_create.json",
    "challenges_list.json",
    "challenges_get.json",
    "challenges_join.json",
    "challenges_leave.json",
    "challenges_leaderboard.json",
    "challenges_sync_health.json",
    "challenges_export.json",
    "challenges_reminders.json",
];

/// Who the verified claims say is calling.
#[derive(Clone, Copy)]
pub(crate) enum As<'a> {
    User(&'a UserId),
    Admin(&'a UserId),
    Nobody,
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// The `challenges` handler over a test's table, and an administrator to call it as.
pub(crate) struct Api {
    pub(crate) env: TestEnv,
    pub(crate) app: App,
    pub(crate) admin: UserId,
}

impl Api {
    pub(crate) fn new(env: TestEnv) -> Self {
        Self::with_vars(env, &[])
    }

    /// With more settings (`STEPSYNC_NUDGES`, ...).
    pub(crate) fn with_vars(env: TestEnv, more: &[(&str, &str)]) -> Self {
        let vars: HashMap<String, String> = [("STEPSYNC_TABLE", env.table.as_str()), ("STEPSYNC_TOKEN_KEY", TOKEN_KEY)]
            .into_iter()
            .chain(more.iter().copied())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let config = Config::from_vars(&vars).unwrap();
        let app = App::from_parts(config, env.store.clone(), env.publisher.clone(), env.clock.clone()).unwrap();
        let admin = UserId::parse(&unique("admin")).unwrap();
        Self { env, app, admin }
    }

    pub(crate) fn person(name: &str) -> UserId {
        UserId::parse(&unique(name)).unwrap()
    }

    /// Sends `sample` as `who`, after `edit`, through the handler; the answer as it is.
    pub(crate) async fn answer(
        &self,
        sample: &str,
        who: As<'_>,
        edit: impl FnOnce(&mut Value),
    ) -> lambda_http::Response<Body> {
        let path = stepsync_local::workspace_root().join("events").join(sample);
        let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let context = event["requestContext"].as_object_mut().unwrap();
        match who {
            As::Nobody => {
                context.remove("authorizer");
            }
            As::User(user) | As::Admin(user) => {
                let claims = context["authorizer"]["jwt"]["claims"].as_object_mut().unwrap();
                claims.insert("sub".into(), user.as_str().into());
                claims.remove("admin");
                if matches!(who, As::Admin(_)) {
                    claims.insert("admin".into(), "true".into());
                }
            }
        }
        edit(&mut event);
        let req = lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event");
        functions::challenges::handle(&self.app, req).await
    }

    /// Sends `sample` as `who`, after `edit`, through the handler; the status and JSON body.
    pub(crate) async fn send(&self, sample: &str, who: As<'_>, edit: impl FnOnce(&mut Value)) -> Reply {
        let res = self.answer(sample, who, edit).await;
        let body = match res.body() {
            Body::Empty => Value::Null,
            Body::Text(text) => serde_json::from_str(text).expect("a JSON body"),
            other => panic!("unexpected body {other:?}"),
        };
        Reply { status: res.status().as_u16(), body }
    }

    async fn create(&self, who: As<'_>, body: Value) -> Reply {
        self.send("challenges_create.json", who, |e| e["body"] = body.to_string().into()).await
    }

    /// Creates a challenge as the admin and returns its id.
    pub(crate) async fn create_ok(&self, body: Value) -> String {
        let reply = self.create(As::Admin(&self.admin), body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    async fn list(&self, who: As<'_>) -> Reply {
        self.send("challenges_list.json", who, |_| {}).await
    }

    async fn details(&self, who: As<'_>, id: &str) -> Reply {
        self.send("challenges_get.json", who, at(id)).await
    }

    pub(crate) async fn join(&self, who: As<'_>, id: &str) -> Reply {
        self.send("challenges_join.json", who, at(id)).await
    }

    async fn leave(&self, who: As<'_>, id: &str) -> Reply {
        self.send("challenges_leave.json", who, at(id)).await
    }

    pub(crate) async fn leaderboard(&self, who: As<'_>, id: &str, query: &str) -> Reply {
        self.send("challenges_leaderboard.json", who, at_with_query(id, query)).await
    }

    /// Records `steps` for `user` on `day` from the phone, the way an upload does.
    pub(crate) async fn walk(&self, user: &UserId, day: &str, steps: i64) {
        let value = DailyValue { date: date(day), steps, observed_at: None };
        let report = self.env.engine.apply(user, Provider::AppleHealth, &TimeZone::UTC, &[value]).await.unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    }

    fn set_now(&self, rfc3339: &str) {
        self.env.clock.set(rfc3339.parse().unwrap());
    }
}

/// Points a sample's path at challenge `id`, with the raw `query` (`a=1&b=2`) as API Gateway
/// passes it on.
pub(crate) fn at_with_query<'a>(id: &'a str, query: &str) -> impl FnOnce(&mut Value) + 'a {
    let parameters: serde_json::Map<String, Value> = reqwest::Url::parse(&format!("https://x/?{query}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned().into()))
        .collect();
    let query = query.to_owned();
    move |e| {
        at(id)(e);
        e["rawQueryString"] = query.into();
        e["queryStringParameters"] = parameters.into();
    }
}

/// Points a sample's path at challenge `id`.
pub(crate) fn at(id: &str) -> impl FnOnce(&mut Value) + '_ {
    move |e| {
        let path = e["rawPath"].as_str().unwrap().replace(SAMPLE_ID, id);
        e["rawPath"] = path.clone().into();
        e["requestContext"]["http"]["path"] = path.into();
        e["pathParameters"]["id"] = id.into();
    }
}

/// Points a sample at another method and path.
fn route(method: &str, path: &str) -> impl FnOnce(&mut Value) {
    let (method, path) = (method.to_owned(), path.to_owned());
    move |e| {
        e["requestContext"]["http"]["method"] = method.into();
        e["requestContext"]["http"]["path"] = path.clone().into();
        e["rawPath"] = path.into();
    }
}

#[track_caller]
pub(crate) fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.body);
    assert!(reply.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", reply.body);
}

#[track_caller]
pub(crate) fn assert_invalid(reply: &Reply, field: &str) {
    assert_error(reply, 400, "invalid");
    assert_eq!(reply.body["error"]["field"], field, "{}", reply.body);
}

fn entry(user: &UserId, rank: u32, steps: u64) -> Value {
    json!({"user_id": user.as_str(), "rank": rank, "steps": steps})
}

async fn an_admin_creates_a_challenge_that_everyone_can_see(env: TestEnv) {
    let api = Api::new(env);
    let walker = Api::person("walker");

    let created = api
        .create(
            As::Admin(&api.admin),
            json!({"name": "  Winter walk ", "start_date": "2026-11-20", "end_date": "2026-12-20"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let winter = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(winter.len(), 16, "12 random bytes, base64url");
    assert_eq!(
        created.body,
        json!({"id": winter, "name": "Winter walk", "start_date": "2026-11-20", "end_date": "2026-12-20",
               "grace_days": 3, "time_zone": "UTC", "state": "active"})
    );
    // The sample as it is: a December challenge in Chicago time.
    let december = api.send("challenges_create.json", As::Admin(&api.admin), |_| {}).await;
    assert_eq!(december.status, 201, "{}", december.body);
    let december_id = december.body["id"].as_str().unwrap().to_owned();
    assert_ne!(december_id, winter);
    assert_eq!(december.body["state"], "upcoming");
    assert_eq!((&december.body["time_zone"], &december.body["grace_days"]), (&json!("America/Chicago"), &json!(3)));

    let list = api.list(As::User(&walker)).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(
        list.body,
        json!({"challenges": [
            {"id": winter, "name": "Winter walk", "start_date": "2026-11-20", "end_date": "2026-12-20", "state": "active"},
            {"id": december_id, "name": "December walk", "start_date": "2026-12-01", "end_date": "2026-12-31",
             "state": "upcoming"},
        ]})
    );

    let details = api.details(As::User(&walker), &winter).await;
    assert_eq!(details.status, 200, "{}", details.body);
    assert_eq!(
        details.body,
        json!({"id": winter, "name": "Winter walk", "start_date": "2026-11-20", "end_date": "2026-12-20",
               "grace_days": 3, "time_zone": "UTC", "state": "active",
               "ends_at": "2026-12-21T00:00:00Z", "closes_at": "2026-12-24T12:00:00Z", "joined": false})
    );
    // Ends at midnight in Chicago (standard time, -06:00) after the last day; closes three days
    // of grace after that day is over everywhere (midnight at UTC−12).
    let details = api.details(As::User(&walker), &december_id).await;
    assert_eq!(details.body["ends_at"], "2027-01-01T06:00:00Z");
    assert_eq!(details.body["closes_at"], "2027-01-04T12:00:00Z");

    // As the contract says: `null` is the same as leaving a setting out, and `2.0` is the
    // integer 2 (JSON Schema's integer, written as some encoders do).
    for (settings, grace_days) in [(json!({"grace_days": null, "time_zone": null}), 3), (json!({"grace_days": 2.0}), 2)]
    {
        let mut body = json!({"name": "Spring walk", "start_date": "2027-03-01", "end_date": "2027-03-31"});
        body.as_object_mut().unwrap().extend(settings.as_object().unwrap().clone());
        let created = api.create(As::Admin(&api.admin), body.clone()).await;
        assert_eq!(created.status, 201, "{body}: {}", created.body);
        assert_eq!(
            (&created.body["grace_days"], &created.body["time_zone"]),
            (&json!(grace_days), &json!("UTC")),
            "{body}"
        );
    }
}

async fn only_admins_create_and_bad_input_names_the_field(env: TestEnv) {
    let api = Api::new(env);
    let walker = Api::person("walker");
    let good = json!({"name": "Walk", "start_date": "2026-11-20", "end_date": "2026-12-20"});

    assert_error(&api.create(As::User(&walker), good.clone()).await, 403, "forbidden");
    let not_admin = api
        .send("challenges_create.json", As::User(&walker), |e| {
            e["requestContext"]["authorizer"]["jwt"]["claims"]["admin"] = "false".into();
        })
        .await;
    assert_error(&not_admin, 403, "forbidden");

    let admin = As::Admin(&api.admin);
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("start_date", json!("2026-13-01")), "start_date"),
        (with("end_date", json!("20261220")), "end_date"),
        (with("end_date", json!("2026-11-19")), "end_date"),
        (with("end_date", json!("2027-12-20")), "end_date"),
        (with("time_zone", json!("Mars/Olympus_Mons")), "time_zone"),
        (with("grace_days", json!(15)), "grace_days"),
        (with("name", json!("   ")), "name"),
    ];
    for (body, field) in cases {
        assert_invalid(&api.create(admin, body.clone()).await, field);
    }

    let no_body = api
        .send("challenges_create.json", admin, |e| {
            e.as_object_mut().unwrap().remove("body");
        })
        .await;
    assert_error(&no_body, 400, "bad_request");
    let malformed = api.send("challenges_create.json", admin, |e| e["body"] = "{\"name\": ".into()).await;
    assert_error(&malformed, 400, "bad_request");
    for body in [
        json!({"start_date": "2026-11-20", "end_date": "2026-12-20"}),
        with("grace_days", json!(-1)),
        with("grace_days", json!(2.5)),
        with("grace_days", json!("three")),
        json!(["Walk", "2026-11-20", "2026-12-20"]),
    ] {
        assert_error(&api.create(admin, body).await, 400, "bad_request");
    }

    // Nothing refused was stored.
    assert_eq!(api.list(As::User(&walker)).await.body, json!({"challenges": []}));
}

async fn joining_counts_the_days_already_in_the_window(env: TestEnv) {
    let api = Api::new(env);
    let walker = Api::person("walker");
    let me = As::User(&walker);
    let id = api.create_ok(json!({"name": "Winter walk", "start_date": "2026-11-20", "end_date": "2026-12-20"})).await;
    api.walk(&walker, "2026-11-19", 9_999).await; // the day before the window
    api.walk(&walker, "2026-11-20", 5_000).await;
    api.walk(&walker, "2026-11-21", 0).await;
    api.walk(&walker, "2026-11-24", 7_000).await;
    assert_eq!(api.details(me, &id).await.body["joined"], false);

    let joined = api.join(me, &id).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let expected = json!({"challenge_id": id, "user_id": walker.as_str(), "steps": 12_000, "days": 2});
    assert_eq!(joined.body, expected);
    assert_eq!(api.details(me, &id).await.body["joined"], true);
    let again = api.join(me, &id).await;
    assert_eq!((again.status, again.body), (200, expected), "joining twice changes nothing");

    api.walk(&walker, "2026-11-25", 3_000).await;
    let board = api.leaderboard(me, &id, "").await;
    assert_eq!(board.status, 200, "{}", board.body);
    assert_eq!(
        board.body,
        json!({"entries": [entry(&walker, 1, 15_000)], "me": entry(&walker, 1, 15_000), "next_page_token": null})
    );

    let left = api.leave(me, &id).await;
    assert_eq!((left.status, left.body), (204, Value::Null));
    assert_eq!(api.details(me, &id).await.body["joined"], false);
    assert_eq!(api.leaderboard(me, &id, "").await.body, json!({"entries": [], "me": null, "next_page_token": null}));
    assert_error(&api.leave(me, &id).await, 404, "not_found");

    // The days stayed: joining again counts them all.
    let rejoined = api.join(me, &id).await;
    assert_eq!(rejoined.body, json!({"challenge_id": id, "user_id": walker.as_str(), "steps": 15_000, "days": 3}));
}

async fn leaderboard_pages_chain_with_competition_ranks(env: TestEnv) {
    let api = Api::new(env);
    let id = api.create_ok(json!({"name": "Winter walk", "start_date": "2026-11-20", "end_date": "2026-12-20"})).await;
    // One shared prefix, so user ids sort by their letter.
    let base = unique("lb");
    let totals = [("a", 7_000), ("b", 9_000), ("c", 7_000), ("d", 7_000), ("e", 5_000), ("f", 5_000), ("g", 1_000)];
    let users: HashMap<&str, UserId> =
        totals.iter().map(|(name, _)| (*name, UserId::parse(&format!("{base}-{name}")).unwrap())).collect();
    for (i, (name, steps)) in totals.iter().enumerate() {
        let user = &users[name];
        // Half join before their day arrives, half after: both paths must count the same.
        if i % 2 == 0 {
            api.walk(user, "2026-11-22", *steps).await;
            assert_eq!(api.join(As::User(user), &id).await.status, 200);
        } else {
            assert_eq!(api.join(As::User(user), &id).await.status, 200);
            api.walk(user, "2026-11-22", *steps).await;
        }
    }
    // Competition ranks; a tie at 7,000 straddles the first page boundary.
    let ranked: Vec<Value> = [
        ("b", 1, 9_000),
        ("a", 2, 7_000),
        ("c", 2, 7_000),
        ("d", 2, 7_000),
        ("e", 5, 5_000),
        ("f", 5, 5_000),
        ("g", 7, 1_000),
    ]
    .iter()
    .map(|(name, rank, steps)| entry(&users[name], *rank, *steps))
    .collect();

    let outsider = Api::person("outsider");
    for (viewer, me) in [
        (&users["a"], entry(&users["a"], 2, 7_000)),
        (&users["f"], entry(&users["f"], 5, 5_000)),
        (&users["g"], entry(&users["g"], 7, 1_000)),
        (&outsider, Value::Null),
    ] {
        let mut pages: Vec<Vec<Value>> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let query = match &token {
                Some(t) => format!("limit=3&page_token={t}"),
                None => "limit=3".to_owned(),
            };
            let page = api.leaderboard(As::User(viewer), &id, &query).await;
            assert_eq!(page.status, 200, "{}", page.body);
            assert_eq!(page.body["me"], me, "the caller's own entry on page {}", pages.len() + 1);
            pages.push(page.body["entries"].as_array().unwrap().clone());
            match page.body["next_page_token"].as_str() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
            assert!(pages.len() < 3, "too many pages");
        }
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
        assert_eq!(pages.concat(), ranked);
    }

    let caller = As::User(&users["d"]);
    for query in ["", "limit=", "limit=200", "page_token="] {
        let all = api.leaderboard(caller, &id, query).await;
        assert_eq!(all.status, 200, "{query}: {}", all.body);
        assert_eq!(all.body, json!({"entries": ranked, "me": entry(&users["d"], 2, 7_000), "next_page_token": null}));
    }
    for query in ["limit=0", "limit=201", "limit=ten", "limit=-1", "limit=2.5"] {
        assert_invalid(&api.leaderboard(caller, &id, query).await, "limit");
    }
    for query in ["page_token=!!", "page_token=bm9wZQ", "limit=3&page_token=MTIzOmEjYg"] {
        assert_invalid(&api.leaderboard(caller, &id, query).await, "page_token");
    }
    assert_error(&api.leaderboard(caller, "no-such-challenge", "").await, 404, "not_found");
}

async fn a_challenge_takes_late_days_in_grace_then_freezes_when_final(env: TestEnv) {
    let api = Api::new(env);
    let (early, late, newcomer) = (Api::person("early"), Api::person("late"), Api::person("newcomer"));
    // Ended at midnight UTC before `NOW`; two days of grace.
    let short = api
        .create_ok(json!({"name": "Short walk", "start_date": "2026-11-20", "end_date": "2026-11-24", "grace_days": 2}))
        .await;
    let long = api.create_ok(json!({"name": "Long walk", "start_date": "2026-11-20", "end_date": "2026-11-30"})).await;
    api.walk(&early, "2026-11-22", 4_000).await;
    for id in [&short, &long] {
        assert_eq!(api.join(As::User(&early), id).await.status, 200);
    }

    let details = api.details(As::User(&early), &short).await;
    assert_eq!(details.body["state"], "grace");
    assert_eq!(details.body["closes_at"], "2026-11-27T12:00:00Z");
    let states: Vec<Value> = api.list(As::User(&newcomer)).await.body["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].clone())
        .collect();
    assert_eq!(states, ["grace", "active"]);

    // A late upload in grace still counts, and a latecomer may still join.
    api.walk(&early, "2026-11-23", 2_000).await;
    assert_eq!(api.join(As::User(&late), &short).await.body["steps"], 0);
    api.walk(&late, "2026-11-24", 3_000).await;
    let standings = json!([entry(&early, 1, 6_000), entry(&late, 2, 3_000)]);
    assert_eq!(api.leaderboard(As::User(&late), &short, "").await.body["entries"], standings);

    api.set_now("2026-11-27T11:59:59Z");
    assert_eq!(api.details(As::User(&early), &short).await.body["state"], "grace");
    api.set_now("2026-11-27T12:00:00Z");
    assert_eq!(api.details(As::User(&early), &short).await.body["state"], "final");
    let list = api.list(As::User(&newcomer)).await.body;
    assert_eq!(list["challenges"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["challenges"][0]["id"], long.as_str());

    // The day really changed (the open challenge moved), but the final standings did not.
    api.walk(&early, "2026-11-22", 10_000).await;
    api.walk(&late, "2026-11-24", 0).await;
    assert_eq!(api.leaderboard(As::User(&early), &long, "").await.body["me"], entry(&early, 1, 12_000));
    let board = api.leaderboard(As::User(&early), &short, "").await;
    assert_eq!(board.body["entries"], standings);
    assert_eq!(board.body["me"], entry(&early, 1, 6_000));

    assert_error(&api.join(As::User(&newcomer), &short).await, 409, "conflict");
    assert_error(&api.join(As::User(&late), &short).await, 409, "conflict");
    assert_error(&api.leave(As::User(&early), &short).await, 409, "conflict");
    assert_eq!(api.leaderboard(As::User(&early), &short, "").await.body["entries"], standings);
}

async fn a_token_reaches_only_its_own_user(env: TestEnv) {
    let api = Api::new(env);
    let (alice, bob) = (Api::person("alice"), Api::person("bob"));
    let id = api.create_ok(json!({"name": "Winter walk", "start_date": "2026-11-20", "end_date": "2026-12-20"})).await;
    api.walk(&alice, "2026-11-21", 8_000).await;
    api.walk(&bob, "2026-11-21", 2_000).await;

    assert_eq!(api.join(As::User(&alice), &id).await.body["steps"], 8_000);
    // A user named in the body is ignored: the claims say who joins.
    let joined = api
        .send("challenges_join.json", As::User(&bob), |e| {
            at(&id)(e);
            e["body"] = json!({"user_id": alice.as_str()}).to_string().into();
        })
        .await;
    assert_eq!(joined.body, json!({"challenge_id": id, "user_id": bob.as_str(), "steps": 2_000, "days": 1}));
    assert_eq!(api.details(As::User(&alice), &id).await.body["joined"], true);
    assert_eq!(api.details(As::User(&bob), &id).await.body["joined"], true);

    assert_eq!(api.leave(As::User(&bob), &id).await.status, 204);
    assert_error(&api.leave(As::User(&bob), &id).await, 404, "not_found");
    assert_eq!(api.details(As::User(&alice), &id).await.body["joined"], true, "Bob's leave left Alice in");
    assert_eq!(api.details(As::User(&bob), &id).await.body["joined"], false);
    let board = api.leaderboard(As::User(&bob), &id, "").await.body;
    assert_eq!(board, json!({"entries": [entry(&alice, 1, 8_000)], "me": null, "next_page_token": null}));
    assert_eq!(api.leaderboard(As::User(&alice), &id, "").await.body["me"], entry(&alice, 1, 8_000));

    // A subject that cannot be a user id is no identity at all.
    let odd = api
        .send("challenges_get.json", As::User(&alice), |e| {
            at(&id)(e);
            e["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = "alice#admin".into();
        })
        .await;
    assert_error(&odd, 401, "unauthenticated");
}

async fn requests_without_claims_are_refused_and_unknown_routes_are_not_found(env: TestEnv) {
    let api = Api::new(env);
    let walker = Api::person("walker");
    let id = api.create_ok(json!({"name": "Winter walk", "start_date": "2026-11-20", "end_date": "2026-12-20"})).await;
    api.walk(&walker, "2026-11-21", 1_000).await;
    assert_eq!(api.join(As::User(&walker), &id).await.status, 200);

    for sample in SAMPLES {
        assert_error(&api.send(sample, As::Nobody, at(&id)).await, 401, "unauthenticated");
        let no_sub = api
            .send(sample, As::User(&walker), |e| {
                at(&id)(e);
                e["requestContext"]["authorizer"]["jwt"]["claims"] = json!({"admin": "true"});
            })
            .await;
        assert_error(&no_sub, 401, "unauthenticated");
    }
    // Nothing moved: one challenge, the walker still in it.
    assert_eq!(api.list(As::User(&walker)).await.body["challenges"].as_array().unwrap().len(), 1);
    assert_eq!(api.details(As::User(&walker), &id).await.body["joined"], true);

    let me = As::User(&walker);
    for (method, path) in [
        ("PUT", "/v1/challenges".to_owned()),
        ("POST", format!("/v1/challenges/{id}")),
        ("GET", format!("/v1/challenges/{id}/members")),
        ("GET", format!("/v1/challenges/{id}/join")),
        ("GET", "/v2/challenges".to_owned()),
    ] {
        let reply = api.send("challenges_get.json", me, route(method, &path)).await;
        assert_error(&reply, 404, "not_found");
    }
    for unknown in ["no-such-challenge", "bad%23id"] {
        assert_error(&api.details(me, unknown).await, 404, "not_found");
        assert_error(&api.join(me, unknown).await, 404, "not_found");
        assert_error(&api.leave(me, unknown).await, 404, "not_found");
        assert_error(&api.leaderboard(me, unknown, "").await, 404, "not_found");
    }
}
