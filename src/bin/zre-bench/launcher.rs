//! Runs a role as a child process (`zre-bench child ROLE ..`: lines on its stdout, "report"
//! and stop on its stdin) or as a thread of this process, behind one [`Worker`] handle.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use serde_json::Value;

use crate::roles::{Role, Signals};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    Processes,
    Threads,
}

impl Layout {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Layout::Processes => "processes",
            Layout::Threads => "threads",
        }
    }
}

/// One running role, seen from the parent.
pub(crate) struct Worker {
    lines: Receiver<Value>,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    sig: Arc<Signals>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    pub(crate) fn spawn(layout: Layout, role: Role) -> anyhow::Result<Worker> {
        let (tx, lines) = mpsc::channel();
        let sig = Arc::new(Signals::default());
        match layout {
            Layout::Processes => {
                let mut cmd = Command::new(std::env::current_exe()?);
                if let Some(cert) = crate::roles::curve() {
                    cmd.env(crate::roles::CURVE_ENV, cert);
                }
                let mut child = cmd
                    .args(role.args())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .context("spawn child")?;
                let stdout = child.stdout.take().expect("piped");
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        if let Ok(v) = serde_json::from_str::<Value>(&line) {
                            if tx.send(v).is_err() {
                                break;
                            }
                        }
                    }
                });
                let stdin = child.stdin.take();
                Ok(Worker {
                    lines,
                    child: Some(child),
                    stdin,
                    sig,
                    thread: None,
                })
            }
            Layout::Threads => {
                let flag = sig.clone();
                let thread = std::thread::spawn(move || {
                    let tx = std::sync::Mutex::new(tx);
                    let out = |v: Value| {
                        let _ = tx.lock().unwrap().send(v);
                    };
                    if let Err(e) = role.run(&out, &flag) {
                        eprintln!("zre-bench: role failed: {e:#}");
                    }
                });
                Ok(Worker {
                    lines,
                    child: None,
                    stdin: None,
                    sig,
                    thread: Some(thread),
                })
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(std::process::id(), |c| c.id())
    }

    /// The next line with `"ev": ev`, waiting at most `limit`.
    pub(crate) fn expect(&self, ev: &str, limit: Duration) -> anyhow::Result<Value> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .map_err(|_| anyhow!("no {ev:?} from a worker within {limit:?}"))?;
            if v["ev"] == ev {
                return Ok(v);
            }
        }
    }

    pub(crate) fn tell_report(&mut self) {
        self.sig.set(&self.sig.report);
        if let Some(i) = &mut self.stdin {
            let _ = i.write_all(b"report\n");
            let _ = i.flush();
        }
    }

    pub(crate) fn tell_stop(&mut self) {
        self.sig.set(&self.sig.stop);
        self.stdin = None;
    }

    pub(crate) fn finish(mut self) {
        self.tell_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(mut c) = self.child.take() {
            let end = Instant::now() + Duration::from_secs(60);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Tells every worker to stop, then waits for each: they stop in parallel.
pub(crate) fn stop_all(mut ws: Vec<Worker>) {
    for w in &mut ws {
        w.tell_stop();
    }
    ws.into_iter().for_each(Worker::finish);
}
