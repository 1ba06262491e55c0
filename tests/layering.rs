//! The layering rules of ARCHITECTURE.md, checked on the source text: which folder may
//! import which, and no import cycle between files.
//!
//! An import is any path through `crate::`, `super::` or a child module declared with
//! `mod name;` (as in `child::run()` or `pub use child::Item`); `mod name;` itself is a
//! declaration, not an import. Test code (`#[cfg(test)]` modules at the end of a file,
//! `tests.rs` and `*_tests.rs` files) is left out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Folder → folders it must never import.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("common", &["relay", "agent", "storage", "cli", "fuzzing"]),
    ("storage", &["relay", "agent", "cli", "fuzzing"]),
    (
        "relay",
        &[
            "agent",
            "cli",
            "fuzzing",
            "storage::sled",
            "storage::jetstream",
        ],
    ),
    ("agent", &["relay", "storage", "cli", "fuzzing"]),
    // The fuzzers' entry points sit beside the command line; neither imports the other.
    ("cli", &["fuzzing"]),
    ("fuzzing", &["cli"]),
];

/// A module path (`["relay", "stream"]`) and the file that defines it.
struct Source {
    module: Vec<String>,
    text: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every non-test source file, keyed by its path relative to `src/`.
fn sources() -> BTreeMap<String, Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = BTreeMap::new();
    for path in files {
        let rel = path.strip_prefix(&src).expect("under src").to_path_buf();
        let name = rel.to_string_lossy().to_string();
        if name.ends_with("tests.rs") || name == "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        // Tests sit at the end of a file, behind `#[cfg(test)]`.
        let code = match text.find("\n#[cfg(test)]") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        let code = strip_comments(&code);
        out.insert(
            name,
            Source {
                module: module_of(&rel),
                text: code,
            },
        );
    }
    out
}

/// The text without `//` comments (doc links are not imports).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths that start at each occurrence of `anchor` (`crate::`, `super::`, `x::`),
/// with `{a, b::c}` groups expanded; each path is its segments after the anchor.
fn paths_after(text: &str, anchor: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(anchor) {
        let at = from + i;
        from = at + anchor.len();
        if text[..at].chars().next_back().is_some_and(is_ident) {
            continue; // `foo_crate::` is not `crate::`
        }
        parse_path(&text[from..], Vec::new(), &mut out);
    }
    out
}

fn parse_path(rest: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let end = group.find('}').unwrap_or(group.len());
        for item in group[..end].split(',') {
            parse_path(item, prefix.clone(), out);
        }
        return;
    }
    let ident: String = rest.chars().take_while(|&c| is_ident(c)).collect();
    if ident.is_empty() {
        if !prefix.is_empty() {
            out.push(prefix);
        }
        return;
    }
    let mut path = prefix;
    path.push(ident.clone());
    match rest[ident.len()..].strip_prefix("::") {
        Some(next) => parse_path(next, path, out),
        None => out.push(path),
    }
}

/// The file of the longest module prefix of `path`, if it is one of ours.
fn resolve(path: &[String], modules: &BTreeMap<Vec<String>, String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n].to_vec()).cloned())
}

/// Child modules a file declares (`mod x;` / `pub mod x;`).
fn children(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("pub(crate) ")
                .or(l.strip_prefix("pub "))
                .unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

/// File → files it imports.
fn import_graph(sources: &BTreeMap<String, Source>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<Vec<String>, String> = sources
        .iter()
        .map(|(f, s)| (s.module.clone(), f.clone()))
        .collect();
    let mut graph = BTreeMap::new();
    for (file, s) in sources {
        // `super` is the parent module, whether the file is `a/b.rs` or `a/b/mod.rs`.
        let parent: Vec<String> = s.module[..s.module.len().saturating_sub(1)].to_vec();
        let mut targets: Vec<Vec<String>> = paths_after(&s.text, "crate::");
        for p in paths_after(&s.text, "super::") {
            let mut full = parent.clone();
            full.extend(p);
            targets.push(full);
        }
        for child in children(&s.text) {
            for p in paths_after(&s.text, &format!("{child}::")) {
                let mut full = s.module.clone();
                full.push(child.clone());
                full.extend(p);
                targets.push(full);
            }
        }
        let edges: BTreeSet<String> = targets
            .iter()
            .filter_map(|p| resolve(p, &modules))
            .filter(|t| t != file)
            .collect();
        graph.insert(file.clone(), edges);
    }
    graph
}

#[test]
fn folders_import_only_what_their_layer_allows() {
    let sources = sources();
    let mut broken = Vec::new();
    for (file, s) in &sources {
        let Some(top) = s.module.first() else {
            continue;
        };
        let Some((_, banned)) = FORBIDDEN.iter().find(|(f, _)| f == top) else {
            continue;
        };
        for path in paths_after(&s.text, "crate::") {
            let joined = path.join("::");
            if let Some(b) = banned
                .iter()
                .find(|b| joined == **b || joined.starts_with(&format!("{b}::")))
            {
                broken.push(format!(
                    "src/{file} imports crate::{joined} ({top}/ may not import {b})"
                ));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn no_file_takes_part_in_an_import_cycle() {
    let graph = import_graph(&sources());
    let mut cycles = Vec::new();
    for start in graph.keys() {
        // A path back to `start` through files greater than it: each cycle once.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    cycles.push(format!("{} -> {start}", path.join(" -> ")));
                } else if next > start && seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_sees_imports_through_every_form() {
    let text =
        "use crate::relay::{state::Relay, auth};\nuse super::x::Y;\nfn f() { child::run(); }";
    let crate_paths = paths_after(text, "crate::");
    assert!(crate_paths.contains(&vec!["relay".into(), "state".into(), "Relay".into()]));
    assert!(crate_paths.contains(&vec!["relay".into(), "auth".into()]));
    assert_eq!(
        paths_after(text, "super::"),
        vec![vec!["x".to_string(), "Y".into()]]
    );
    assert_eq!(paths_after(text, "child::"), vec![vec!["run".to_string()]]);
    assert!(paths_after("my_crate::x", "crate::").is_empty());
    assert_eq!(
        children("mod a;\npub mod b;\npub(crate) mod c;\nmod d {"),
        ["a", "b", "c"]
    );
}
