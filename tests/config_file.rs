//! The configuration file: the documented example parses and matches the
//! defaults; values are read into `Limits` and TLS settings with relative
//! paths resolved; unknown keys, wrong types and out-of-range values are
//! errors naming file, line and column; and `spares serve --config` uses
//! the file while flags override it (the server starts over TLS from the
//! file, and `--data-dir` wins over the file's `data_dir`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/certs.rs"]
mod certs;
mod common;

use spares::cli::client::{Target, connect};
use spares::config::Limits;
use spares::config_file::{ConfigError, ConfigFile};
use std::path::Path;
use std::time::Duration;

fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
    ConfigFile::parse(text, Path::new("/etc/spares/spares.toml"))
}

/// (line, column) of a parse error, and its message.
fn parse_error(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(ConfigError::Parse {
            path,
            line,
            column,
            message,
        }) => {
            assert_eq!(path, Path::new("/etc/spares/spares.toml"));
            (line, column, message)
        }
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

#[test]
fn the_documented_example_parses_to_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/spares.example.toml");
    let file = ConfigFile::load(Path::new(path)).unwrap();
    let limits = file.limits.apply(Limits::default()).unwrap();
    let defaults = Limits::default();
    assert_eq!(
        format!("{limits:?}"),
        format!("{defaults:?}"),
        "docs/spares.example.toml shows the defaults"
    );
    assert_eq!(file.listen, Some("127.0.0.1:50051".parse().unwrap()));
    assert_eq!(file.tls.reload_seconds, Some(60));
    assert!(file.tls.cert.is_none());
    let rated = file.rate_limit.apply(Limits::default());
    assert_eq!(
        format!("{rated:?}"),
        format!("{defaults:?}"),
        "[rate_limit] shows the defaults"
    );
    assert_eq!(file.auth.open_health, Some(true));
    assert_eq!(file.auth.api_keys, Some(true));
    assert!(file.jwt.public_key.is_none() && file.jwt.jwks.is_none());
}

#[test]
fn values_are_read_and_relative_paths_resolved_against_the_file() {
    let file = parse(
        r#"
listen = "0.0.0.0:6000"
data_dir = "data"
[tls]
cert = "tls/server.pem"
key = "/abs/server.key"
client_ca = "ca.pem"
[limits]
request_timeout_seconds = 2.5
max_batch_items = 10
job_workers = 3
"#,
    )
    .unwrap();
    assert_eq!(file.listen, Some("0.0.0.0:6000".parse().unwrap()));
    assert_eq!(
        file.data_dir.as_deref(),
        Some(Path::new("/etc/spares/data"))
    );
    assert_eq!(
        file.tls.cert.as_deref(),
        Some(Path::new("/etc/spares/tls/server.pem"))
    );
    assert_eq!(file.tls.key.as_deref(), Some(Path::new("/abs/server.key")));
    assert_eq!(
        file.tls.client_ca.as_deref(),
        Some(Path::new("/etc/spares/ca.pem"))
    );
    let limits = file.limits.apply(Limits::default()).unwrap();
    assert_eq!(limits.request_timeout, Duration::from_millis(2500));
    assert_eq!(limits.max_batch_items, 10);
    assert_eq!(limits.job_workers, 3);
    assert_eq!(limits.max_page_size, Limits::default().max_page_size);
}

#[test]
fn bad_files_are_refused_with_line_and_column() {
    // An unknown key, at its position.
    let (line, column, message) =
        parse_error("listen = \"127.0.0.1:1\"\n[limits]\n  request_timeout = 3\n");
    assert_eq!((line, column), (3, 3), "{message}");
    assert!(message.contains("request_timeout"), "{message}");
    // A value of the wrong type.
    let (line, _, message) = parse_error("\n\nlisten = 50051\n");
    assert_eq!(line, 3, "{message}");
    // Out of range, reported at the value.
    let (line, column, message) = parse_error("[limits]\nmax_batch_items = 50001\n");
    assert_eq!((line, column), (2, 19), "{message}");
    assert!(message.contains("1 to 50000"), "{message}");
    let (line, _, message) = parse_error("[limits]\nrequest_timeout_seconds = 0\n");
    assert_eq!(line, 2);
    assert!(message.contains("out of range"), "{message}");
    let (line, _, _) = parse_error("[limits]\nmax_job_work = nan\n");
    assert_eq!(line, 2);
    // Not TOML at all.
    let (line, _, _) = parse_error("listen = \n");
    assert_eq!(line, 1);
    // The whole message names the file.
    let text = parse("[tls]\ncertificate = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(text.starts_with("/etc/spares/spares.toml:2:1:"), "{text}");

    // Values that are fine alone but not together.
    let conflict = parse("[limits]\ndefault_page_size = 500\nmax_page_size = 100\n").unwrap_err();
    assert!(
        matches!(conflict, ConfigError::Conflict { .. }),
        "{conflict}"
    );
    assert!(conflict.to_string().contains("default_page_size"));

    let missing = ConfigFile::load(Path::new("/nonexistent/spares.toml")).unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/spares.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_the_file_and_flags_override_it() {
    let setup = certs::TlsSetup::new();
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file");
    let from_flag = dir.path().join("from-flag");
    let config = certs::write(
        dir.path(),
        "spares.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"from-file\"\n[tls]\ncert = {:?}\nkey = {:?}\nreload_seconds = 0\n[limits]\nrequest_timeout_seconds = 5\n",
            setup.server_cert, setup.server_key
        ),
    );
    let (config, flag_dir) = (
        config.to_str().unwrap().to_string(),
        from_flag.to_str().unwrap().to_string(),
    );
    let server = tokio::task::spawn_blocking(move || {
        common::process::spawn(&["serve", "--config", &config, "--data-dir", &flag_dir])
    })
    .await
    .unwrap();
    // TLS came from the file: a client trusting the test CA gets in.
    let address = server.url.trim_start_matches("http://").to_string();
    let mut clients = connect(
        Target::from(&address)
            .tls(Some(setup.client()))
            .api_key(server.api_key.clone()),
    )
    .await
    .unwrap();
    common::small_network(&mut clients).await;
    // The flag's data directory is used, the file's is not.
    assert!(from_flag.exists());
    assert!(!from_file.exists());
    server.kill();

    // A bad file stops the start with its position.
    let bad = certs::write(dir.path(), "bad.toml", "[limits]\nwatch_buffer = 0\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spares"))
        .args(["serve", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml:2:16"), "{stderr}");
}

#[test]
fn auth_jwt_and_rate_limit_sections_are_read_and_checked() {
    use spares::cli::serve_auth::ServeJwtArgs;
    use spares::identity::jwt::JwtKeySource;
    let file = parse(
        r#"
[auth]
open_health = true
open_reflection = false
api_keys = false
[jwt]
jwks = "idp/jwks.json"
algorithm = "RS256"
issuer = "https://idp.example"
audience = "spares"
leeway_seconds = 5
role_claim = "roles"
[rate_limit]
rate = 50
burst = 100
"#,
    )
    .unwrap();
    assert_eq!(file.auth.open_reflection, Some(false));
    assert_eq!(file.auth.api_keys, Some(false));
    let limits = file.rate_limit.apply(Limits::default());
    assert_eq!(limits.rate_per_principal_per_second, 50.0);
    assert_eq!(limits.rate_burst_per_principal, 100);

    // The file alone gives the settings, the relative path resolved.
    let settings = ServeJwtArgs::default()
        .settings(&file.jwt)
        .unwrap()
        .unwrap();
    assert_eq!(
        settings.keys,
        JwtKeySource::Jwks("/etc/spares/idp/jwks.json".into())
    );
    assert_eq!(settings.algorithm, jsonwebtoken::Algorithm::RS256);
    assert_eq!(settings.leeway_seconds, 5);
    assert_eq!(settings.role_claim, "roles");
    // Flags win over the file: a public key replaces the file's JWKS.
    let flags = ServeJwtArgs {
        jwt_public_key: Some("/keys/idp.pem".into()),
        jwt_algorithm: Some("ES256".into()),
        jwt_audience: Some("spares-eu".into()),
        ..ServeJwtArgs::default()
    };
    let settings = flags.settings(&file.jwt).unwrap().unwrap();
    assert_eq!(
        settings.keys,
        JwtKeySource::PublicKeyPem("/keys/idp.pem".into())
    );
    assert_eq!(settings.algorithm, jsonwebtoken::Algorithm::ES256);
    assert_eq!(
        (settings.issuer.as_str(), settings.audience.as_str()),
        ("https://idp.example", "spares-eu")
    );

    // A key without an audience, an issuer without a key, a shared-secret
    // algorithm: refused, naming what is missing.
    let no_audience =
        parse("[jwt]\npublic_key = \"k.pem\"\nalgorithm = \"ES256\"\nissuer = \"i\"\n").unwrap();
    let error = ServeJwtArgs::default()
        .settings(&no_audience.jwt)
        .unwrap_err();
    assert!(error.contains("--jwt-audience"), "{error}");
    let no_key = ServeJwtArgs {
        jwt_issuer: Some("i".into()),
        ..ServeJwtArgs::default()
    };
    let error = no_key.settings(&Default::default()).unwrap_err();
    assert!(error.contains("--jwt-public-key"), "{error}");
    let hs = ServeJwtArgs {
        jwt_public_key: Some("k.pem".into()),
        jwt_algorithm: Some("HS256".into()),
        ..ServeJwtArgs::default()
    };
    assert!(
        hs.settings(&Default::default())
            .unwrap_err()
            .contains("shared-secret")
    );
    assert_eq!(
        ServeJwtArgs::default().settings(&Default::default()),
        Ok(None)
    );

    // Bad values, at their line and column.
    let (line, column, message) = parse_error("[jwt]\nalgorithm = \"HS256\"\n");
    assert_eq!((line, column), (2, 13), "{message}");
    assert!(message.contains("shared secret"), "{message}");
    let (line, column, message) = parse_error("[jwt]\nalgorithm = \"XYZ\"\n");
    assert_eq!((line, column), (2, 13), "{message}");
    let (line, column, message) = parse_error("[rate_limit]\nrate = -1\n");
    assert_eq!((line, column), (2, 8), "{message}");
    assert!(message.contains("out of range"), "{message}");
    let (line, _, message) = parse_error("[rate_limit]\nrate = 1\nburst = 0\n");
    assert_eq!(line, 3, "{message}");
    let (line, column, message) = parse_error("[auth]\nopen_health = true\n  keys = false\n");
    assert_eq!((line, column), (3, 3), "{message}");
    let (line, _, message) = parse_error("[auth]\napi_keys = \"no\"\n");
    assert_eq!(line, 2, "{message}");
    let (line, _, message) = parse_error("[jwt]\nleeway_seconds = 601\n");
    assert_eq!(line, 2, "{message}");
    let both = parse("[jwt]\npublic_key = \"a.pem\"\njwks = \"b.json\"\n").unwrap_err();
    assert!(matches!(both, ConfigError::Conflict { .. }), "{both}");
}
