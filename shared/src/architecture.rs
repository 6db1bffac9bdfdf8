//! The dependency rule, checked on the sources: the core (`domain`, `ports`, `engine`,
//! `services`, `diagnosis`, `events`, `clock`) names no SDK, HTTP client, Lambda type or
//! adapter module, and no module imports one that imports it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers below the adapters.
const CORE: [&str; 7] = ["domain", "ports", "engine", "services", "diagnosis", "events", "clock"];

/// What the core must never name: the adapters' technologies and the adapter modules.
const FORBIDDEN: [&str; 9] = [
    "aws_sdk_",
    "aws_config",
    "aws_smithy",
    "reqwest",
    "lambda_http",
    "lambda_runtime",
    "crate::aws",
    "crate::providers",
    "crate::config",
];

/// A source file of this crate and its module path (`engine::tokens`, `services`, ...).
pub(crate) struct Source {
    pub module: String,
    pub path: PathBuf,
    pub text: String,
}

pub(crate) fn sources(root: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap().with_extension("");
                let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                    parts.pop();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                out.push(Source { module: parts.join("::"), path, text });
            }
        }
    }
    out.sort_by(|a, b| a.module.cmp(&b.module));
    out
}

/// The code outside `#[cfg(test)]` modules and comments: tests may use whatever they like.
pub(crate) fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut skipping_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let trimmed = code.trim();
        if skipping_depth.is_none() {
            if trimmed.starts_with("#[cfg(test)]") {
                pending_cfg_test = true;
                continue;
            }
            if pending_cfg_test && trimmed.starts_with("mod ") && trimmed.ends_with('{') {
                skipping_depth = Some(depth);
            }
            pending_cfg_test = false;
        }
        let opened = code.matches('{').count() as i32;
        let closed = code.matches('}').count() as i32;
        if skipping_depth.is_none() {
            out.push_str(code);
            out.push('\n');
        }
        depth += opened - closed;
        if skipping_depth.is_some_and(|d| depth <= d) {
            skipping_depth = None;
        }
    }
    out
}

fn is_core(module: &str) -> bool {
    CORE.iter().any(|layer| module == *layer || module.starts_with(&format!("{layer}::")))
}

/// The modules of this crate a module's production code names through `crate::`, `super::`
/// or a child's name, resolved to the longest module that exists. Re-exports a parent makes
/// of its own children (`pub use child::Thing`) are its face, not an import.
fn imports(source: &Source, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code = production_code(&source.text);
    let mut found = BTreeSet::new();
    let parent = source.module.rsplit_once("::").map_or("", |(p, _)| p).to_owned();
    let resolve = |mut path: String| {
        while !path.is_empty() {
            if modules.contains(&path) {
                return Some(path);
            }
            path = path.rsplit_once("::").map_or(String::new(), |(p, _)| p.to_owned());
        }
        None
    };
    for (index, _) in code.match_indices("crate::") {
        let rest: String =
            code[index + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        if let Some(target) = resolve(rest.trim_end_matches(':').to_owned()) {
            found.insert(target);
        }
    }
    for (index, _) in code.match_indices("super::") {
        let rest: String =
            code[index + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let full = if parent.is_empty() { rest.clone() } else { format!("{parent}::{rest}") };
        found.insert(resolve(full.trim_end_matches(':').to_owned()).unwrap_or_else(|| parent.clone()));
    }
    found.remove(&source.module);
    found.remove("");
    // A parent naming its children (`mod x;`, `pub use x::Y`) is not an import.
    found.retain(|target| !target.starts_with(&format!("{}::", source.module)) || source.module.is_empty());
    found
}

fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Depth-first search; each back edge closes one cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            found.push(stack[at..].to_vec());
            return;
        }
        if done.contains(node) {
            return;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, found);
        }
        stack.pop();
        done.insert(node.to_owned());
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

/// Every way `sources` break the rule, in words.
pub(crate) fn violations(sources: &[Source]) -> Vec<String> {
    let mut problems = Vec::new();
    for source in sources.iter().filter(|s| is_core(&s.module)) {
        let code = production_code(&source.text);
        for name in FORBIDDEN {
            if code.contains(name) {
                problems.push(format!("{} (core) names `{name}`", source.path.display()));
            }
        }
    }
    let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let graph: BTreeMap<String, BTreeSet<String>> =
        sources.iter().map(|s| (s.module.clone(), imports(s, &modules))).collect();
    for cycle in cycles(&graph) {
        problems.push(format!("import cycle: {} -> {}", cycle.join(" -> "), cycle[0]));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    fn source(module: &str, text: &str) -> Source {
        Source { module: module.into(), path: PathBuf::from(format!("{module}.rs")), text: text.into() }
    }

    #[test]
    fn the_core_names_no_adapter_and_no_module_imports_one_that_imports_it_back() {
        let problems = violations(&sources(&crate_root()));
        assert!(problems.is_empty(), "the dependency rule is broken:\n{}", problems.join("\n"));
    }

    #[test]
    fn a_core_module_naming_an_sdk_or_an_adapter_is_caught() {
        let broken = [
            source("services::syncing", "use aws_sdk_dynamodb::Client;\nfn f() {}\n"),
            source("engine", "fn f(s: &crate::aws::DynamoStore) {}\n"),
            source("domain", "#[cfg(test)]\nmod tests {\n    use reqwest::Client;\n}\n"),
            source("aws", "use aws_sdk_dynamodb::Client;\n"),
        ];
        let problems = violations(&broken);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].contains("services::syncing") && problems[0].contains("aws_sdk_"));
        assert!(problems[1].contains("engine") && problems[1].contains("crate::aws"));
    }

    #[test]
    fn an_import_cycle_is_caught() {
        let cyclic = [
            source("providers::google_health::client", "use super::keyset::KeyCache;\n"),
            source("providers::google_health::keyset", "use super::client::GoogleHealthClient;\n"),
            source("providers::google_health", "mod client;\nmod keyset;\npub use client::GoogleHealthClient;\n"),
        ];
        let problems = violations(&cyclic);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].contains("import cycle"));
    }
}
