//! `docs/FAULTS.md` is the catalogue of the faults StepSync must survive, each with the tests
//! that prove it. These checks keep it honest: 48 numbered faults, and every test it names is
//! a function that exists in the file it names.

use std::collections::BTreeSet;

struct Fault {
    number: String,
    tests: Vec<String>,
    missing: bool,
}

fn catalogue() -> Vec<Fault> {
    let path = stepsync_local::workspace_root().join("docs/FAULTS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | F01 | fault | outcome | tests |
            let number = cells.get(1).filter(|c| c.starts_with('F') && c[1..].parse::<u32>().is_ok())?;
            let column = cells.get(4).copied().unwrap_or_default();
            let entries: Vec<&str> = column.split("<br>").map(str::trim).filter(|e| !e.is_empty()).collect();
            let tests =
                entries.iter().filter_map(|e| e.strip_prefix('`')?.strip_suffix('`')).map(str::to_owned).collect();
            let missing = entries.iter().any(|e| e.starts_with("MISSING"));
            Some(Fault { number: (*number).to_owned(), tests, missing })
        })
        .collect()
}

/// Whether `file` (from the repository root) defines `fn name` (a test, or a case a macro runs).
fn defines(file: &str, name: &str) -> bool {
    let path = stepsync_local::workspace_root().join(file);
    std::fs::read_to_string(&path).is_ok_and(|source| {
        source.match_indices(&format!("fn {name}")).any(|(at, m)| source[at + m.len()..].starts_with(['(', '<']))
    })
}

#[test]
fn every_fault_names_tests_that_exist() {
    let faults = catalogue();
    let numbers: Vec<&str> = faults.iter().map(|f| f.number.as_str()).collect();
    let expected: Vec<String> = (1..=48).map(|n| format!("F{n:02}")).collect();
    assert_eq!(numbers, expected, "docs/FAULTS.md numbers its 48 faults F01..F48 in order");
    let mut unknown = Vec::new();
    for fault in &faults {
        for test in &fault.tests {
            let (file, path) = test.split_once("::").unwrap_or((test, ""));
            let name = path.rsplit("::").next().unwrap_or_default();
            if name.is_empty() || !defines(file, name) {
                unknown.push(format!("{}: {test}", fault.number));
            }
        }
        assert!(!fault.tests.is_empty() || fault.missing, "{}: neither tests nor MISSING", fault.number);
    }
    assert!(unknown.is_empty(), "docs/FAULTS.md names tests that do not exist:\n  {}", unknown.join("\n  "));
}

/// Every fault has a test: no `MISSING` is left in the catalogue.
#[test]
fn every_fault_is_proven_by_a_test() {
    let missing: BTreeSet<String> =
        catalogue().into_iter().filter(|f| f.missing || f.tests.is_empty()).map(|f| f.number).collect();
    assert!(missing.is_empty(), "faults without a test in docs/FAULTS.md: {missing:?}");
}
