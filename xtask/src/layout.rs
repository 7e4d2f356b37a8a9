//! `cargo xtask layout`: no import circle between files of different components.
//!
//! Every workspace crate's `src/` is read as text: each file's `use crate::…`,
//! `use super::…` and `use self::…` trees (braces expanded) and the `crate::a::b` /
//! `super::a` paths in its code name other files of the crate, the longest module prefix
//! that is a file. A circle of such imports is allowed only among sibling files of one folder
//! below `src/` (the reader and the writer of one format); any other circle fails, named file
//! by file. A crate's top-level files are each a component of their own.
//!
//! Unit-test files (`tests.rs`) and `#[cfg(test)]` modules are left out: tests may reach
//! anywhere. A name a root file (`lib.rs`, a folder's `mod.rs`) re-exports with `pub use`
//! leads to the file that defines it, so importing through a facade is importing the
//! definition; and the facade itself depends on a re-exported file only if it uses the name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// The crates whose files are checked.
const CRATES: &[&str] = &[
    "shared-schema",
    "store",
    "alerts",
    "forward",
    "symbolicate",
    "service-logger",
    "ingest-server",
    "reporter-wasm",
    "xtask",
];

/// `cargo xtask layout`: fails with every circle between components.
pub(crate) fn check() -> Result<()> {
    let root = cmd::root();
    let mut circles = Vec::new();
    let mut files = 0;
    for krate in CRATES {
        let src = root.join(krate).join("src");
        let graph = Graph::read(&src)?;
        files += graph.modules.len();
        for circle in graph.circles_between_components() {
            circles.push(
                circle
                    .iter()
                    .map(|f| format!("{krate}/src/{}", f.display()))
                    .collect::<Vec<_>>()
                    .join(" -> "),
            );
        }
    }
    if !circles.is_empty() {
        bail!(
            "import circles between components (docs/ARCHITECTURE.md, \"Floors\"):\n  {}",
            circles.join("\n  ")
        );
    }
    println!(
        "layout: {files} files in {} crates, no circle between components",
        CRATES.len()
    );
    Ok(())
}

/// The files of one crate (by module path) and what each imports.
struct Graph {
    /// Module path (`["notify", "slack"]`) to file, relative to `src/`.
    modules: BTreeMap<Vec<String>, PathBuf>,
    /// File to the files it imports.
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    /// Per root file (`lib.rs`, `mod.rs`): a name it re-exports to the path it names.
    reexports: BTreeMap<PathBuf, BTreeMap<String, Vec<String>>>,
}

impl Graph {
    fn read(src: &Path) -> Result<Graph> {
        let mut modules = BTreeMap::new();
        for file in rust_files(src)? {
            let rel = file.strip_prefix(src)?.to_owned();
            if let Some(path) = module_path(&rel) {
                modules.insert(path, rel);
            }
        }
        let mut graph = Graph {
            modules,
            edges: BTreeMap::new(),
            reexports: BTreeMap::new(),
        };
        let mut code_of = Vec::new();
        for (module, rel) in &graph.modules {
            let text = std::fs::read_to_string(src.join(rel))
                .with_context(|| format!("reading {}", rel.display()))?;
            let code = without_tests(&strip_comments_and_strings(&text));
            code_of.push((module.clone(), rel.clone(), code));
        }
        for (module, rel, code) in &code_of {
            if is_root(rel) {
                let names = reexported(code)
                    .into_iter()
                    .map(|(name, path)| (name, graph.absolute(module, path)))
                    .collect();
                graph.reexports.insert(rel.clone(), names);
            }
        }
        for (module, rel, code) in &code_of {
            let mut targets = BTreeSet::new();
            for path in imported_paths(code, is_root(rel)) {
                let path = graph.absolute(module, path);
                if let Some(target) = graph.resolve(module, &path, 0)
                    && target != *rel
                {
                    targets.insert(target);
                }
            }
            graph.edges.insert(rel.clone(), targets);
        }
        Ok(graph)
    }

    /// A path relative to a child module of `module` (`use config::X;` in a `mod.rs`) made
    /// `self::config::X`; other paths as they are.
    fn absolute(&self, module: &[String], path: Vec<String>) -> Vec<String> {
        let Some(first) = path.first() else {
            return path;
        };
        if matches!(first.as_str(), "crate" | "super" | "self") {
            return path;
        }
        let mut child = module.to_vec();
        child.push(first.clone());
        if self.modules.contains_key(&child) {
            std::iter::once("self".to_owned()).chain(path).collect()
        } else {
            path
        }
    }

    /// The file a path names, seen from `module`: the longest module prefix that is a file,
    /// or, where that is a root file re-exporting the next name, the file the re-export names.
    fn resolve(&self, module: &[String], path: &[String], depth: usize) -> Option<PathBuf> {
        let (mut base, rest): (Vec<String>, &[String]) = match path.first()?.as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "self" => (module.to_vec(), &path[1..]),
            "super" => {
                let mut base = module.to_vec();
                let mut rest = path;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                // `super` in `a/b.rs` (module a::b) is `a`, in `a/mod.rs` (module a) the crate.
                (base, rest)
            }
            _ => return None,
        };
        let mut found = self.modules.get(&base).cloned();
        let mut used = 0;
        for segment in rest {
            base.push(segment.clone());
            match self.modules.get(&base) {
                Some(file) => {
                    found = Some(file.clone());
                    used += 1;
                }
                None => {
                    base.pop();
                    break;
                }
            }
        }
        let file = found?;
        if depth < 8
            && let Some(name) = rest.get(used)
            && let Some(target) = self.reexports.get(&file).and_then(|r| r.get(name))
        {
            return self.resolve(&base, target, depth + 1).or(Some(file));
        }
        Some(file)
    }

    /// The circles that join files of different components: of files in different folders,
    /// or of a crate's top-level files (each a component of its own).
    fn circles_between_components(&self) -> Vec<Vec<PathBuf>> {
        self.circles()
            .into_iter()
            .filter(|circle| {
                let folders: BTreeSet<Option<&Path>> = circle.iter().map(|f| f.parent()).collect();
                let one_folder_below_src = folders.len() == 1
                    && folders
                        .iter()
                        .all(|f| f.is_some_and(|f| !f.as_os_str().is_empty()));
                !one_folder_below_src
            })
            .collect()
    }

    /// Every circle: the strongly connected components of more than one file (Tarjan).
    fn circles(&self) -> Vec<Vec<PathBuf>> {
        let nodes: Vec<&PathBuf> = self.edges.keys().collect();
        let index_of: BTreeMap<&PathBuf, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let succ: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| {
                self.edges[*n]
                    .iter()
                    .filter_map(|t| index_of.get(t).copied())
                    .collect()
            })
            .collect();
        let mut tarjan = Tarjan {
            succ: &succ,
            index: vec![None; nodes.len()],
            low: vec![0; nodes.len()],
            on_stack: vec![false; nodes.len()],
            stack: Vec::new(),
            next: 0,
            components: Vec::new(),
        };
        for v in 0..nodes.len() {
            if tarjan.index[v].is_none() {
                tarjan.visit(v);
            }
        }
        tarjan
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| c.into_iter().map(|i| nodes[i].clone()).collect())
            .collect()
    }
}

struct Tarjan<'a> {
    succ: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &self.succ[v] {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort_unstable();
            self.components.push(component);
        }
    }
}

/// `lib.rs`, `main.rs` or a folder's `mod.rs`.
fn is_root(rel: &Path) -> bool {
    rel.file_name()
        .is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs")
}

/// The names a root file re-exports (`pub use a::B;`, `pub(crate) use a::{B, c::D}`), each
/// with the path it names.
fn reexported(code: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let stmt_end = rest[at..].find(';').map_or(rest.len(), |e| at + e);
        if is_public(&rest[..at]) {
            let mut paths = Vec::new();
            expand_tree(&rest[at + 3..stmt_end], &mut Vec::new(), &mut paths);
            for path in paths {
                if let Some(name) = path.last() {
                    out.push((name.clone(), path));
                }
            }
        }
        rest = &rest[stmt_end..];
    }
    out
}

/// Whether the `use` after `before` is `pub` or `pub(...)`.
fn is_public(before: &str) -> bool {
    let before = before.trim_end();
    before.ends_with("pub")
        || (before.ends_with(')')
            && before
                .rfind("pub(")
                .is_some_and(|p| !before[p..].contains('\n')))
}

/// The `.rs` files under `dir`, unit-test files (`tests.rs`) left out.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `a/b.rs` is module `a::b`, `a/mod.rs` is `a`, `lib.rs` (or `main.rs`) the crate.
fn module_path(rel: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop()?;
    let stem = file.strip_suffix(".rs")?;
    match stem {
        "lib" | "main" if parts.is_empty() => {}
        "mod" => {}
        _ => parts.push(stem.to_owned()),
    }
    Some(parts)
}

/// The text with comments removed and string and char literals emptied (so a path in a
/// doc comment or a message is not an import).
fn strip_comments_and_strings(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(bytes.len(), |n| i + n);
            i = end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(bytes.len(), |n| i + n + 2);
            i = end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].bytes().take_while(|b| *b == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 1 + hashes + 1;
            let end = rest[body..]
                .find(&close)
                .map_or(bytes.len(), |n| i + body + n + close.len());
            out.push_str("\"\"");
            i = end;
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = (j + 1).min(bytes.len());
        } else if bytes[i] == b'\'' && is_char_literal(&bytes[i..]) {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("' '");
            i = (j + 1).min(bytes.len());
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `'x'`, `'\n'`, `'\u{1F600}'` rather than a lifetime (`'a`).
fn is_char_literal(bytes: &[u8]) -> bool {
    match bytes.get(1) {
        Some(b'\\') => true,
        Some(_) => {
            let s = String::from_utf8_lossy(&bytes[1..bytes.len().min(6)]).into_owned();
            s.chars().nth(1) == Some('\'')
        }
        None => false,
    }
}

/// The code with every `#[cfg(test)]` item (a `mod tests { ... }` or a `use`) removed.
fn without_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let brace = after.find('{');
        let semi = after.find(';');
        let end = match (brace, semi) {
            (Some(b), Some(s)) if s < b => s + 1,
            (Some(b), _) => matching_brace(after, b).map_or(after.len(), |e| e + 1),
            (None, Some(s)) => s + 1,
            (None, None) => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The index of the `}` closing the `{` at `open`.
fn matching_brace(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Every path this code names: `use` trees expanded, and `crate::`/`super::` paths in
/// expressions and types. In a root file (`is_root`), a `pub use` re-export counts only for
/// the names the file itself uses: a facade does not depend on what it only passes on.
fn imported_paths(code: &str, is_root: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut reexports = Vec::new();
    let mut rest = code;
    let mut other = String::new();
    // `use` statements: from the keyword to the `;`.
    while let Some(at) = find_word(rest, "use") {
        other.push_str(&rest[..at]);
        let stmt_end = rest[at..].find(';').map_or(rest.len(), |e| at + e);
        let tree = &rest[at + 3..stmt_end];
        if is_root && is_public(&rest[..at]) {
            expand_tree(tree, &mut Vec::new(), &mut reexports);
        } else {
            expand_tree(tree, &mut Vec::new(), &mut out);
        }
        rest = &rest[stmt_end..];
    }
    other.push_str(rest);
    out.extend(reexports.into_iter().filter(|path| {
        path.last()
            .is_some_and(|name| find_word(&other, name).is_some())
    }));
    // Paths in code: `crate::a::b`, `super::a`.
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = other[from..].find(start) {
            let at = from + at;
            let before = other[..at].chars().next_back();
            from = at + start.len();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '$') {
                continue;
            }
            let path: Vec<String> = other[at..]
                .split("::")
                .map(|seg| {
                    seg.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|seg| !seg.is_empty())
                .collect();
            out.push(path);
        }
    }
    out
}

/// The start of `word` as a whole word in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(word) {
        let at = from + at;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if boundary(before) && boundary(after) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Expands a use tree (`crate::{a::X, b::{c, d::Y}}`) into its paths, each from `prefix`
/// (paths of other crates come out too; they resolve to no file).
fn expand_tree(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim().trim_start_matches("::");
    let (head, group) = match tree.find('{') {
        Some(open) => {
            let close = matching_brace(tree, open).unwrap_or(tree.len());
            (&tree[..open], Some(&tree[open + 1..close.min(tree.len())]))
        }
        None => (tree, None),
    };
    let depth = prefix.len();
    for seg in head.split("::") {
        let seg = seg.split_whitespace().next().unwrap_or("");
        if !seg.is_empty() && seg != "*" {
            prefix.push(seg.to_owned());
        }
    }
    match group {
        Some(group) => {
            for part in split_top_level(group) {
                expand_tree(part, prefix, out);
            }
        }
        None => {
            if !prefix.is_empty() {
                out.push(prefix.clone());
            }
        }
    }
    prefix.truncate(depth);
}

/// `a, b::{c, d}, e` split at the commas outside braces.
fn split_top_level(group: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, b) in group.bytes().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                parts.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&group[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Graph {
        let dir = std::env::temp_dir().join(format!(
            "xtask-layout-{}-{}",
            std::process::id(),
            files.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let g = Graph::read(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        g
    }

    #[test]
    fn a_circle_across_folders_is_found_and_siblings_are_one_component() {
        let g = graph(&[
            ("lib.rs", "mod a;\nmod b;\nmod c;\npub use a::X;\n"),
            ("c.rs", "use crate::X;\n"),
            (
                "a/mod.rs",
                "mod one;\nmod two;\nuse crate::b::{Y, inner::{Z}};\n",
            ),
            ("a/one.rs", "use super::two::T;\n"),
            ("a/two.rs", "pub(crate) use super::one::U;\n"),
            (
                "b/mod.rs",
                "pub mod inner;\nfn f() { let _ = crate::a::one::g(); }\n",
            ),
            (
                "b/inner.rs",
                "// use crate::a::X; in a comment\nconst S: &str = \"crate::a::two\";\n",
            ),
        ]);
        let circles = g.circles();
        let names: Vec<Vec<String>> = circles
            .iter()
            .map(|c| c.iter().map(|p| p.display().to_string()).collect())
            .collect();
        assert!(
            names.contains(&vec!["a/one.rs".to_owned(), "a/two.rs".to_owned()]),
            "{names:?}"
        );
        // a/mod.rs -> b/mod.rs and b/inner.rs; b/mod.rs -> a/one.rs: no way back to a/mod.rs.
        assert_eq!(circles.len(), 1, "{names:?}");
        assert!(!g.edges[Path::new("b/mod.rs")].contains(Path::new("lib.rs")));
        let a = &g.edges[Path::new("a/mod.rs")];
        assert!(a.contains(Path::new("b/mod.rs")) && a.contains(Path::new("b/inner.rs")));
        assert!(
            g.edges[Path::new("b/inner.rs")].is_empty(),
            "comments and strings name nothing"
        );
        assert!(
            g.edges[Path::new("lib.rs")].is_empty(),
            "a root's re-exports draw no arrow"
        );
        assert!(g.circles_between_components().is_empty());
        // `use crate::X`, re-exported by lib.rs from a, leads to a.
        assert_eq!(
            g.edges[Path::new("c.rs")],
            BTreeSet::from([PathBuf::from("a/mod.rs")])
        );
    }

    #[test]
    fn top_level_files_and_facades_that_use_what_they_export_are_components() {
        // A ring below a worker that imports the worker's message type; an output facade
        // whose own code uses the file output it re-exports, which imports the worker.
        let g = graph(&[
            ("lib.rs", "mod ring;\nmod worker;\nmod out;\n"),
            ("ring.rs", "use crate::worker::Msg;\n"),
            (
                "worker.rs",
                "use crate::ring::Ring;\nuse crate::out::open;\n",
            ),
            (
                "out/mod.rs",
                "mod file;\npub use file::FileOut;\npub fn open() -> FileOut { todo!() }\n",
            ),
            (
                "out/file.rs",
                "use crate::worker::mark;\npub struct FileOut;\n",
            ),
        ]);
        let circles = g.circles_between_components();
        assert_eq!(circles.len(), 1, "{circles:?}");
        let files: BTreeSet<_> = circles[0].iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            files,
            BTreeSet::from(["out/file.rs", "out/mod.rs", "ring.rs", "worker.rs"].map(String::from))
        );
    }

    #[test]
    fn test_modules_are_left_out() {
        let g = graph(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b::B;\n"),
            (
                "b.rs",
                "pub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
            ),
        ]);
        assert!(g.circles().is_empty());
    }
}
