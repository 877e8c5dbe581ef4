//! Data flows one way through the library (log → model → engine → posterior →
//! estimators → report): no source file may reach itself through the
//! `crate::`/`super::` paths it uses. A circle ties every file on it together,
//! so that none can be read, tested or reused without the others (the Python
//! binding needs the reader and the engine without the CLI).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["engine", "cpu"]`) of every `.rs` file under `src/`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut segs: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                segs.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                segs.pop();
            }
            if path.file_name().unwrap() == "main.rs" {
                continue; // the binary is not part of the library
            }
            out.insert(segs, path);
        }
    }
    out
}

/// The code a file compiles into the library, without comments and tests.
fn library_code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every full path a file names from `crate::` or `super::`, with braces
/// (`crate::a::{b, c::d}`) expanded.
fn paths(code: &str, me: &[String]) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for anchor in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(anchor) {
            let start = from + i;
            from = start + anchor.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            let base: Vec<String> = if anchor == "crate::" {
                Vec::new()
            } else {
                // a module's parent, whether it is `x.rs` or `x/mod.rs`
                me[..me.len().saturating_sub(1)].to_vec()
            };
            expand(&code[from..], base, &mut out);
        }
    }
    out
}

/// Reads `a::b::{c, d::e}` at the start of `rest`, appending each path.
fn expand(rest: &str, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut s = rest;
    loop {
        let ident: String = s
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        s = &s[ident.len()..];
        if ident != "self" {
            prefix.push(ident);
        }
        match s.strip_prefix("::") {
            Some(r) => s = r,
            None => break,
        }
        if let Some(r) = s.strip_prefix('{') {
            let (mut depth, mut item_start) = (0usize, 0usize);
            for (i, c) in r.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        expand(r[item_start..i].trim(), prefix.clone(), out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(r[item_start..i].trim(), prefix.clone(), out);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
    }
    out.push(prefix);
}

/// The file a path lands in: its longest prefix that is a module.
fn resolve<'a>(
    path: &[String],
    mods: &'a BTreeMap<Vec<String>, PathBuf>,
) -> Option<&'a Vec<String>> {
    (1..=path.len())
        .rev()
        .find_map(|n| mods.get_key_value(&path[..n]).map(|(k, _)| k))
}

type Graph = BTreeMap<Vec<String>, BTreeSet<Vec<String>>>;

fn import_graph(src: &Path) -> Graph {
    let mods = modules(src);
    let mut graph = Graph::new();
    for (me, file) in &mods {
        let code = library_code(&std::fs::read_to_string(file).unwrap());
        let targets = graph.entry(me.clone()).or_default();
        for p in paths(&code, me) {
            if let Some(t) = resolve(&p, &mods) {
                if t != me && !t.is_empty() {
                    targets.insert(t.clone());
                }
            }
        }
    }
    graph
}

/// One circle of the graph, if it has any (depth-first search).
fn find_circle(graph: &Graph) -> Option<Vec<Vec<String>>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        v: &Vec<String>,
        graph: &Graph,
        marks: &mut BTreeMap<Vec<String>, Mark>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        marks.insert(v.clone(), Mark::Open);
        stack.push(v.clone());
        for w in graph.get(v).into_iter().flatten() {
            match marks.get(w) {
                Some(Mark::Open) => {
                    let at = stack.iter().position(|s| s == w).unwrap();
                    let mut circle = stack[at..].to_vec();
                    circle.push(w.clone());
                    return Some(circle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(c) = visit(w, graph, marks, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(v.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for v in graph.keys() {
        if !marks.contains_key(v) {
            if let Some(c) = visit(v, graph, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_source_file_imports_itself_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    // the parser must see the imports it is meant to judge
    let engine = graph.get(&vec!["engine".to_string()]).unwrap();
    assert!(engine.contains(&vec!["model".to_string()]), "{engine:?}");
    if let Some(circle) = find_circle(&graph) {
        let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
        panic!("an import circle: {}", names.join(" → "));
    }
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let m = |s: &str| vec![s.to_string()];
    let mut g = Graph::new();
    g.insert(m("a"), [m("b")].into());
    g.insert(m("b"), [m("c")].into());
    g.insert(m("c"), [m("a")].into());
    assert_eq!(find_circle(&g).unwrap().len(), 4);
    g.insert(m("c"), BTreeSet::new());
    assert_eq!(find_circle(&g), None);
}

#[test]
fn braces_expand_to_every_path() {
    let mut out = Vec::new();
    expand("engine::{cpu::{A, B}, self, C};", Vec::new(), &mut out);
    let joined: Vec<String> = out.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        ["engine::cpu::A", "engine::cpu::B", "engine", "engine::C"]
    );
}
