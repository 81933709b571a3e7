//! Every import points down (issue 12, item 6): each top-level module of `src/` may use only
//! modules of a lower layer, so the call layer's old import circle (routing and context
//! importing `call`, the desk importing `net`) cannot come back unnoticed. Within the two
//! layers marked shared, modules may use each other (they are one domain split in files).

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, lowest first.
const LAYERS: &[(&[&str], bool)] = &[
    (&["timers", "tls", "toml_source"], false),
    (&["sip"], false),
    // RTP/SRTP and SDP describe the same media (codecs, keys).
    (&["sdp", "media"], true),
    // The domain: queues and agents, who is calling, what happened, where calls go.
    (&["acd", "context", "events", "routing"], true),
    // Several nodes: partitions, leases and the leader's messages, over the domain.
    (&["cluster"], false),
    (&["call"], false),
    (&["control", "report"], false),
    (&["desk", "net"], false),
    (&["config"], false),
    (&["serve", "fuzzing"], false),
];

fn layer_of(module: &str) -> Option<(usize, bool)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (mods, _))| mods.contains(&module))
        .map(|(i, (_, shared))| (i, *shared))
}

/// The top-level modules a source file names as `crate::<module>`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_import_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong = Vec::new();
    let mut unplaced = BTreeSet::new();
    for path in all {
        let rel = path.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a file");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some((layer, shared)) = layer_of(&module) else {
            unplaced.insert(module);
            continue;
        };
        let text = std::fs::read_to_string(&path).expect("readable");
        for dep in imports(&text) {
            if dep == module {
                continue;
            }
            let Some((dep_layer, _)) = layer_of(&dep) else {
                unplaced.insert(dep);
                continue;
            };
            if dep_layer > layer || (dep_layer == layer && !shared) {
                wrong.push(format!("{} uses crate::{dep}", rel.display()));
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules with no layer in tests/layers.rs: {unplaced:?}"
    );
    assert!(
        wrong.is_empty(),
        "imports that point up or sideways:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_an_import_that_points_up() {
    // The scan itself: a lower module naming `crate::call` is found.
    let found = imports("use crate::call::Pop;\nlet x = crate::sip::msg::parse;");
    assert!(found.contains("call") && found.contains("sip"));
    let (routing, _) = layer_of("routing").expect("placed");
    let (call, _) = layer_of("call").expect("placed");
    assert!(call > routing);
}
