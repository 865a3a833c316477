//! Keeps the house in layers: reads core's sources and fails on an import
//! from a layer above, or on anything impure inside the machine.
//!
//! Layers, lowest first (also listed in `src/lib.rs`):
//! 0. `platform`: the only module that names std's threads, locks or clock.
//! 1. `machine` (pure state and transitions) and `seeded` (the seeded-bug
//!    identifiers it switches on).
//! 2. `config`, `error`, `timer`, `trace`, `wakers`, `plain`, `inbox`,
//!    `watch`: configuration, errors, the timer service, the trace log, the
//!    async waits' waker lists, the machine over plain values, a pool's
//!    inbox, the blocking monitor's view of a worker.
//! 3. `shared`: the engine's shared objects (types that reference each
//!    other, with the lock that protects each field).
//! 4. the mechanism: `pool`, `blocking`, `flush`, `lifecycle`,
//!    `pool_workqueue`, `queue`, `cancel`, `manager`, `worker`, `rescuer`,
//!    `hotplug`, `monitor`.
//! 5. the public API: `work`, `delayed`, `job`, `workqueue`, `system`,
//!    `default`, `model_check`.
//!
//! A module may import from its own layer and the layers below, and no
//! modules import each other in a cycle, also within a layer.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layer of a top-level module of core (by its name under `src/`).
fn layer_of(module: &str) -> usize {
    match module {
        "platform" => 0,
        "machine" | "seeded" => 1,
        "config" | "error" | "timer" | "trace" | "wakers" | "plain" | "inbox" | "watch" | "report" => 2,
        "shared" => 3,
        "pool" | "blocking" | "flush" | "lifecycle" | "pool_workqueue" | "queue" | "cancel" | "manager" | "worker"
        | "rescuer" | "hotplug" | "monitor" | "watchdog" | "stats" => 4,
        "work" | "delayed" | "job" | "workqueue" | "system" | "default" | "model_check" => 5,
        other => panic!("module `{other}` has no layer: add it to layer_of and to the list in lib.rs"),
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The top-level module a source file belongs to (`src/machine/pwq.rs` →
/// `machine`, `src/lib.rs` → `lib`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("non-empty").as_os_str().to_string_lossy().to_string();
    first.trim_end_matches(".rs").to_string()
}

/// The modules named by `crate::<module>` paths in `text` (`crate::X` where
/// X is a type re-exported at the root, like `crate::SeededBug`, counts as
/// the module defining it: the caller maps those).
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let name: String = rest[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.push((number + 1, name));
            rest = &rest[at + 7..];
        }
    }
    found
}

/// Root re-exports named as `crate::Name`, mapped to the module that
/// defines them.
fn defining_module(name: &str) -> &str {
    match name {
        "SeededBug" => "seeded",
        "Config" | "BuildError" => "config",
        "Platform" | "Std" => "platform",
        other if other.chars().next().is_some_and(char::is_uppercase) => "lib",
        other => other,
    }
}

/// The import violations of the sources under `src`.
fn upward_imports(src: &Path) -> Vec<String> {
    let mut violations = Vec::new();
    for file in sources(src) {
        let module = module_of(src, &file);
        if module == "lib" {
            continue; // the root declares every module
        }
        let text = fs::read_to_string(&file).expect("readable source");
        for (line, name) in crate_paths(&text) {
            let target = defining_module(&name);
            if target == "lib" || target == module {
                continue;
            }
            if layer_of(target) > layer_of(&module) {
                violations.push(format!(
                    "{}:{line}: `{module}` (layer {}) imports `crate::{name}` from `{target}` (layer {})",
                    file.display(),
                    layer_of(&module),
                    layer_of(target)
                ));
            }
        }
    }
    violations
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_module_imports_from_a_layer_above() {
    let violations = upward_imports(&src());
    assert!(violations.is_empty(), "upward imports:\n{}", violations.join("\n"));
}

/// The machine names no platform, lock, atomic, thread, clock or `unsafe`,
/// and stays small: files of at most 400 lines, functions of at most 60.
#[test]
fn the_machine_is_pure_and_small() {
    const FORBIDDEN: [&str; 8] =
        ["std::sync", "std::thread", "std::time", "Instant", "Platform", "atomic", "unsafe", "rand::"];
    let mut problems = Vec::new();
    for file in sources(&src().join("machine")) {
        let text = fs::read_to_string(&file).expect("readable source");
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > 400 {
            problems.push(format!("{}: {} lines (at most 400)", file.display(), lines.len()));
        }
        for (number, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    problems.push(format!("{}:{}: names `{word}`", file.display(), number + 1));
                }
            }
        }
        problems.extend(long_functions(&file, &lines, 60));
    }
    assert!(problems.is_empty(), "the machine is not pure or not small:\n{}", problems.join("\n"));
}

/// Functions longer than `limit` lines (from a line starting with `fn` or
/// `pub fn` to the closing brace at the same indentation).
fn long_functions(file: &Path, lines: &[&str], limit: usize) -> Vec<String> {
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let is_fn =
            ["fn ", "pub fn ", "pub(crate) fn ", "const fn ", "pub const fn "].iter().any(|p| trimmed.starts_with(p));
        if !is_fn || trimmed.ends_with(';') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = lines[start..].iter().position(|l| *l == close) {
            if end + 1 > limit {
                found.push(format!(
                    "{}:{}: function of {} lines (at most {limit})",
                    file.display(),
                    start + 1,
                    end + 1
                ));
            }
        }
    }
    found
}

/// Module → the modules it names through `crate::` paths (top-level
/// modules only; the crate root and re-exported types excluded).
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(src) {
        let module = module_of(src, &file);
        if module == "lib" {
            continue;
        }
        let text = fs::read_to_string(&file).expect("readable source");
        let deps = graph.entry(module.clone()).or_default();
        for (_, name) in crate_paths(&text) {
            let target = defining_module(&name);
            if target != "lib" && target != module {
                deps.insert(target.to_string());
            }
        }
    }
    graph
}

/// The strongly connected components of more than one module (the import
/// cycles), each sorted.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Reachability closure: small graphs, simplicity over speed.
    let names: Vec<&String> = graph.keys().collect();
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(next) = todo.pop() {
            for dep in graph.get(&next).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = names.iter().map(|n| (*n, reach(n))).collect();
    let mut components: Vec<Vec<String>> = Vec::new();
    for name in &names {
        let mut component: Vec<String> = names
            .iter()
            .filter(|other| reaches[*name].contains(**other) && reaches[**other].contains(*name))
            .map(|n| n.to_string())
            .collect();
        component.sort();
        if component.len() > 1 && !components.contains(&component) {
            components.push(component);
        }
    }
    components
}

#[test]
fn no_import_cycles() {
    let found = cycles(&import_graph(&src()));
    assert!(found.is_empty(), "modules that import each other in a cycle: {found:?}");
}

/// The check itself can fail: a bad import in a scratch tree is reported.
#[test]
fn an_upward_import_is_reported() {
    let scratch = std::env::temp_dir().join(format!("cmwq-layers-{}", std::process::id()));
    let machine = scratch.join("machine");
    fs::create_dir_all(&machine).unwrap();
    fs::write(machine.join("bad.rs"), "use crate::pool::Pool;\nuse crate::machine::policy;\n").unwrap();
    fs::write(scratch.join("platform.rs"), "use crate::workqueue::WqId;\n").unwrap();
    let violations = upward_imports(&scratch);
    fs::remove_dir_all(&scratch).unwrap();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("`machine` (layer 1) imports `crate::pool`"), "{violations:?}");
    assert!(violations[1].contains("`platform` (layer 0) imports `crate::workqueue`"), "{violations:?}");
}

/// The cycle finder finds a cycle between two modules, and none in a chain.
#[test]
fn a_cycle_is_found() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            g.entry(from.to_string()).or_default().insert(to.to_string());
            g.entry(to.to_string()).or_default();
        }
        g
    };
    assert_eq!(cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])), vec![vec!["a", "b", "c"]]);
    assert!(cycles(&graph(&[("a", "b"), ("b", "c")])).is_empty());
}
