//! Tidy checks that keep the house style true: the pure core stays pure, every
//! Rust file says what it is for, and no code reads the reserved holdout data.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn domain_core_is_pure() {
    let forbidden = [
        "tokio",
        "tonic",
        "prost",
        "sled",
        "std::fs",
        "SystemTime",
        "Timestamp::now",
        "thread_rng",
        "rand::rng(",
    ];
    let mut files = Vec::new();
    rust_files(&root().join("src/domain"), &mut files);
    assert!(!files.is_empty(), "src/domain has no Rust files");
    let mut offences = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in forbidden {
                if code.contains(word) {
                    offences.push(format!("{}:{}: uses {word}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the pure core must not do I/O:\n{}",
        offences.join("\n")
    );
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "solver/src", "simulations/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            !fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` line:\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_code_reads_reserved_evaluation_data() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "solver", "simulations"] {
        rust_files(&root().join(dir), &mut files);
    }
    let needle = ["_hold", "out"].concat();
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| fs::read_to_string(f).unwrap().contains(&needle))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "holdout files are reserved for acceptance:\n{}",
        offenders.join("\n")
    );
}
