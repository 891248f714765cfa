//! A 202 means the message is on disk: proven at the system-call level on the embedded store.
//! The real binary runs under `strace`, which records every sync (`fsync`, `fdatasync`) with the
//! file it names and every write to a socket with its first bytes, in the order they happen.
//! Each `202 Accepted` written to a client must follow a sync of SQLite's write-ahead log made
//! since the previous answer. A kill -9 cannot tell `synchronous = FULL` from `NORMAL` in WAL
//! mode (the data is in the page cache either way); the order of the calls can.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::common::*;

/// The binary under strace, and the trace file.
struct Traced {
    server: BinaryServer,
    trace: std::path::PathBuf,
}

impl Traced {
    fn start(config: &ConfigDir, data: &std::path::Path) -> Traced {
        let trace = data.join("syscalls.trace");
        let mut command = Command::new("strace");
        // -f: every thread; -y: file descriptors with their paths; -s: bytes of each write.
        command
            .args(["-f", "-y", "-s", "24", "-e", "trace=fsync,fdatasync,write,writev,sendto,sendmsg", "-o"])
            .arg(&trace)
            .arg(env!("CARGO_BIN_EXE_xietong"))
            .args(BinaryServer::serve_args(config.path(), data))
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit())
            // A group of its own: strace and the gateway it traces end together.
            .process_group(0);
        Traced { server: BinaryServer::from_command(&mut command), trace }
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        let group = format!("-{}", self.server.pid());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    }
}

/// What a line of the trace records.
#[derive(Debug, PartialEq)]
enum Call {
    WalSync,
    Accepted,
    Other,
}

fn call(line: &str) -> Call {
    let synced = line.contains("fsync(") || line.contains("fdatasync(");
    if synced && line.contains("-wal>") {
        Call::WalSync
    } else if !synced && line.contains("HTTP/1.1 202") {
        Call::Accepted
    } else {
        Call::Other
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_202_follows_a_sync_of_the_write_ahead_log() {
    const MESSAGES: usize = 12;
    let config = ConfigDir::new("shutdown_timeout_secs: 5\n");
    let data = tempfile::tempdir().unwrap();
    let server = Traced::start(&config, data.path());
    for n in 0..MESSAGES {
        let (status, body) =
            post_json(&server.server.url, "procuratorate:330000", &bulletin(&format!("SYNC-{n}"))).await;
        assert_eq!(status, 202, "{body}");
    }
    let trace = server.trace.clone();
    drop(server);

    let text = std::fs::read_to_string(&trace).unwrap();
    let calls: Vec<Call> = text.lines().map(call).filter(|c| *c != Call::Other).collect();
    let accepted = calls.iter().filter(|c| **c == Call::Accepted).count();
    assert_eq!(accepted, MESSAGES, "every 202 is in the trace:\n{text}");
    // Between one answer and the next (and before the first), a sync of the WAL.
    let mut synced_since_last_answer = false;
    for (i, c) in calls.iter().enumerate() {
        match c {
            Call::WalSync => synced_since_last_answer = true,
            Call::Accepted => {
                assert!(synced_since_last_answer, "answer {i}: a 202 written with no WAL sync before it:\n{text}");
                synced_since_last_answer = false;
            }
            Call::Other => {}
        }
    }
}
