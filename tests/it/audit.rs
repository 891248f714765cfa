//! The tamper-evident audit log: what it records (metadata only), signed checkpoints, and
//! `xietong audit verify` catching an edited record, with both hash algorithms.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use serde_json::{Value, json};

/// Runs the real binary; its exit code and standard output.
fn xietong(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xietong")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A gateway with a signing key made by `xietong audit key`, signing every 100 ms.
fn server(hash: &str) -> TestServer {
    let config = ConfigDir::new(&format!(
        "audit:\n  hash: {hash}\n  signing_key: audit-key.pem\n  checkpoint_every: 100ms\nrate_limit: {{ per_second: 1000, burst: 1000 }}\n"
    ));
    let key = config.path().join("audit-key.pem");
    let (code, public) = xietong(&["audit", "key", key.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    std::fs::write(config.path().join("audit-key.pub"), public).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    TestServer::with_config(config)
}

fn records(db: &Path) -> Vec<Value> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT record FROM audit ORDER BY seq").unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().map(|r| serde_json::from_str(&r.unwrap()).unwrap()).collect()
}

fn checkpoints(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM audit_checkpoints", [], |r| r.get(0)).unwrap()
}

/// Accepts, a refusal, a denial, admin actions and a reload.
async fn activity(server: &TestServer) -> String {
    let accepted =
        post_as(&server.url, "ip_office:330100", "application/json", example("ipo-clue-transfer.json")).await;
    assert_eq!(accepted.status(), 202);
    let id = accepted.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let refused =
        post_as(&server.url, "ip_office:330000", "application/json", example("ipo-state-secret-message.json")).await;
    assert_eq!(refused.status(), 422);
    let denied = client()
        .get(format!("{}/v1/feeds/ip_office:330100/events", server.url))
        .bearer_auth("demo-procuratorate-330100")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let trace = client()
        .get(format!("{}/v1/admin/messages/{id}", server.url))
        .bearer_auth("demo-operator")
        .send()
        .await
        .unwrap();
    assert_eq!(trace.status(), 200);
    let reload =
        client().post(format!("{}/v1/admin/reload", server.url)).bearer_auth("demo-operator").send().await.unwrap();
    assert_eq!(reload.status(), 200);
    id
}

async fn signed(server: &TestServer, records: usize) {
    assert!(
        eventually(10, || {
            let db = server.db_path();
            checkpoints(&db) > 0 && {
                let conn = rusqlite::Connection::open(&db).unwrap();
                conn.query_row("SELECT max(seq) FROM audit_checkpoints", [], |r| r.get::<_, i64>(0)).unwrap()
                    >= records as i64
            }
        })
        .await,
        "a checkpoint covers the records"
    );
}

fn verify(server: &TestServer, extra: &[&str]) -> (i32, Value) {
    let config = server.config.path().to_str().unwrap().to_string();
    let data = server.data.path().to_str().unwrap().to_string();
    let mut args = vec!["--config", &config, "audit", "verify", "--data-dir", &data];
    args.extend_from_slice(extra);
    let (code, out) = xietong(&args);
    (code, serde_json::from_str(&out).unwrap_or_else(|_| json!({"unparsed": out})))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_action_is_chained_signed_and_verified() {
    let mut server = server("sha256");
    let id = activity(&server).await;
    let log = records(&server.db_path());
    let actions: Vec<&str> = log.iter().map(|r| r["action"].as_str().unwrap()).collect();
    for expected in ["accepted", "refused", "denied", "admin", "reloaded"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let accepted = log.iter().find(|r| r["action"] == "accepted").unwrap();
    assert_eq!(accepted["actor"], "ip_office:330100");
    assert_eq!(accepted["message_id"], id.as_str());
    assert_eq!(accepted["type"], "cn.xietong.clue.transfer");
    assert_eq!(accepted["alg"], "sha256");
    let denied = log.iter().find(|r| r["action"] == "denied").unwrap();
    assert_eq!((denied["actor"].as_str(), denied["code"].as_str()), (Some("procuratorate:330100"), Some("403")));
    let reload = log.iter().find(|r| r["action"] == "reloaded").unwrap();
    assert_eq!(reload["actor"], "operator:duty-officer");

    // Metadata only: no party, no case text, no token.
    let all = serde_json::to_string(&log).unwrap();
    for secret in ["张", "侵犯", "demo-ip_office-330100", "demo-operator\""] {
        assert!(!all.contains(secret), "the audit log holds {secret:?}");
    }

    signed(&server, log.len()).await;
    server.stop();
    let (code, report) = verify(&server, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["intact"], true);
    assert_eq!(report["records"].as_u64(), Some(log.len() as u64));
    assert!(report["signatures_checked"].as_u64().unwrap() >= 1, "{report}");

    // The auditor's copy of the public key does as well as the private key.
    let public = server.config.path().join("audit-key.pub");
    let (code, report) = verify(&server, &["--key", public.to_str().unwrap()]);
    assert_eq!(code, 0, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_record_is_caught_and_named() {
    let mut server = server("sm3");
    activity(&server).await;
    let n = records(&server.db_path()).len();
    assert!(records(&server.db_path()).iter().all(|r| r["alg"] == "sm3"));
    signed(&server, n).await;
    server.stop();
    assert_eq!(verify(&server, &[]).0, 0, "intact before the edit");

    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    // The store refuses edits outright.
    let refused = conn.execute("UPDATE audit SET record = record WHERE seq = 2", []);
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    let refused = conn.execute("DELETE FROM audit WHERE seq = 2", []);
    assert!(refused.is_err());
    // Someone with the file drops the guard and changes who sent record 2.
    conn.execute_batch("DROP TRIGGER audit_no_update;").unwrap();
    let actor: String = conn.query_row("SELECT record ->> 'actor' FROM audit WHERE seq = 2", [], |r| r.get(0)).unwrap();
    conn.execute("UPDATE audit SET record = replace(record, ?1, 'ip_office:110000') WHERE seq = 2", [&actor]).unwrap();
    drop(conn);

    let (code, report) = verify(&server, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["intact"], false);
    assert_eq!(report["broken"]["seq"], 2);
    assert!(report["broken"]["why"].as_str().unwrap().contains("edited"), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_records_after_a_checkpoint_are_caught() {
    let mut server = server("sha256");
    activity(&server).await;
    let n = records(&server.db_path()).len();
    signed(&server, n).await;
    server.stop();
    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    conn.execute_batch("DROP TRIGGER audit_no_delete;").unwrap();
    conn.execute("DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)", []).unwrap();
    drop(conn);
    let (code, report) = verify(&server, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(report["broken"]["why"].as_str().unwrap().contains("records were removed"), "{report}");
    // A key that did not sign the checkpoints does not vouch for them.
    let other = server.config.path().join("other.pem");
    assert_eq!(xietong(&["audit", "key", other.to_str().unwrap()]).0, 0);
    let (code, report) = verify(&server, &["--key", other.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(report["broken"]["why"].as_str().unwrap().contains("not signed by key"), "{report}");
}
