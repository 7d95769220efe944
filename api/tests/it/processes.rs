//! Roles as real OS processes of the built `anomaly` binary, for the end-to-end test: started
//! with their own environment, their JSON log lines collected, stopped with SIGTERM or SIGKILL,
//! and killed when the test ends however it ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::eventually_within;

pub struct RoleProcess {
    pub name: String,
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl RoleProcess {
    /// Starts `anomaly <args>` with `env` on top of a clean environment (PATH only).
    pub fn start(name: &str, args: &[&str], env: &[(String, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_anomaly"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info,sqlx=warn,rdkafka=warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let show = std::env::var_os("TEST_LOG").is_some();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let (lines, name) = (lines.clone(), name.to_owned());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if show {
                        eprintln!("[{name}] {line}");
                    }
                    let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                    lines.lock().unwrap().push(value);
                }
            });
        }
        Self {
            name: name.to_owned(),
            child,
            lines,
        }
    }

    /// The first log line that satisfies `test`, waiting for it.
    pub async fn wait_for_log(&mut self, what: &str, test: impl Fn(&Value) -> bool) -> Value {
        let name = self.name.clone();
        let lines = self.lines.clone();
        eventually_within(
            Duration::from_secs(60),
            &format!("{name} logs {what}"),
            || {
                let found = lines.lock().unwrap().iter().any(&test);
                if !found {
                    let exited = self.child.try_wait().ok().flatten();
                    assert!(exited.is_none(), "{name} exited: {}", tail(&lines));
                }
                async move { found }
            },
        )
        .await;
        let lines = self.lines.lock().unwrap();
        lines.iter().find(|l| test(l)).cloned().expect("found")
    }

    /// The address a role that answers HTTP logged (`listening`), as a base URL.
    pub async fn base_url(&mut self) -> String {
        let line = self
            .wait_for_log("its address", |l| message(l) == Some("listening"))
            .await;
        format!(
            "http://{}",
            line["fields"]["address"].as_str().expect("address")
        )
    }

    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// The last lines it logged, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.lines)
    }

    /// SIGKILL: the process gets no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the graceful exit; panics if it fails.
    pub async fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let name = self.name.clone();
        let mut exited = None;
        eventually_within(Duration::from_secs(60), &format!("{name} exits"), || {
            exited = self.child.try_wait().expect("wait");
            let done = exited.is_some();
            async move { done }
        })
        .await;
        let status = exited.expect("exited");
        assert!(
            status.success(),
            "{name} exited with {status}: {}",
            tail(&self.lines)
        );
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines a process logged, for failure messages.
fn tail(lines: &Mutex<Vec<Value>>) -> String {
    let lines = lines.lock().unwrap();
    let start = lines.len().saturating_sub(20);
    lines[start..]
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A log line's message.
pub fn message(line: &Value) -> Option<&str> {
    line["fields"]["message"].as_str()
}
