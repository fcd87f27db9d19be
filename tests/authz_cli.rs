//! The binary's side of authentication: `spares serve` with no key refuses
//! to start and says how to make one; `spares keys create --data-dir` prints
//! a key once that then works with `--api-key` / `SPARES_API_KEY`;
//! `--insecure-dev` is announced on stderr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::process::spawn;
use std::process::Command;

fn spares() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spares"));
    command.env_remove("SPARES_API_KEY").env("RUST_LOG", "warn");
    command
}

#[test]
fn serve_without_a_key_refuses_to_start_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = spares()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("spares keys create --role admin --data-dir"),
        "{stderr}"
    );
    assert!(stderr.contains("--insecure-dev"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_key_works_against_the_server_and_no_key_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let output = spares()
        .args([
            "keys",
            "create",
            "--role",
            "admin",
            "--name",
            "first",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let key = stdout
        .split_whitespace()
        .find(|w| w.starts_with("spk_"))
        .expect("the key is printed")
        .to_string();
    let listed = spares()
        .args(["keys", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("admin") && listed.contains("first"),
        "{listed}"
    );
    assert!(
        !listed.contains(&key),
        "a list never shows a secret: {listed}"
    );

    // The process helper would add its own key; start the binary by hand
    // through it with --insecure-dev absent but the directory already keyed.
    let server = spawn(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let url = server.url.clone();
    let run = move |key: Option<&str>| {
        let mut command = spares();
        command.args(["locations", "--server", &url]);
        if let Some(key) = key {
            command.env("SPARES_API_KEY", key);
        }
        command.output().unwrap()
    };
    let (with, without) = tokio::task::spawn_blocking({
        let key = key.clone();
        move || (run(Some(&key)), run(None))
    })
    .await
    .unwrap();
    assert!(with.status.success(), "{with:?}");
    assert!(!without.status.success());
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(
        stderr.contains("Unauthenticated") || stderr.contains("credentials"),
        "{stderr}"
    );
    server.kill();
}

#[test]
fn insecure_dev_is_announced_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(&[
        "serve",
        "--insecure-dev",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("AUTHENTICATION IS OFF"), "{log}");
    drop(log);
    server.kill();
}
