//! `template.yaml`, parsed once and only here: the table, the functions with their HttpApi
//! routes, the functions' globals and the parameters' defaults, typed. The local stack, the
//! tests and the benchmarks all read the deployment through this module, never a copy of it.

use serde::Deserialize;
use serde_norway::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The SAM template, compiled in.
pub const TEMPLATE: &str = include_str!("../../template.yaml");
/// The table's logical id in the template.
pub const TABLE_RESOURCE: &str = "StepsTable";
/// What SAM deploys when `Globals.Function.Architectures` says nothing.
const DEFAULT_ARCHITECTURE: &str = "x86_64";

#[derive(Debug, Clone, thiserror::Error)]
#[error("template.yaml: {0}")]
pub struct TemplateError(String);

/// What the code takes from `template.yaml`.
#[derive(Debug, Clone)]
pub struct Template {
    /// `Resources.StepsTable.Properties`.
    pub table: TableDefinition,
    /// Every `AWS::Serverless::Function`, in the template's order.
    pub functions: Vec<Function>,
    /// `Globals.Function.MemorySize`.
    pub memory_mb: u32,
    /// `Globals.Function.Architectures[0]` (SAM's default when absent).
    pub architecture: String,
    /// `Auth.DefaultAuthorizer` of the `AWS::Serverless::HttpApi`.
    pub default_authorizer: Option<String>,
    /// `Parameters.*.Default`, the scalars as written (`15`, `"stepsync"`, `""`).
    pub parameter_defaults: BTreeMap<String, String>,
    /// The names of `Globals.Function.Environment.Variables` (every function has them).
    pub global_environment: Vec<String>,
    /// What the reminder rule (`NudgeTargetRule`) sends the reminder target: its target's
    /// input transformer, which the local stack's receiver gets the same way.
    pub reminder_transformer: Option<InputTransformer>,
}

/// The logical id of the rule that hands reminders to the reminder target.
pub const REMINDER_RULE: &str = "NudgeTargetRule";

/// An EventBridge target's input transformer: values picked from the event by JSON path
/// (`InputPathsMap`), put into `InputTemplate` at their `<name>` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputTransformer {
    pub paths: BTreeMap<String, String>,
    pub template: String,
}

impl InputTransformer {
    /// What EventBridge sends the target for `event` (the whole envelope). Placeholders stand
    /// where a JSON value goes, as in the template's own: each becomes its value as JSON. A
    /// path the event lacks is an error (the reminders' events always carry theirs).
    pub fn apply(&self, event: &serde_json::Value) -> Result<String, TemplateError> {
        let mut values = BTreeMap::new();
        for (name, path) in &self.paths {
            let steps = path.strip_prefix("$.").ok_or_else(|| bad(format!("{path}: not a $. path")))?;
            let value = steps
                .split('.')
                .try_fold(event, |node, step| node.get(step))
                .ok_or_else(|| bad(format!("the event has no {path}")))?;
            values.insert(format!("<{name}>"), value.to_string());
        }
        // One pass over the template: a value that happens to hold `<name>` stays as it is.
        let (mut out, mut rest) = (String::new(), self.template.as_str());
        while let Some(start) = rest.find('<') {
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            match values.iter().find(|(placeholder, _)| rest.starts_with(placeholder.as_str())) {
                Some((placeholder, value)) => {
                    out.push_str(value);
                    rest = &rest[placeholder.len()..];
                }
                None => {
                    out.push('<');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn read(node: &Value) -> Option<Self> {
        let paths = node["InputPathsMap"]
            .as_mapping()?
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
            .collect();
        Some(Self { paths, template: node["InputTemplate"].as_str()?.to_owned() })
    }
}

/// One Lambda function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the `functions/src/bin/` binary it runs.
    pub binary: String,
    /// Its `HttpApi` events.
    pub routes: Vec<Route>,
    /// The `Type` of each of its events, in the template's order (`HttpApi`, `SQS`, ...).
    pub event_types: Vec<String>,
    /// What its IAM policy allows, one line per action (see [`Grant`]): its inline
    /// `Policies`, or the policies of the role it names in `Role: !GetAtt {role}.Arn`.
    pub grants: Vec<Grant>,
    /// Managed policies named in `Policies` (SAM's policy templates or ARNs).
    pub managed_policies: Vec<String>,
    /// The names of its own environment variables (the globals' are in `Template`).
    pub environment: Vec<String>,
}

/// One action an IAM statement allows, with its resource and condition written as the
/// template writes them (tags kept: `!GetAtt StepsTable.Arn`), and the template condition
/// that includes the statement (`!If [GoogleWebhookSecretSet, statement, AWS::NoValue]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub action: String,
    pub resource: String,
    pub condition: Option<String>,
    pub only_if: Option<String>,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(when) = &self.only_if {
            write!(f, "(if {when}) ")?;
        }
        write!(f, "{} on {}", self.action, self.resource)?;
        if let Some(condition) = &self.condition {
            write!(f, " where {condition}")?;
        }
        Ok(())
    }
}

/// A node as written, compactly: `!Sub "x"` as `!Sub x`, lists as `[a, b]`, maps as `{k: v}`.
fn written(node: &Value) -> String {
    match node {
        Value::Sequence(items) => format!("[{}]", items.iter().map(written).collect::<Vec<_>>().join(", ")),
        Value::Mapping(map) => {
            let pairs = map.iter().map(|(k, v)| format!("{}: {}", written(k), written(v)));
            format!("{{{}}}", pairs.collect::<Vec<_>>().join(", "))
        }
        Value::Tagged(tagged) => format!("{} {}", tagged.tag, written(&tagged.value)),
        Value::Null => "null".to_owned(),
        other => scalar(other).unwrap_or_default(),
    }
}

/// The grants of a policy document's statements (a statement under `!If` keeps its condition).
fn grants(statements: &Value) -> Vec<Grant> {
    let mut out = Vec::new();
    for statement in statements.as_sequence().into_iter().flatten() {
        let (statement, only_if) = match statement {
            Value::Tagged(tagged) if tagged.tag == "If" => {
                let branches = tagged.value.as_sequence().cloned().unwrap_or_default();
                let when = branches.first().map(written);
                (branches.get(1).cloned().unwrap_or(Value::Null), when)
            }
            other => (other.clone(), None),
        };
        let actions = match &statement["Action"] {
            Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
            other => scalar(other).into_iter().collect::<Vec<_>>(),
        };
        for action in actions {
            out.push(Grant {
                action,
                resource: written(&statement["Resource"]),
                condition: statement.get("Condition").map(written),
                only_if: only_if.clone(),
            });
        }
    }
    out
}

/// One `HttpApi` event: a route and whether the JWT authorizer guards it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// Upper case, as the handlers' `ROUTES` spell it.
    pub method: String,
    pub path: String,
    /// `Auth.Authorizer: NONE`: no JWT (the OAuth callback, the webhooks).
    pub public: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDefinition {
    pub attribute_definitions: Vec<AttributeDef>,
    pub key_schema: Vec<KeyDef>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexDef>,
    #[serde(default)]
    pub time_to_live_specification: Option<TtlDef>,
    #[serde(default)]
    pub stream_specification: Option<StreamDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDef {
    pub stream_view_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyDef {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyDef>,
    pub projection: ProjectionDef,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionDef {
    pub projection_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TtlDef {
    pub attribute_name: String,
    pub enabled: bool,
}

/// The compiled-in `template.yaml`, parsed on first use.
pub fn template() -> Result<&'static Template, TemplateError> {
    static PARSED: OnceLock<Result<Template, TemplateError>> = OnceLock::new();
    PARSED.get_or_init(|| Template::parse(TEMPLATE)).as_ref().map_err(Clone::clone)
}

fn bad(why: impl std::fmt::Display) -> TemplateError {
    TemplateError(why.to_string())
}

fn text<'a>(node: &'a Value, at: &str) -> Result<&'a str, TemplateError> {
    node.as_str().ok_or_else(|| bad(format!("{at} is not a string")))
}

/// A YAML scalar as written; `None` for a mapping, a sequence, a tag or null.
fn scalar(node: &Value) -> Option<String> {
    match node {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Template {
    /// Reads a SAM template (CloudFormation tags such as `!Ref` are fine where nothing here
    /// looks).
    pub fn parse(yaml: &str) -> Result<Self, TemplateError> {
        let doc: Value = serde_norway::from_str(yaml).map_err(bad)?;
        let resources = doc["Resources"].as_mapping().ok_or_else(|| bad("no Resources"))?;
        let table = match &doc["Resources"][TABLE_RESOURCE]["Properties"] {
            Value::Null => return Err(bad(format!("no Resources.{TABLE_RESOURCE}.Properties"))),
            props => serde_norway::from_value(props.clone()).map_err(|e| bad(format!("{TABLE_RESOURCE}: {e}")))?,
        };

        let mut functions = Vec::new();
        let mut default_authorizer = None;
        for (id, resource) in resources {
            let id = text(id, "a resource's logical id")?;
            match resource["Type"].as_str() {
                Some("AWS::Serverless::Function") => functions.push(Self::function(id, resource, &doc["Resources"])?),
                Some("AWS::Serverless::HttpApi") => {
                    default_authorizer =
                        resource["Properties"]["Auth"]["DefaultAuthorizer"].as_str().map(str::to_owned);
                }
                _ => {}
            }
        }

        let globals = &doc["Globals"]["Function"];
        let memory_mb = globals["MemorySize"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad("Globals.Function.MemorySize is not a number"))?;
        let parameter_defaults: BTreeMap<String, String> = doc["Parameters"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(name, parameter)| Some((name.as_str()?.to_owned(), scalar(&parameter["Default"])?)))
            .collect();
        let architecture = match &globals["Architectures"][0] {
            Value::Null => DEFAULT_ARCHITECTURE.to_owned(),
            // `!Ref Architecture`: the parameter's default, what a deploy without overrides gets.
            Value::Tagged(tagged) if tagged.tag == "Ref" => tagged
                .value
                .as_str()
                .and_then(|name| parameter_defaults.get(name))
                .cloned()
                .ok_or_else(|| bad("Globals.Function.Architectures[0] refers to no parameter with a default"))?,
            other => text(other, "Globals.Function.Architectures[0]")?.to_owned(),
        };
        let global_environment = globals["Environment"]["Variables"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(name, _)| name.as_str().map(str::to_owned))
            .collect();
        let reminder_transformer =
            InputTransformer::read(&doc["Resources"][REMINDER_RULE]["Properties"]["Targets"][0]["InputTransformer"]);
        Ok(Self {
            table,
            functions,
            memory_mb,
            architecture,
            default_authorizer,
            parameter_defaults,
            global_environment,
            reminder_transformer,
        })
    }

    fn function(id: &str, resource: &Value, resources: &Value) -> Result<Function, TemplateError> {
        let binary = text(&resource["Metadata"]["BuildProperties"]["Binary"], &format!("{id}'s Binary"))?.to_owned();
        let mut routes = Vec::new();
        let mut event_types = Vec::new();
        for (name, event) in resource["Properties"]["Events"].as_mapping().into_iter().flatten() {
            let at = format!("{id}.Events.{}", name.as_str().unwrap_or("?"));
            let kind = text(&event["Type"], &format!("{at}.Type"))?;
            if kind == "HttpApi" {
                let props = &event["Properties"];
                routes.push(Route {
                    method: text(&props["Method"], &format!("{at}.Method"))?.to_uppercase(),
                    path: text(&props["Path"], &format!("{at}.Path"))?.to_owned(),
                    public: props["Auth"]["Authorizer"].as_str() == Some("NONE"),
                });
            }
            event_types.push(kind.to_owned());
        }
        let props = &resource["Properties"];
        let (mut granted, mut managed_policies) = (Vec::new(), Vec::new());
        for policy in props["Policies"].as_sequence().into_iter().flatten() {
            match policy.get("Statement") {
                Some(statements) => granted.extend(grants(statements)),
                None => managed_policies.push(written(policy)),
            }
        }
        if let Value::Tagged(role) = &props["Role"] {
            let role_id = role.value.as_str().and_then(|r| r.strip_suffix(".Arn")).unwrap_or_default();
            for policy in resources[role_id]["Properties"]["Policies"].as_sequence().into_iter().flatten() {
                granted.extend(grants(&policy["PolicyDocument"]["Statement"]));
            }
            let managed = &resources[role_id]["Properties"]["ManagedPolicyArns"];
            managed_policies.extend(managed.as_sequence().into_iter().flatten().map(written));
        }
        let environment = props["Environment"]["Variables"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(name, _)| name.as_str().map(str::to_owned))
            .collect();
        Ok(Function {
            logical_id: id.to_owned(),
            binary,
            routes,
            event_types,
            grants: granted,
            managed_policies,
            environment,
        })
    }

    /// Every HttpApi route with the function that serves it.
    pub fn routes(&self) -> impl Iterator<Item = (&Function, &Route)> {
        self.functions.iter().flat_map(|f| f.routes.iter().map(move |r| (f, r)))
    }

    /// A parameter's default read as a number.
    pub fn number_parameter(&self, name: &str) -> Result<u32, TemplateError> {
        self.parameter_defaults
            .get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(format!("Parameters.{name}.Default is not a number")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_defines_the_one_table() {
        let def = &template().unwrap().table;
        let keys: Vec<_> = def.key_schema.iter().map(|k| (k.attribute_name.as_str(), k.key_type.as_str())).collect();
        assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);
        assert_eq!(def.global_secondary_indexes[0].index_name, "GSI1");
        assert_eq!(def.time_to_live_specification.as_ref().unwrap().attribute_name, "expires_at");
        assert_eq!(def.stream_specification.as_ref().unwrap().stream_view_type, "NEW_AND_OLD_IMAGES");
    }

    #[test]
    fn functions_routes_globals_and_parameters_are_typed() {
        let t = template().unwrap();
        let oauth = t.functions.iter().find(|f| f.binary == "oauth").expect("the oauth function");
        assert_eq!(oauth.logical_id, "Oauth");
        let callback = oauth.routes.iter().find(|r| r.path == "/oauth/{provider}/callback").unwrap();
        assert_eq!((callback.method.as_str(), callback.public), ("GET", true));
        assert!(oauth.routes.iter().any(|r| !r.public), "authorize and disconnect need the JWT");
        assert!(t.functions.iter().any(|f| f.event_types.iter().any(|e| e == "ScheduleV2")));
        assert_eq!(t.default_authorizer.as_deref(), Some("JwtAuthorizer"));
        assert!(t.memory_mb > 0);
        assert_eq!(t.number_parameter("SyncIntervalMinutes").unwrap(), 15);
        assert!(t.number_parameter("EventBusName").is_err());
    }

    /// The reminder rule's transformer, applied to a `ReminderDue` as EventBridge would: a
    /// JSON body whose `text` a chat webhook shows, the kind and the whole detail beside it.
    #[test]
    fn the_reminder_rule_sends_a_json_body_with_the_text() {
        let transformer = template().unwrap().reminder_transformer.as_ref().expect("the reminder rule's transformer");
        let event = serde_json::json!({
            "version": "0", "id": "1", "source": "stepsync", "detail-type": "ReminderDue",
            "time": "2026-11-25T18:00:03Z", "region": "us-east-1", "account": "123456789012", "resources": [],
            "detail": {"user": "walker-1", "provider": "google_health", "code": "token_revoked",
                       "action": "reconnect", "message": "Reconnect \"Fitbit\".", "text": "Reminder for walker-1: Reconnect \"Fitbit\"."}
        });
        let body: serde_json::Value = serde_json::from_str(&transformer.apply(&event).unwrap()).unwrap();
        assert_eq!(body["text"], "Reminder for walker-1: Reconnect \"Fitbit\".");
        assert_eq!(body["kind"], "ReminderDue");
        assert_eq!(body["detail"], event["detail"]);
        let without = serde_json::json!({"detail-type": "ReminderDue", "detail": {}});
        assert!(transformer.apply(&without).is_err(), "no text, no body");
    }

    #[test]
    fn a_function_without_its_binary_is_an_error() {
        let yaml = "Resources:\n  StepsTable:\n    Properties:\n      AttributeDefinitions: []\n      KeySchema: []\n  \
                    Lost:\n    Type: AWS::Serverless::Function\nGlobals:\n  Function:\n    MemorySize: 128\n";
        let err = Template::parse(yaml).unwrap_err();
        assert!(err.to_string().contains("Lost's Binary"), "{err}");
    }
}
