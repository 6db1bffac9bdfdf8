//! Least privilege, read from `template.yaml`: each function's IAM policy is exactly the table
//! below, and the secrets it may read are exactly the ones its binary loads (`Loads`).

use std::collections::BTreeMap;
use stepsync::config::Loads;
use stepsync_local::template::{Function, template};

/// The binary's `Loads`, as its `main` names it (`functions/src/bin/{binary}.rs`).
fn loads_of(binary: &str) -> Loads {
    let path = stepsync_local::workspace_root().join(format!("functions/src/bin/{binary}.rs"));
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let named = [
        ("Loads::EVERYTHING", Loads::EVERYTHING),
        ("Loads::CLIENTS", Loads::CLIENTS),
        ("Loads::VERIFIERS", Loads::VERIFIERS),
        ("Loads::APP_CLIENTS", Loads::APP_CLIENTS),
        ("Loads::STORE_ONLY", Loads::STORE_ONLY),
    ];
    let found: Vec<Loads> = named.iter().filter(|(name, _)| source.contains(name)).map(|(_, loads)| *loads).collect();
    assert_eq!(found.len(), 1, "{binary} names one Loads");
    found[0]
}

/// The template parameter that names each secret setting's SSM parameter.
fn parameter_of(setting: &str) -> &'static str {
    match setting {
        "STEPSYNC_TOKEN_KEY" => "TokenKeyParameter",
        "STEPSYNC_TOKEN_KEY_PREVIOUS" => "PreviousTokenKeyParameter",
        "STEPSYNC_GOOGLE_CLIENT_SECRET" => "GoogleClientSecretParameter",
        "STEPSYNC_MISFIT_CLIENT_SECRET" => "MisfitClientSecretParameter",
        "STEPSYNC_GOOGLE_WEBHOOK_SECRET" => "GoogleWebhookSecretParameter",
        "STEPSYNC_OURA_CLIENT_SECRET" => "OuraClientSecretParameter",
        "STEPSYNC_OURA_VERIFICATION_TOKEN" => "OuraVerificationTokenParameter",
        "STEPSYNC_WITHINGS_CLIENT_SECRET" => "WithingsClientSecretParameter",
        "STEPSYNC_WITHINGS_NOTIFY_TOKEN" => "WithingsNotifyTokenParameter",
        "STEPSYNC_POLAR_CLIENT_SECRET" => "PolarClientSecretParameter",
        "STEPSYNC_POLAR_WEBHOOK_SECRET" => "PolarWebhookSecretParameter",
        "STEPSYNC_GARMIN_CLIENT_SECRET" => "GarminClientSecretParameter",
        "STEPSYNC_GARMIN_NOTIFY_TOKEN" => "GarminNotifyTokenParameter",
        other => panic!("no template parameter for {other}"),
    }
}

fn function(id: &str) -> &'static Function {
    template().unwrap().functions.iter().find(|f| f.logical_id == id).unwrap_or_else(|| panic!("no {id}"))
}

#[test]
fn each_function_may_read_exactly_the_secrets_it_loads() {
    let template = template().unwrap();
    assert!(
        !template.global_environment.iter().any(|v| v.ends_with("_PARAMETER")),
        "no secret is every function's: {:?}",
        template.global_environment
    );
    for f in &template.functions {
        let settings = loads_of(&f.binary).secret_settings();
        let mut wanted: Vec<String> = settings.iter().map(|s| format!("{s}_PARAMETER")).collect();
        let mut named: Vec<String> = f.environment.iter().filter(|v| v.ends_with("_PARAMETER")).cloned().collect();
        wanted.sort();
        named.sort();
        assert_eq!(named, wanted, "{}: the secret parameters in its environment", f.logical_id);
        let mut readable: Vec<String> = f
            .grants
            .iter()
            .filter(|g| g.action == "ssm:GetParameters")
            .flat_map(|g| {
                let parameters = [
                    "TokenKeyParameter",
                    "PreviousTokenKeyParameter",
                    "GoogleClientSecretParameter",
                    "MisfitClientSecretParameter",
                    "GoogleWebhookSecretParameter",
                    "OuraClientSecretParameter",
                    "OuraVerificationTokenParameter",
                    "WithingsClientSecretParameter",
                    "WithingsNotifyTokenParameter",
                    "PolarClientSecretParameter",
                    "PolarWebhookSecretParameter",
                    "GarminClientSecretParameter",
                    "GarminNotifyTokenParameter",
                ];
                parameters.into_iter().filter(move |p| g.resource.contains(&format!("${{{p}}}"))).map(str::to_owned)
            })
            .collect();
        let mut allowed: Vec<String> = settings.iter().map(|s| parameter_of(s).to_owned()).collect();
        readable.sort();
        allowed.sort();
        assert_eq!(readable, allowed, "{}: the SSM parameters its role may read", f.logical_id);
        let decrypts_secrets = f
            .grants
            .iter()
            .any(|g| g.action == "kms:Decrypt" && g.condition.as_deref().is_some_and(|c| c.contains("ssm.")));
        assert_eq!(
            decrypts_secrets,
            !settings.is_empty(),
            "{}: kms:Decrypt through SSM only with secrets to read",
            f.logical_id
        );
    }
}

#[test]
fn each_function_policy_is_exactly_its_table_row() {
    let mut problems = Vec::new();
    let expected: BTreeMap<&str, &[&str]> = POLICY_TABLE.iter().copied().collect();
    for f in &template().unwrap().functions {
        if !f.managed_policies.is_empty() {
            problems.push(format!("{}: managed policies {:?}", f.logical_id, f.managed_policies));
        }
        let mut actual: Vec<String> = f.grants.iter().map(ToString::to_string).collect();
        actual.sort();
        let row = expected.get(f.logical_id.as_str()).copied().unwrap_or_default();
        let mut wanted: Vec<String> = row.iter().map(|line| written_out(line)).collect();
        wanted.sort();
        if actual != wanted {
            problems.push(format!("{}:\n    template: {actual:#?}\n    table: {wanted:#?}", f.logical_id));
        }
    }
    assert!(problems.is_empty(), "template.yaml's policies differ from the table:\n{}", problems.join("\n"));
}

/// The table's short names for what the template writes in full.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("on table", "on !GetAtt StepsTable.Arn"),
    ("on gsi1", "on !Sub ${StepsTable.Arn}/index/GSI1"),
    ("on the stream", "on !GetAtt StepsTable.StreamArn"),
    ("on bus", "on !GetAtt EventBus.Arn"),
    ("on key", "on !GetAtt StepsKey.Arn"),
    ("via ssm", "where {StringEquals: {kms:ViaService: !Sub ssm.${AWS::Region}.amazonaws.com}}"),
    ("via dynamodb", "where {StringEquals: {kms:ViaService: !Sub dynamodb.${AWS::Region}.amazonaws.com}}"),
    ("keys like ", "where {ForAllValues:StringLike: {dynamodb:LeadingKeys: "),
    (
        "on the token key and client secrets",
        "on [!Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${TokenKeyParameter}, \
         !If [RotatingTokenKey, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PreviousTokenKeyParameter}, !Ref AWS::NoValue], \
         !If [GoogleEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${GoogleClientSecretParameter}, !Ref AWS::NoValue], \
         !If [MisfitEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${MisfitClientSecretParameter}, !Ref AWS::NoValue], \
         !If [OuraEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${OuraClientSecretParameter}, !Ref AWS::NoValue], \
         !If [OuraEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${OuraVerificationTokenParameter}, !Ref AWS::NoValue], \
         !If [WithingsEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${WithingsClientSecretParameter}, !Ref AWS::NoValue], \
         !If [WithingsEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${WithingsNotifyTokenParameter}, !Ref AWS::NoValue], \
         !If [PolarEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PolarClientSecretParameter}, !Ref AWS::NoValue], \
         !If [GarminEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${GarminClientSecretParameter}, !Ref AWS::NoValue]]",
    ),
    (
        "on the webhook secrets",
        "on [!If [GoogleWebhookSecretSet, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${GoogleWebhookSecretParameter}, !Ref AWS::NoValue], \
         !If [OuraEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${OuraClientSecretParameter}, !Ref AWS::NoValue], \
         !If [OuraEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${OuraVerificationTokenParameter}, !Ref AWS::NoValue], \
         !If [WithingsEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${WithingsNotifyTokenParameter}, !Ref AWS::NoValue], \
         !If [PolarWebhookSecretSet, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PolarWebhookSecretParameter}, !Ref AWS::NoValue], \
         !If [GarminEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${GarminNotifyTokenParameter}, !Ref AWS::NoValue]]",
    ),
    (
        "on the client secrets",
        "on [!If [GoogleEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${GoogleClientSecretParameter}, !Ref AWS::NoValue], \
         !If [MisfitEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${MisfitClientSecretParameter}, !Ref AWS::NoValue], \
         !If [OuraEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${OuraClientSecretParameter}, !Ref AWS::NoValue], \
         !If [OuraEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${OuraVerificationTokenParameter}, !Ref AWS::NoValue], \
         !If [WithingsEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${WithingsClientSecretParameter}, !Ref AWS::NoValue], \
         !If [WithingsEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${WithingsNotifyTokenParameter}, !Ref AWS::NoValue], \
         !If [PolarEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PolarClientSecretParameter}, !Ref AWS::NoValue], \
         !If [GarminEnabled, !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${GarminClientSecretParameter}, !Ref AWS::NoValue]]",
    ),
];

fn written_out(line: &str) -> String {
    let mut full = line.to_owned();
    for (short, long) in SHORT_NAMES {
        full = full.replace(short, long);
    }
    if full.contains("dynamodb:LeadingKeys") {
        full.push_str("}}");
    }
    full
}

/// What each function may do. Nothing else: no managed policy, no `*` resource, no action
/// a function's code does not call (the comments in template.yaml say which call needs it).
const POLICY_TABLE: &[(&str, &[&str])] = &[
    (
        // runs syncs: connections (outcomes, the lease, the webhook fence), days, profiles,
        // participants; the shard's sweep claim and cursors
        "SyncWorker",
        &[
            "dynamodb:GetItem on table",
            "dynamodb:BatchGetItem on table",
            "dynamodb:PutItem on table",
            "dynamodb:UpdateItem on table",
            "dynamodb:ConditionCheckItem on table",
            "dynamodb:DeleteItem on table",
            "dynamodb:Query on gsi1",
            "events:PutEvents on bus",
            "ssm:GetParameters on the token key and client secrets",
            "kms:Decrypt on key via ssm",
        ],
    ),
    (
        // reads the table's stream, counts day changes into participants, publishes StepsUpdated
        "DayEvents",
        &[
            "dynamodb:BatchGetItem on table keys like [USER#*, CHAL#*]",
            "dynamodb:GetItem on table keys like [USER#*, CHAL#*]",
            "dynamodb:Query on table keys like [USER#*, CHAL#*]",
            "dynamodb:UpdateItem on table keys like [CHAL#*]",
            "dynamodb:DescribeStream on the stream",
            "dynamodb:GetRecords on the stream",
            "dynamodb:GetShardIterator on the stream",
            "dynamodb:ListStreams on !Sub ${StepsTable.Arn}/stream/*",
            "kms:Decrypt on key via dynamodb",
            "events:PutEvents on bus",
            "logs:CreateLogStream on !GetAtt DayEventsLogGroup.Arn",
            "logs:PutLogEvents on !GetAtt DayEventsLogGroup.Arn",
            "sqs:SendMessage on !GetAtt DayEventsDeadLetterQueue.Arn",
        ],
    ),
    (
        // rebuilds and seals challenges; keeps the sources' subscriptions (their client
        // secrets, the request budget's counters); no event
        "Reconcile",
        &[
            "dynamodb:GetItem on table",
            "dynamodb:BatchGetItem on table",
            "dynamodb:Query on table",
            "dynamodb:Query on gsi1",
            "dynamodb:PutItem on table",
            "dynamodb:UpdateItem on table",
            "dynamodb:ConditionCheckItem on table",
            "(if ProviderClientsEnabled) ssm:GetParameters on the client secrets",
            "(if ProviderClientsEnabled) kms:Decrypt on key via ssm",
            "(if NudgesEnabled) dynamodb:DeleteItem on table keys like [USER#*, CHAL#*]",
            "(if NudgesEnabled) events:PutEvents on bus",
        ],
    ),
    (
        // the due-time and slot pages of each shard, its sweep cursors; SyncShard
        "ScheduledSync",
        &["dynamodb:Query on gsi1", "dynamodb:GetItem on table keys like [SWEEP#*]", "events:PutEvents on bus"],
    ),
    (
        "ManualSync",
        &[
            "dynamodb:GetItem on table",
            "dynamodb:BatchGetItem on table",
            "dynamodb:PutItem on table",
            "dynamodb:UpdateItem on table",
            "dynamodb:ConditionCheckItem on table",
            "dynamodb:Query on table",
            "events:PutEvents on bus",
            "ssm:GetParameters on the token key and client secrets",
            "kms:Decrypt on key via ssm",
        ],
    ),
    (
        // challenges and memberships; no secret, no event
        "Challenges",
        &[
            "dynamodb:GetItem on table",
            "dynamodb:BatchGetItem on table",
            "dynamodb:PutItem on table",
            "dynamodb:DeleteItem on table",
            "dynamodb:Query on table",
            "dynamodb:Query on gsi1",
            "(if NudgesEnabled) events:PutEvents on bus",
        ],
    ),
    (
        "Oauth",
        &[
            "dynamodb:GetItem on table",
            "dynamodb:BatchGetItem on table",
            "dynamodb:PutItem on table",
            "dynamodb:UpdateItem on table",
            "dynamodb:DeleteItem on table",
            "dynamodb:Query on table",
            "dynamodb:BatchWriteItem on table",
            "events:PutEvents on bus",
            "ssm:GetParameters on the token key and client secrets",
            "kms:Decrypt on key via ssm",
        ],
    ),
    (
        // reminders (only deployed with a target): the connection read again, the
        // once-per-period claim and its release, all in people's own partitions; ReminderDue
        "Nudges",
        &[
            "dynamodb:GetItem on table keys like [USER#*]",
            "dynamodb:PutItem on table keys like [USER#*]",
            "dynamodb:DeleteItem on table keys like [USER#*]",
            "events:PutEvents on bus",
        ],
    ),
    (
        // public: reads account owners only and writes nothing; the webhook secrets only (Oura signs its notices with its client secret;
        // Withings signs nothing, so its notify token, which our callback URL carries, is the webhook secret;
        // Polar's is its one webhook's signature_secret_key, granted only once set; Garmin signs nothing either:
        // its notify token, which our endpoint URL carries)
        "ProviderWebhook",
        &[
            "dynamodb:GetItem on table keys like [PACCT#*]",
            "lambda:InvokeFunction on !GetAtt SyncWorker.Arn",
            "(if WebhookSecretsSet) ssm:GetParameters on the webhook secrets",
            "(if WebhookSecretsSet) kms:Decrypt on key via ssm",
        ],
    ),
];

#[test]
fn the_webhook_function_cannot_read_a_persons_items() {
    let webhook = function("ProviderWebhook");
    for grant in webhook.grants.iter().filter(|g| g.action.starts_with("dynamodb:")) {
        let condition = grant.condition.as_deref().unwrap_or_default();
        assert!(condition.contains("dynamodb:LeadingKeys"), "{grant}");
        assert!(!condition.contains("USER#"), "{grant}");
    }
    assert!(webhook.grants.iter().all(|g| g.only_if.is_some() || !g.action.starts_with("ssm:")));
}

/// The edges an attacker reaches first: every route throttled (API Gateway's default route
/// settings, from parameters), the public webhook function's concurrency capped, and CORS only
/// for the configured app origins, with the token in a header and no credentials.
#[test]
fn routes_are_throttled_the_webhook_capped_and_cors_limited_to_the_app_origins() {
    let doc: serde_norway::Value = serde_norway::from_str(stepsync_local::template::TEMPLATE).unwrap();
    let written = |v: &serde_norway::Value| format!("{v:?}");
    let api = &doc["Resources"]["HttpApi"]["Properties"];
    let throttling = written(&api["DefaultRouteSettings"]);
    assert!(throttling.contains("ThrottlingRateLimit") && throttling.contains("ApiRateLimit"), "{throttling}");
    assert!(throttling.contains("ThrottlingBurstLimit") && throttling.contains("ApiBurstLimit"), "{throttling}");
    let cors = written(&api["CorsConfiguration"]);
    for wanted in ["HasAppOrigins", "AppOrigins", "authorization", "content-type"] {
        assert!(cors.contains(wanted), "CORS lacks {wanted}: {cors}");
    }
    assert!(!cors.contains("allowCredentials") && !cors.contains("\"*\""), "no credentials, no wildcard: {cors}");
    let webhook = written(&doc["Resources"]["ProviderWebhook"]["Properties"]["ReservedConcurrentExecutions"]);
    assert!(webhook.contains("WebhookReservedConcurrency"), "{webhook}");
    for parameter in ["ApiRateLimit", "ApiBurstLimit", "WebhookReservedConcurrency", "AppOrigins"] {
        assert!(!doc["Parameters"][parameter].is_null(), "{parameter} is a template parameter");
    }
}

/// The role EventBridge sends reminders with may invoke the one API destination and nothing
/// else, and only EventBridge in this account may take it on; the target's secret is a
/// Secrets Manager dynamic reference, never a parameter's plain value.
#[test]
fn the_reminder_target_role_invokes_only_its_destination() {
    let doc: serde_norway::Value = serde_norway::from_str(stepsync_local::template::TEMPLATE).unwrap();
    let written = |v: &serde_norway::Value| format!("{v:?}");
    let role = &doc["Resources"]["NudgeTargetRole"]["Properties"];
    let trust = written(&role["AssumeRolePolicyDocument"]);
    assert!(trust.contains("events.amazonaws.com") && trust.contains("aws:SourceAccount"), "{trust}");
    let policies = role["Policies"].as_sequence().unwrap();
    assert_eq!(policies.len(), 1);
    let statements = policies[0]["PolicyDocument"]["Statement"].as_sequence().unwrap();
    assert_eq!(statements.len(), 1, "one statement");
    assert_eq!(statements[0]["Action"].as_str(), Some("events:InvokeApiDestination"));
    assert!(statements[0]["Sid"].as_str().is_some());
    assert_eq!(
        written(&statements[0]["Resource"]),
        written(&serde_norway::from_str("!GetAtt NudgeTarget.Arn").unwrap())
    );
    let key = written(&doc["Resources"]["NudgeTargetConnection"]["Properties"]["AuthParameters"]);
    assert!(key.contains("resolve:secretsmanager:${NudgeTargetSecret}"), "{key}");
    assert_eq!(
        doc["Parameters"]["NudgeTargetUrl"]["NoEcho"].as_bool(),
        Some(true),
        "a chat webhook URL is its credential"
    );
}
