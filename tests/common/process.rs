//! The real `spares` binary as a child process: start it on 127.0.0.1:0,
//! learn its address from its log, read its memory from /proc, signal it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running server process.
pub struct ServerProcess {
    /// The child.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Every line it wrote to stderr so far (for failure messages).
    pub log: Arc<Mutex<Vec<String>>>,
    /// The administrator key put into its data directory before it started
    /// (none with `--insecure-dev` or without `--data-dir`).
    pub api_key: Option<String>,
}

/// Generous bound on a server's start (a demo build included); a hang guard,
/// not a speed assertion.
pub const START: Duration = Duration::from_secs(300);

/// Starts `spares ARGS` (which must include `--listen 127.0.0.1:0`) and waits
/// until it says where it serves. Authentication is on as in production:
/// unless ARGS say `--insecure-dev`, an administrator key is first written to
/// the `--data-dir` (as `spares keys create` would), and
/// [`ServerProcess::target`] presents it.
/// `spares serve --store URL --insecure-dev` on a free local port: one
/// replica of a server sharing the store at `url`.
pub fn serve_store(url: &str) -> ServerProcess {
    spawn(&[
        "serve",
        "--store",
        url,
        "--insecure-dev",
        "--listen",
        "127.0.0.1:0",
    ])
}

pub fn spawn(args: &[&str]) -> ServerProcess {
    spawn_logging(args, Some("warn"))
}

/// Like [`spawn`], with `RUST_LOG` set to `rust_log`, or unset (the default
/// level) when it is `None`.
pub fn spawn_logging(args: &[&str], rust_log: Option<&str>) -> ServerProcess {
    let data_dir = args
        .iter()
        .position(|a| *a == "--data-dir")
        .and_then(|i| args.get(i + 1));
    let api_key = match data_dir {
        Some(dir) if !args.contains(&"--insecure-dev") => {
            Some(super::admin_key_in(std::path::Path::new(dir)))
        }
        _ => None,
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_spares"));
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let mut child = command
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the spares binary");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("serving gRPC on ").nth(1) {
                let addr = rest.split(';').next().unwrap_or("").trim().to_string();
                let _ = tx.send(addr);
            }
            lines.lock().unwrap().push(line);
        }
    });
    let addr = match rx.recv_timeout(START) {
        Ok(addr) => addr,
        Err(_) => {
            let _ = child.kill();
            panic!("the server did not start: {:?}", log.lock().unwrap());
        }
    };
    ServerProcess {
        child,
        url: format!("http://{addr}"),
        log,
        api_key,
    }
}

/// A failing test must not leave its server running (it would keep its port,
/// its data directory and any lock the test process held).
impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl ServerProcess {
    /// The server's URL with its administrator key.
    pub fn target(&self) -> spares::cli::client::Target {
        spares::cli::client::Target::new(self.url.clone(), self.api_key.clone())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in bytes (VmRSS from /proc).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib * 1024
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by number (15 = SIGTERM, 2 = SIGINT).
    pub fn signal(&self, number: i32) {
        let status = Command::new("kill")
            .arg(format!("-{number}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (up to `bound`, a hang guard).
    pub fn wait(mut self, bound: Duration) -> ExitStatus {
        let deadline = std::time::Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the server did not exit: {:?}", self.log.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
