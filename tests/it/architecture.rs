//! The house rules of `src/`, checked on the source itself (docs/architecture.md):
//!
//! - **No import cycle between modules.** Every module file is a node; every path it names
//!   (`use` declarations, paths in code and in macro arguments) is an edge to the module file
//!   that *defines* the named item, re-exports followed to their source. A parent's `mod`
//!   declarations are structure, not edges. The graph must be acyclic: a strongly connected
//!   component of two or more files is reported with the paths that close it.
//! - **One direction between layers.** Domain modules name neither actix nor `http` nor
//!   `gateway`; `gateway` does not name `http`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// One module: its file, and what the file declares.
#[derive(Default)]
struct Module {
    file: PathBuf,
    /// Child modules by name → their logical path.
    children: BTreeMap<String, Vec<String>>,
    /// Items defined here (structs, functions, traits, ...).
    items: BTreeSet<String>,
    /// `use` bindings: name → absolute path (crate-relative segments); `*` globs listed apart.
    uses: BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

/// Where a path was named: for the report.
#[derive(Clone, Debug)]
struct Site {
    line: usize,
    text: String,
}

struct Crate {
    modules: BTreeMap<Vec<String>, Module>,
    /// The module (logical path) whose file holds each inline module, e.g. `mod tests {}`.
    file_of: BTreeMap<Vec<String>, Vec<String>>,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Reads the module tree from `src/lib.rs`.
fn load() -> (Crate, BTreeMap<Vec<String>, syn::File>) {
    let mut krate = Crate { modules: BTreeMap::new(), file_of: BTreeMap::new() };
    let mut files = BTreeMap::new();
    let mut queue = vec![(Vec::<String>::new(), src().join("lib.rs"))];
    while let Some((path, file)) = queue.pop() {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // Where this file's child module files live.
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("lib.rs" | "mod.rs") => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        declare(&mut krate, &path, &path, &file, &ast.items, &dir, &mut queue);
        files.insert(path, ast);
    }
    (krate, files)
}

/// Records the items of one module (a file, or an inline `mod` inside one), and queues the
/// files of its child modules.
fn declare(
    krate: &mut Crate,
    path: &[String],
    file_module: &[String],
    file: &Path,
    items: &[syn::Item],
    dir: &Path,
    queue: &mut Vec<(Vec<String>, PathBuf)>,
) {
    let mut module = Module { file: file.to_path_buf(), ..Module::default() };
    krate.file_of.insert(path.to_vec(), file_module.to_vec());
    for item in items {
        let name = match item {
            syn::Item::Const(i) => Some(i.ident.to_string()),
            syn::Item::Enum(i) => Some(i.ident.to_string()),
            syn::Item::Fn(i) => Some(i.sig.ident.to_string()),
            syn::Item::Macro(i) => i.ident.as_ref().map(|i| i.to_string()),
            syn::Item::Static(i) => Some(i.ident.to_string()),
            syn::Item::Struct(i) => Some(i.ident.to_string()),
            syn::Item::Trait(i) => Some(i.ident.to_string()),
            syn::Item::TraitAlias(i) => Some(i.ident.to_string()),
            syn::Item::Type(i) => Some(i.ident.to_string()),
            syn::Item::Union(i) => Some(i.ident.to_string()),
            syn::Item::Use(u) => {
                bindings(&u.tree, Vec::new(), &mut module.uses, &mut module.globs);
                None
            }
            syn::Item::Mod(m) => {
                let name = m.ident.to_string();
                let mut child = path.to_vec();
                child.push(name.clone());
                module.children.insert(name.clone(), child.clone());
                match &m.content {
                    Some((_, inner)) => declare(krate, &child, file_module, file, inner, &dir.join(&name), queue),
                    None => {
                        let candidates = [dir.join(format!("{name}.rs")), dir.join(&name).join("mod.rs")];
                        let found = candidates.iter().find(|p| p.is_file()).cloned();
                        queue.push((
                            child,
                            found.unwrap_or_else(|| panic!("no file for module {name} in {}", dir.display())),
                        ));
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(n) = name {
            module.items.insert(n);
        }
    }
    krate.modules.insert(path.to_vec(), module);
}

/// The absolute form of a path written in module `at`: `crate::…`, `super::…`, `self::…`; None
/// for a path that starts elsewhere (an external crate, std, a local name).
fn absolute(at: &[String], segments: &[String], krate: Option<&Crate>) -> Option<Vec<String>> {
    let mut base: Vec<String> = at.to_vec();
    let mut rest = segments;
    match segments.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &segments[1..];
        }
        Some("self") => rest = &segments[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        Some(first) => {
            // A child module of `at`, named without `self::` (2018 paths).
            let is_child = krate.and_then(|k| k.modules.get(at)).is_some_and(|m| m.children.contains_key(first));
            if !is_child {
                return None;
            }
        }
        None => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The names a use tree binds, each with the path it names (as written); globs apart.
fn bindings(
    tree: &syn::UseTree,
    prefix: Vec<String>,
    uses: &mut BTreeMap<String, Vec<String>>,
    globs: &mut Vec<Vec<String>>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            let mut next = prefix;
            next.push(p.ident.to_string());
            bindings(&p.tree, next, uses, globs);
        }
        syn::UseTree::Name(n) => {
            let mut full = prefix;
            let name = n.ident.to_string();
            if name != "self" {
                full.push(name.clone());
            }
            let bound = if name == "self" { full.last().cloned().unwrap_or_default() } else { name };
            uses.insert(bound, full);
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix;
            if r.ident != "self" {
                full.push(r.ident.to_string());
            }
            uses.insert(r.rename.to_string(), full);
        }
        syn::UseTree::Glob(_) => globs.push(prefix),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                bindings(t, prefix.clone(), uses, globs);
            }
        }
    }
}

impl Crate {
    /// The module that defines what `path` (absolute) names; None when it leaves the crate or
    /// names a module itself (naming a module is not a dependency on its file).
    fn definer(&self, path: &[String], depth: usize) -> Option<Vec<String>> {
        if depth > 16 {
            return None;
        }
        let mut module: Vec<String> = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let m = self.modules.get(&module)?;
            if let Some(child) = m.children.get(segment) {
                module = child.clone();
                continue;
            }
            if m.items.contains(segment) {
                return Some(module);
            }
            if let Some(target) = m.uses.get(segment) {
                let target = absolute(&module, target, Some(self))?;
                let mut rest = target;
                rest.extend(path[i + 1..].iter().cloned());
                return self.definer(&rest, depth + 1);
            }
            for glob in &m.globs {
                if let Some(base) = absolute(&module, glob, Some(self)) {
                    let mut through = base;
                    through.extend(path[i..].iter().cloned());
                    if let Some(found) = self.definer(&through, depth + 1) {
                        return Some(found);
                    }
                }
            }
            // Not found (generated by a macro, say): the module it was looked up in.
            return Some(module);
        }
        None
    }

    /// The file node of a logical module.
    fn file_node(&self, module: &[String]) -> Vec<String> {
        self.file_of.get(module).cloned().unwrap_or_else(|| module.to_vec())
    }
}

/// Collects the paths named in one file, each with the logical module it is written in.
struct Paths<'a> {
    krate: &'a Crate,
    /// The logical module being visited (changes inside inline modules).
    at: Vec<String>,
    /// Bindings of `use` declarations anywhere in the file (functions' own included).
    local: BTreeMap<String, Vec<String>>,
    /// Absolute paths into the crate, with where they were named.
    found: Vec<(Vec<String>, Site)>,
    /// External crates and `crate::` roots named, for the layer rules.
    roots: Vec<(String, Site)>,
}

impl Paths<'_> {
    fn record(&mut self, segments: Vec<String>, line: usize) {
        let Some(first) = segments.first().cloned() else { return };
        let site = Site { line, text: segments.join("::") };
        let resolved = match first.as_str() {
            "crate" | "self" | "super" => absolute(&self.at, &segments, Some(self.krate)),
            _ => match self.local.get(&first) {
                Some(bound) => absolute(&self.at, bound, Some(self.krate)).map(|mut p| {
                    p.extend(segments[1..].iter().cloned());
                    p
                }),
                None => absolute(&self.at, &segments, Some(self.krate)),
            },
        };
        match resolved {
            Some(p) => {
                if let Some(top) = p.first() {
                    self.roots.push((format!("crate::{top}"), site.clone()));
                }
                self.found.push((p, site));
            }
            None => {
                let root = match self.local.get(&first) {
                    Some(bound) => bound.first().cloned().unwrap_or(first),
                    None => first,
                };
                self.roots.push((root, site));
            }
        }
    }

    fn record_path(&mut self, path: &syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = path.segments.first().map_or(0, |s| s.ident.span().start().line);
        if segments.len() > 1 || segments.first().is_some_and(|s| self.local.contains_key(s)) {
            self.record(segments, line);
        }
    }

    /// Paths inside a macro's tokens: `a::b::c` sequences.
    fn record_tokens(&mut self, tokens: proc_macro2::TokenStream) {
        let mut run: Vec<(String, usize)> = Vec::new();
        let mut colons = 0;
        let flush = |run: &mut Vec<(String, usize)>, me: &mut Self| {
            if run.len() > 1 {
                let line = run[0].1;
                me.record(run.iter().map(|(s, _)| s.clone()).collect(), line);
            }
            run.clear();
        };
        for tree in tokens {
            match tree {
                proc_macro2::TokenTree::Ident(i) => {
                    if !run.is_empty() && colons != 2 {
                        flush(&mut run, self);
                    }
                    run.push((i.to_string(), i.span().start().line));
                    colons = 0;
                }
                proc_macro2::TokenTree::Punct(p) if p.as_char() == ':' && !run.is_empty() => colons += 1,
                proc_macro2::TokenTree::Group(g) => {
                    flush(&mut run, self);
                    colons = 0;
                    self.record_tokens(g.stream());
                }
                _ => {
                    flush(&mut run, self);
                    colons = 0;
                }
            }
        }
        flush(&mut run, self);
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_some() {
            self.at.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.at.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut uses = BTreeMap::new();
        let mut globs = Vec::new();
        bindings(&u.tree, Vec::new(), &mut uses, &mut globs);
        let line = u.use_token.span.start().line;
        for (_, full) in uses {
            if full.len() > 1 || matches!(full.first().map(String::as_str), Some("crate" | "super" | "self")) {
                self.record(full, line);
            }
        }
        for g in globs {
            let mut g = g;
            g.push("*".into());
            self.record(g, line);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.record_path(path);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.record_path(&mac.path);
        self.record_tokens(mac.tokens.clone());
    }
}

/// Every `use` binding of a file, wherever it is written.
struct LocalUses {
    uses: BTreeMap<String, Vec<String>>,
}

impl<'ast> Visit<'ast> for LocalUses {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut globs = Vec::new();
        bindings(&u.tree, Vec::new(), &mut self.uses, &mut globs);
    }
}

/// An edge between two module files, with where it was named.
type Edges = BTreeMap<(Vec<String>, Vec<String>), Vec<Site>>;

/// What each module file names outside the crate (`actix_web`) or at the crate's top
/// (`crate::http`).
type Roots = BTreeMap<Vec<String>, Vec<(String, Site)>>;

/// The edges between module files, and the roots each names.
fn edges(krate: &Crate, files: &BTreeMap<Vec<String>, syn::File>) -> (Edges, Roots) {
    let mut edges: Edges = BTreeMap::new();
    let mut roots = BTreeMap::new();
    for (module, ast) in files {
        let mut local = LocalUses { uses: BTreeMap::new() };
        local.visit_file(ast);
        let mut paths = Paths { krate, at: module.clone(), local: local.uses, found: Vec::new(), roots: Vec::new() };
        paths.visit_file(ast);
        for (path, site) in paths.found {
            let Some(definer) = krate.definer(&path, 0) else { continue };
            let (from, to) = (krate.file_node(module), krate.file_node(&definer));
            if from != to {
                edges.entry((from, to)).or_default().push(site);
            }
        }
        roots.insert(module.clone(), paths.roots);
    }
    (edges, roots)
}

/// The strongly connected components of two or more nodes (Tarjan).
fn cycles(nodes: &BTreeSet<Vec<String>>, edges: &Edges) -> Vec<Vec<Vec<String>>> {
    let index: BTreeMap<&Vec<String>, usize> = nodes.iter().enumerate().map(|(i, n)| (n, i)).collect();
    let names: Vec<&Vec<String>> = nodes.iter().collect();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (from, to) in edges.keys() {
        if let (Some(&a), Some(&b)) = (index.get(from), index.get(to)) {
            out[a].push(b);
        }
    }
    struct State {
        next: usize,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on: Vec<bool>,
        sccs: Vec<Vec<usize>>,
    }
    fn strong(v: usize, out: &[Vec<usize>], s: &mut State) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on[v] = true;
        for &w in &out[v] {
            match s.index[w] {
                None => {
                    strong(w, out, s);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on[w] = false;
                scc.push(w);
                if w == v {
                    break;
                }
            }
            s.sccs.push(scc);
        }
    }
    let n = names.len();
    let mut s = State {
        next: 0,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on: vec![false; n],
        sccs: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            strong(v, &out, &mut s);
        }
    }
    s.sccs
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut c: Vec<Vec<String>> = c.into_iter().map(|i| names[i].clone()).collect();
            c.sort();
            c
        })
        .collect()
}

fn name(module: &[String]) -> String {
    if module.is_empty() { "crate".into() } else { module.join("::") }
}

/// A shortest cycle through the files of `component`: each file, and where it names the next.
fn shortest_cycle(component: &[Vec<String>], edges: &Edges) -> Vec<(Vec<String>, Site)> {
    let inside = |n: &Vec<String>| component.contains(n);
    let mut best: Option<Vec<Vec<String>>> = None;
    for start in component {
        // Breadth first from `start` back to it, inside the component.
        let mut previous: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        let mut frontier = vec![start.clone()];
        let mut closing = None;
        'search: while !frontier.is_empty() {
            let mut next = Vec::new();
            for node in &frontier {
                for (from, to) in edges.keys().filter(|(f, t)| f == node && inside(t)) {
                    if to == start {
                        closing = Some(from.clone());
                        break 'search;
                    }
                    if !previous.contains_key(to) {
                        previous.insert(to.clone(), from.clone());
                        next.push(to.clone());
                    }
                }
            }
            frontier = next;
        }
        if let Some(last) = closing {
            let mut path = vec![last.clone()];
            let mut at = last;
            while &at != start {
                at = previous[&at].clone();
                path.push(at.clone());
            }
            path.reverse();
            if best.as_ref().is_none_or(|b| path.len() < b.len()) {
                best = Some(path);
            }
        }
    }
    let path = best.unwrap_or_default();
    (0..path.len())
        .map(|i| {
            let (from, to) = (&path[i], &path[(i + 1) % path.len()]);
            (from.clone(), edges[&(from.clone(), to.clone())][0].clone())
        })
        .collect()
}

#[test]
fn no_module_imports_its_way_back_to_itself() {
    let (krate, files) = load();
    let (edges, _) = edges(&krate, &files);
    assert!(edges.len() > 100, "the paths of src/ were read: {} edges", edges.len());
    let nodes: BTreeSet<Vec<String>> = files.keys().cloned().collect();
    let found = cycles(&nodes, &edges);
    let mut report = String::new();
    for c in &found {
        let names: Vec<String> = c.iter().map(|m| name(m)).collect();
        report.push_str(&format!(
            "\n{} module files import each other: {}\na shortest cycle:\n",
            c.len(),
            names.join(", ")
        ));
        for (from, site) in shortest_cycle(c, &edges) {
            let file = krate.modules.get(&from).map(|m| m.file.display().to_string()).unwrap_or_default();
            report.push_str(&format!("  {}  ({file}:{} names {})\n", name(&from), site.line, site.text));
        }
    }
    assert!(found.is_empty(), "{report}");
}

/// The modules below `http` and `gateway`: they take what they need as arguments.
const DOMAIN: [&str; 15] = [
    "audit",
    "clock",
    "config",
    "deliver",
    "model",
    "normalize",
    "pipeline",
    "route",
    "secrecy",
    "store",
    "telemetry",
    "threads",
    "tls",
    "token",
    "fuzzing",
];

#[test]
fn the_layers_point_one_way() {
    let (krate, files) = load();
    let (_, roots) = edges(&krate, &files);
    let mut wrong = Vec::new();
    for (module, named) in &roots {
        let Some(top) = module.first().map(String::as_str) else { continue };
        let forbidden: &[&str] = if DOMAIN.contains(&top) {
            &["actix_web", "actix_tls", "actix_http", "tracing_actix_web", "crate::http", "crate::gateway"]
        } else if top == "gateway" {
            &["actix_web", "actix_tls", "actix_http", "tracing_actix_web", "crate::http"]
        } else {
            continue;
        };
        for (root, site) in named {
            if forbidden.contains(&root.as_str()) {
                let file = &krate.modules[module].file;
                wrong.push(format!("{}:{}: {} names {}", file.display(), site.line, name(module), site.text));
            }
        }
    }
    assert!(wrong.is_empty(), "the domain names the layers above it:\n{}", wrong.join("\n"));
}
