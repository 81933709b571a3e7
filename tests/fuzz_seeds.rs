//! Every fuzz target (`acd::fuzzing`, run coverage-guided by `cargo fuzz` in `fuzz/`) over its
//! seeds on stable Rust: the torture corpus for the SIP targets, and `fuzz/seeds/<target>/`,
//! where every crash a fuzzer once found is kept. A panic names the target and the file.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.file_name().and_then(|n| n.to_str()) != Some("README.md") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn every_fuzz_target_survives_its_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let torture = root.join("tests/data/sip-torture");
    let mut failures = Vec::new();
    for (name, target) in acd::fuzzing::TARGETS {
        let mut seeds = files(&root.join("fuzz/seeds").join(name));
        if name.starts_with("sip_") {
            seeds.extend(files(&torture.join("rfc4475")));
            seeds.extend(files(&torture.join("rfc5118")));
        }
        assert!(!seeds.is_empty(), "fuzz target {name} has no seeds");
        for seed in seeds {
            let data = std::fs::read(&seed).expect("seed readable");
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failures.push(format!("{name}: {}", seed.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz targets panicked on: {failures:#?}"
    );
}
