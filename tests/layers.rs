//! The library's layers (ARCHITECTURE.md, "Layers"): every module of `src/`
//! may use only modules of a lower layer. A use of a module in the same layer
//! (sideways) or a higher one (upward) fails this test, and so does a module
//! that the table does not list. Since every use points strictly down, there
//! can be no cycle between modules.
//!
//! The table is read from ARCHITECTURE.md itself, so the document and the
//! check cannot drift apart. The uses are read from the source: every
//! `crate::NAME` (also inside `use crate::{a, b::c}` groups) and every
//! `super::` that climbs out of its module, outside comments and outside the
//! `#[cfg(test)]` module at the end of a file (unit tests may use the audit).
//! `lib.rs` (the index) and `main.rs` (the binary, above everything) are not
//! checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Module name -> (layer number, layer name), from ARCHITECTURE.md.
fn layers() -> BTreeMap<String, (u32, String)> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md");
    let section = doc
        .split("\n## Layers")
        .nth(1)
        .expect("ARCHITECTURE.md has a \"## Layers\" section");
    let mut table = BTreeMap::new();
    for row in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | 3 | mechanisms | `process`, `channel` | ... |
        let [_, number, name, modules, ..] = cells[..] else {
            continue;
        };
        let Ok(number) = number.parse::<u32>() else {
            continue;
        };
        for module in modules.split(',') {
            let module = module.trim().trim_matches('`');
            assert!(
                table
                    .insert(module.to_string(), (number, name.to_string()))
                    .is_none(),
                "{module} is in two layers"
            );
        }
    }
    assert!(table.len() > 10, "the layer table was not found: {table:?}");
    table
}

/// The module path of a source file: `src/shm/value.rs` -> [shm, value].
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A line of code: its number, its text without a comment, and how many
/// inline `mod NAME {` blocks it is in (each adds one level for `super::`).
struct Line {
    number: usize,
    code: String,
    inline_depth: usize,
}

/// The code of a file without comments and without its trailing test module.
fn code_lines(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut previous = "";
    let mut braces = 0usize;
    let mut open_mods: Vec<usize> = Vec::new(); // brace depth inside each inline mod
    for (i, line) in text.lines().enumerate() {
        if previous.trim() == "#[cfg(test)]" && line.trim_start().starts_with("mod tests") {
            break;
        }
        previous = line;
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let inline_depth = open_mods.len();
        let words: Vec<&str> = code.split_whitespace().collect();
        let opens_mod =
            words.len() >= 3 && words[words.len() - 1] == "{" && words[words.len() - 3] == "mod";
        for c in code.chars() {
            match c {
                '{' => braces += 1,
                '}' => {
                    braces = braces.saturating_sub(1);
                    if open_mods.last() == Some(&braces) {
                        open_mods.pop();
                    }
                }
                _ => {}
            }
        }
        if opens_mod {
            open_mods.push(braces - 1);
        }
        lines.push(Line {
            number: i + 1,
            code: code.to_string(),
            inline_depth,
        });
    }
    lines
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first names of `crate::` paths on a line (`crate::{a, b::c}` gives a, b).
fn crate_targets(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        out.push(ident_at(&group[i..]).to_string());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident_at(rest).to_string());
        }
    }
    out
}

/// The top-level module a `super::super::x` reaches from `path`, if it leaves
/// the file's own top-level module.
fn super_targets(code: &str, path: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("super::") {
        let mut tail = &rest[at..];
        let mut climbs = 0;
        while let Some(t) = tail.strip_prefix("super::") {
            climbs += 1;
            tail = t;
        }
        if climbs >= path.len() {
            out.push(ident_at(tail).to_string());
        }
        rest = tail;
    }
    out
}

/// What a first path segment names: a module, or one of lib.rs's re-exports.
fn module_of(name: &str) -> &str {
    match name {
        "Error" | "Result" => "error",
        "__conformance_suite" | "conformance_tests" => "conformance",
        other => other,
    }
}

#[derive(Debug)]
struct Use {
    at: String,
    from: String,
    to: String,
}

fn uses() -> Vec<Use> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut uses = Vec::new();
    for file in files {
        let path = module_path(&src, &file);
        if path == ["lib"] || path == ["main"] {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for Line {
            number: line,
            code,
            inline_depth,
        } in code_lines(&text)
        {
            let mut targets = crate_targets(&code);
            let mut inner = path.clone();
            inner.extend((0..inline_depth).map(|_| "(inline)".to_string()));
            targets.extend(super_targets(&code, &inner));
            for target in targets {
                let to = module_of(&target);
                if to != path[0] && to != "Errno" && to != "self" {
                    uses.push(Use {
                        at: format!("src/{}:{line}", file.strip_prefix(&src).unwrap().display()),
                        from: path[0].clone(),
                        to: to.to_string(),
                    });
                }
            }
        }
    }
    uses
}

/// Every use that does not point strictly down, as a sentence.
fn violations(layers: &BTreeMap<String, (u32, String)>, uses: &[Use]) -> Vec<String> {
    let layer = |m: &str| layers.get(m).cloned();
    let mut bad = Vec::new();
    for u in uses {
        match (layer(&u.from), layer(&u.to)) {
            (None, _) => bad.push(format!("{}: module `{}` is in no layer", u.at, u.from)),
            (_, None) => bad.push(format!(
                "{}: `{}` uses `{}`, which is in no layer",
                u.at, u.from, u.to
            )),
            (Some((a, an)), Some((b, bn))) if b >= a => bad.push(format!(
                "{}: `{}` (layer {a}, {an}) uses `{}` (layer {b}, {bn}): {}",
                u.at,
                u.from,
                u.to,
                if a == b { "sideways" } else { "upward" }
            )),
            _ => {}
        }
    }
    bad
}

#[test]
fn every_module_uses_only_lower_layers() {
    let layers = layers();
    let bad = violations(&layers, &uses());
    assert!(
        bad.is_empty(),
        "imports against ARCHITECTURE.md's layers:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_module_of_lib_rs_has_a_layer() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let layers = layers();
    let missing: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .filter(|m| !layers.contains_key(*m))
        .collect();
    assert!(
        missing.is_empty(),
        "modules with no layer in ARCHITECTURE.md: {missing:?}"
    );
}

/// The checker itself: it sees grouped uses, `super::` climbs and re-exports,
/// and it reports an upward and a sideways use (a checker that finds nothing
/// would pass every tree).
#[test]
fn the_checker_sees_upward_and_sideways_uses() {
    assert_eq!(
        crate_targets("use crate::{error::Error, sys, shm::{A, B}};"),
        ["error", "sys", "shm"]
    );
    assert_eq!(
        crate_targets("x.map(crate::Error::from); $crate::conformance::x"),
        ["Error", "conformance"]
    );
    assert_eq!(crate_targets("use ipckit_crate::x;"), Vec::<String>::new());
    let path = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
    assert_eq!(
        super_targets("super::super::output::x()", &path("grade/supervisor")),
        ["output"]
    );
    assert!(super_targets("super::x", &path("grade/supervisor")).is_empty());
    assert_eq!(
        super_targets("super::audit::x", &path("process")),
        ["audit"]
    );
    assert_eq!(
        code_lines("a\n// crate::audit\n#[cfg(test)]\nmod tests {\ncrate::audit\n}").len(),
        3
    );
    let layers = layers();
    let planted = [
        ("sync", "queue"),
        ("process", "audit"),
        ("sync", "shm"),
        ("mq", "sync"),
        ("bench", "programs"),
    ];
    for (from, to) in planted {
        let u = Use {
            at: "planted".into(),
            from: from.into(),
            to: to.into(),
        };
        let bad = violations(&layers, &[u]);
        assert_eq!(bad.len(), 1, "{from} -> {to} passed the check");
    }
}
