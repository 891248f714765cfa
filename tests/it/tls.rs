//! TLS on the listener and mutual TLS for agency systems, with certificates made in the test:
//! TLS 1.2 and 1.3 only, the client certificate naming the sender, token/certificate/both per
//! agency, revocation by CRL, and certificates reloaded without a restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType, IsCa, KeyIdMethod,
    KeyPair, RevokedCertParams, SanType, SerialNumber, date_time_ymd,
};
use serde_json::Value;

/// A day: year, month, day.
type Day = (i32, u8, u8);

/// A certificate authority of the test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate and its key (PEM), with `serial`, common name `cn`, and either the IP
    /// address 127.0.0.1 (a server) or an optional SAN URI (a client).
    fn leaf(&self, serial: u64, cn: &str, server: bool, uri: Option<&str>) -> (String, String) {
        self.leaf_valid(serial, cn, server, uri, None)
    }

    /// A leaf valid from and until the given days (rcgen's default period otherwise).
    fn leaf_valid(
        &self,
        serial: u64,
        cn: &str,
        server: bool,
        uri: Option<&str>,
        validity: Option<(Day, Day)>,
    ) -> (String, String) {
        let names = if server { vec!["127.0.0.1".to_string()] } else { Vec::new() };
        let mut params = CertificateParams::new(names).unwrap();
        if let Some(((y0, m0, d0), (y1, m1, d1))) = validity {
            params.not_before = date_time_ymd(y0, m0, d0);
            params.not_after = date_time_ymd(y1, m1, d1);
        }
        params.serial_number = Some(SerialNumber::from(serial));
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(u) = uri {
            params.subject_alt_names.push(SanType::URI(u.try_into().unwrap()));
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn crl(&self, revoked: &[u64]) -> String {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(2026, 1, 1),
            next_update: date_time_ymd(2036, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: date_time_ymd(2026, 6, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().pem().unwrap()
    }
}

/// The files of one test: the server's CA and certificate, the agencies' CA, clients and CRL.
struct Pki {
    dir: tempfile::TempDir,
    server_ca: Ca,
    clients: Ca,
}

const REVOKED: u64 = 66;

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
            server_ca: Ca::new("xietong server CA"),
            clients: Ca::new("agencies CA"),
        };
        let (cert, key) = pki.server_ca.leaf(1, "xietong", true, None);
        pki.write("server.pem", &cert);
        pki.write("server.key", &key);
        pki.write("server-ca.pem", &pki.server_ca.pem());
        pki.write("clients-ca.pem", &pki.clients.pem());
        pki.write("crl.pem", &pki.clients.crl(&[REVOKED]));
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        // Written aside and renamed, as operators deploy certificates: never read half-written.
        let aside = self.path(&format!("{name}.new"));
        std::fs::write(&aside, text).unwrap();
        std::fs::rename(aside, self.path(name)).unwrap();
    }

    fn settings(&self, watch_every: &str) -> String {
        format!(
            "tls:\n  cert: {}\n  key: {}\n  client_ca: [{}]\n  crls: [{}]\n  watch_every: {watch_every}\n",
            self.path("server.pem").display(),
            self.path("server.key").display(),
            self.path("clients-ca.pem").display(),
            self.path("crl.pem").display(),
        )
    }

    /// A client's certificate and key in one PEM, as reqwest takes them.
    fn identity(&self, serial: u64, cn: &str, uri: Option<&str>) -> Vec<u8> {
        let (cert, key) = self.clients.leaf(serial, cn, false, uri);
        format!("{cert}{key}").into_bytes()
    }
}

/// A fresh HTTPS client (no pooled connection) trusting `ca`, with an optional identity.
fn https(ca: &Path, identity: Option<&[u8]>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let mut b =
        reqwest::Client::builder().tls_certs_only([ca]).pool_max_idle_per_host(0).timeout(Duration::from_secs(10));
    if let Some(id) = identity {
        b = b.identity(reqwest::Identity::from_pem(id).unwrap());
    }
    b.build().unwrap()
}

/// agencies.yaml with `lines` added to the entry of `id`.
fn configure(config: &ConfigDir, entries: &[(&str, String)]) {
    let mut text = std::fs::read_to_string(config.path().join("agencies.yaml")).unwrap();
    for (id, lines) in entries {
        let head = format!("  - id: {id}\n");
        let at = text.find(&head).unwrap_or_else(|| panic!("{id} is in the demo agencies")) + head.len();
        text.insert_str(at, lines);
    }
    config.write("agencies.yaml", &text);
}

fn server(pki: &Pki, watch_every: &str) -> TestServer {
    let config = ConfigDir::new(&pki.settings(watch_every));
    configure(
        &config,
        &[
            ("ip_office:330100", "    auth: certificate\n".to_string()),
            (
                "procuratorate:330100",
                "    auth: both\n    certificates:\n      - subject: CN=深圳某检察系统\n".to_string(),
            ),
        ],
    );
    TestServer::with_config(config)
}

/// A post with the client certificate `identity` fails the handshake: no answer at all.
async fn assert_no_answer(server: &TestServer, ca: &Path, identity: &[u8], what: &str) {
    let r = https(ca, Some(identity))
        .post(format!("{}/v1/messages", server.url))
        .header("content-type", "application/json")
        .body(example("ipo-clue-transfer.json"))
        .send()
        .await;
    assert!(r.is_err(), "a certificate {what} gets no answer, but got {:?}", r.map(|r| r.status()));
}

async fn post(client: &reqwest::Client, server: &TestServer, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut r =
        client.post(format!("{}/v1/messages", server.url)).header("content-type", "application/json").body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

const IP_OFFICE_URI: &str = "urn:xietong:agency:ip_office:330100";

/// Whether `openssl s_client` with `args` completes a verified handshake with `host`.
fn handshake(host: &str, ca: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(["s_client", "-connect", host, "-CAfile"])
        .arg(ca)
        .args(["-verify_return_error", "-brief"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs")
        .success()
}

/// `openssl s_server` with the test's server certificate and `args`, on a free port; killed on
/// drop. The control for a refusal: it shows the client can speak what xietong refuses.
struct OpensslServer(std::process::Child, String);

impl OpensslServer {
    fn start(pki: &Pki, args: &[&str]) -> OpensslServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-cert"])
            .arg(pki.path("server.pem"))
            .arg("-key")
            .arg(pki.path("server.key"))
            // Serves a status page and ignores its stdin (which would otherwise end the session).
            .arg("-www")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl runs");
        let host = format!("127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(std::time::Instant::now() < deadline, "openssl s_server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        OpensslServer(child, host)
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_speaks_tls_1_2_and_1_3_only() {
    let pki = Pki::new();
    let server = server(&pki, "1h");
    assert!(server.url.starts_with("https://"));
    let (status, _) = post(
        &https(&pki.path("server-ca.pem"), None),
        &server,
        Some("demo-ip_office-330000"),
        example("ipo-bulletin-field-secret.json"),
    )
    .await;
    assert_eq!(status, 202, "a token over HTTPS");

    // openssl, an independent client, tries protocol versions and cipher suites.
    let host = server.url.trim_start_matches("https://").to_string();
    let ca = pki.path("server-ca.pem");
    assert!(handshake(&host, &ca, &["-tls1_3"]), "TLS 1.3");
    assert!(handshake(&host, &ca, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]), "TLS 1.2, AES-GCM");
    assert!(handshake(&host, &ca, &["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"]), "TLS 1.2, ChaCha20");
    // Each refusal has a control: an openssl server offering the same shows that the client can
    // speak it, so the refusal is the gateway's, not the client's.
    let refused: [(&str, &[&str]); 5] = [
        ("TLS 1.1", &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]),
        ("TLS 1.0", &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]),
        ("a CBC suite in TLS 1.2", &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"]),
        ("a CBC suite with SHA-256 in TLS 1.2", &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"]),
        ("the TLS 1.3 CCM suite", &["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"]),
    ];
    for (what, args) in refused {
        let control = OpensslServer::start(&pki, args);
        assert!(handshake(&control.1, &ca, args), "the client cannot speak {what}: the check would prove nothing");
        assert!(!handshake(&host, &ca, args), "xietong accepted {what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_and_not_yet_valid_certificates_fail_the_handshake() {
    let pki = Pki::new();
    let server = server(&pki, "1h");
    let ca = pki.path("server-ca.pem");
    // ip_office:330100 signs in by certificate only (auth: certificate).
    let identity = |validity| {
        let (cert, key) = pki.clients.leaf_valid(40, "杭州市知识产权局", false, Some(IP_OFFICE_URI), Some(validity));
        format!("{cert}{key}").into_bytes()
    };
    for (what, validity) in [("expired", ((2024, 1, 1), (2025, 1, 1))), ("not yet valid", ((2035, 1, 1), (2036, 1, 1)))]
    {
        assert_no_answer(&server, &ca, &identity(validity), what).await;
    }
    let current = identity(((2025, 1, 1), (2035, 1, 1)));
    let (status, body) = post(&https(&ca, Some(&current)), &server, None, example("ipo-clue-transfer.json")).await;
    assert_eq!(status, 202, "a current certificate of the same CA: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_certificate_names_the_sender() {
    let pki = Pki::new();
    let server = server(&pki, "1h");
    let ca = pki.path("server-ca.pem");
    let office = pki.identity(10, "杭州市知识产权局", Some(IP_OFFICE_URI));

    // ip_office:330100 authenticates by certificate: no token needed.
    let (status, receipt) = post(&https(&ca, Some(&office)), &server, None, example("ipo-clue-transfer.json")).await;
    assert_eq!(status, 202, "{receipt}");
    let url = format!("{}/v1/admin/messages/{}", server.url, receipt["id"].as_str().unwrap());
    let (_, trace) = call_with(&client_with(&ca), reqwest::Method::GET, &url, Some(OPERATOR), None).await;
    assert_eq!(trace["sender"], "ip_office:330100", "{trace}");

    // A body claiming another sender (the province's bulletin) is refused.
    let (status, answer) =
        post(&https(&ca, Some(&office)), &server, None, example("ipo-bulletin-field-secret.json")).await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("sender_mismatch")), "{answer}");

    // Its token alone is not enough: it must present its certificate.
    let (status, answer) =
        post(&https(&ca, None), &server, Some("demo-ip_office-330100"), example("ipo-clue-transfer.json")).await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("client certificate"), "{answer}");

    // The certificate and another agency's token: two identities, refused.
    let (status, answer) =
        post(&https(&ca, Some(&office)), &server, Some("demo-ip_office-330000"), example("ipo-clue-transfer.json"))
            .await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("forbidden")), "{answer}");

    // Token agencies are unaffected by mutual TLS being on.
    let (status, _) =
        post(&https(&ca, None), &server, Some("demo-ip_office-330000"), example("ipo-bulletin-field-secret.json"))
            .await;
    assert_eq!(status, 202);

    // `GET /v1/me` says how the agency proved who it is.
    let me: Value =
        https(&ca, Some(&office)).get(format!("{}/v1/me", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (me["id"].as_str(), me["credentials"].clone()),
        (Some("ip_office:330100"), serde_json::json!(["certificate"])),
        "{me}"
    );

    // The certificate also opens the agency's own feed, and only that.
    let feed = |f: &str| format!("{}/v1/feeds/{f}/events", server.url);
    let own = https(&ca, Some(&office)).get(feed("ip_office:330100")).send().await.unwrap();
    assert_eq!(own.status(), 200);
    let other = https(&ca, Some(&office)).get(feed("procuratorate:330100")).send().await.unwrap();
    assert_eq!(other.status(), 403);

    // The agency directory knows when the certificate it presented expires.
    let url = format!("{}/v1/admin/agencies?q=330100&kind=ip_office", server.url);
    let (_, directory) = call_with(&client_with(&ca), reqwest::Method::GET, &url, Some(OPERATOR), None).await;
    let entry = &directory["agencies"][0];
    assert_eq!(entry["id"], "ip_office:330100", "{directory}");
    assert!(entry["certificate_days_left"].as_i64().is_some_and(|d| d > 30), "{entry}");
    assert!(entry["certificate_expires_at"].is_string(), "{entry}");
}

fn client_with(ca: &Path) -> reqwest::Client {
    https(ca, None)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agency_configured_for_both_needs_both() {
    let pki = Pki::new();
    let server = server(&pki, "1h");
    let ca = pki.path("server-ca.pem");
    // Recognised by its subject, as configured (no SAN URI in this certificate).
    let system = pki.identity(20, "深圳某检察系统", None);
    let token = Some("demo-procuratorate-330100");
    let body = || example("prc-non-prosecution-transfer.json");

    let (status, answer) = post(&https(&ca, Some(&system)), &server, token, body()).await;
    assert_eq!(status, 202, "certificate and token: {answer}");
    let (status, answer) = post(&https(&ca, Some(&system)), &server, None, body()).await;
    assert_eq!(status, 401, "certificate alone: {answer}");
    let (status, answer) = post(&https(&ca, None), &server, token, body()).await;
    assert_eq!(status, 401, "token alone: {answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_and_unknown_certificates_fail_the_handshake() {
    let pki = Pki::new();
    let server = server(&pki, "1h");
    let ca = pki.path("server-ca.pem");
    let revoked = pki.identity(REVOKED, "杭州市知识产权局", Some(IP_OFFICE_URI));
    let stranger = Ca::new("somebody else's CA");
    let (cert, key) = stranger.leaf(30, "杭州市知识产权局", false, Some(IP_OFFICE_URI));
    let forged = format!("{cert}{key}").into_bytes();

    for (what, identity) in [("revoked", revoked), ("from an unknown CA", forged)] {
        assert_no_answer(&server, &ca, &identity, what).await;
    }
    // The same agency with a good certificate gets through.
    let good = pki.identity(11, "杭州市知识产权局", Some(IP_OFFICE_URI));
    let (status, _) = post(&https(&ca, Some(&good)), &server, None, example("ipo-clue-transfer.json")).await;
    assert_eq!(status, 202);
}

/// Whether a fresh connection trusting only `ca` succeeds.
async fn trusted_by(server: &TestServer, ca: &Path) -> bool {
    https(ca, None).get(format!("{}/healthz", server.url)).send().await.is_ok()
}

/// A new server certificate from a new CA, and a new CRL that also revokes `also_revoked`.
fn rotate(pki: &Pki, also_revoked: u64) -> PathBuf {
    let new_ca = Ca::new("xietong server CA, next");
    let (cert, key) = new_ca.leaf(2, "xietong", true, None);
    std::fs::write(pki.path("next-ca.pem"), new_ca.pem()).unwrap();
    pki.write("server.key", &key);
    pki.write("server.pem", &cert);
    pki.write("crl.pem", &pki.clients.crl(&[REVOKED, also_revoked]));
    pki.path("next-ca.pem")
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_and_crls_reload_when_the_files_change() {
    let pki = Pki::new();
    let server = server(&pki, "100ms");
    let old_ca = pki.path("server-ca.pem");
    let office = pki.identity(12, "杭州市知识产权局", Some(IP_OFFICE_URI));
    assert!(trusted_by(&server, &old_ca).await);
    let (status, _) = post(&https(&old_ca, Some(&office)), &server, None, example("ipo-clue-transfer.json")).await;
    assert_eq!(status, 202);

    let new_ca = rotate(&pki, 12);
    let mut switched = false;
    for _ in 0..100 {
        if trusted_by(&server, &new_ca).await {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(switched, "the new certificate is served without a restart");
    assert!(!trusted_by(&server, &old_ca).await, "the old one is not");
    let r = https(&new_ca, Some(&office)).get(format!("{}/v1/feeds/ip_office:330100/events", server.url)).send().await;
    assert!(r.is_err(), "the certificate revoked in the new CRL is refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_applies_new_certificates_and_a_bad_one_keeps_the_old() {
    let pki = Pki::new();
    // Not watched in practice (an hour): only the reload applies the files.
    let server = server(&pki, "1h");
    let old_ca = pki.path("server-ca.pem");
    let reload = |ca: PathBuf| {
        let url = format!("{}/v1/admin/reload", server.url);
        async move { https(&ca, None).post(url).bearer_auth("demo-operator").send().await.unwrap() }
    };

    // A key that does not go with the certificate: the reload is refused, nothing changes.
    let (_, stray_key) = pki.server_ca.leaf(3, "stray", true, None);
    let good_key = std::fs::read_to_string(pki.path("server.key")).unwrap();
    pki.write("server.key", &stray_key);
    let refused = reload(old_ca.clone()).await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert!(problem.to_string().contains("does not go with the certificate"), "{problem}");
    assert!(trusted_by(&server, &old_ca).await, "the old certificate still serves");
    pki.write("server.key", &good_key);

    let new_ca = rotate(&pki, 0);
    assert!(trusted_by(&server, &old_ca).await, "nothing changes before the reload");
    assert_eq!(reload(old_ca.clone()).await.status(), 200);
    assert!(trusted_by(&server, &new_ca).await, "the new certificate after the reload");
    assert!(!trusted_by(&server, &old_ca).await);
}

/// An operator named by a client certificate (operators.yaml `certificates`): the admin API
/// without a token, and the console's sign-in with the certificate; a certificate that is also
/// an agency's is refused by the configuration check.
#[tokio::test(flavor = "multi_thread")]
async fn an_operators_certificate_opens_the_admin_api_and_the_console() {
    let pki = Pki::new();
    let config = ConfigDir::new(&pki.settings("1h"));
    let operators = std::fs::read_to_string(config.path().join("operators.yaml")).unwrap();
    let named =
        operators.replace("  - name: duty-officer\n", "  - name: duty-officer\n    certificates: [\"CN=值班证书\"]\n");
    config.write("operators.yaml", &named);
    let server = TestServer::with_config(config);
    let ca = pki.path("server-ca.pem");
    let officer = pki.identity(20, "值班证书", None);
    let no_redirects = |identity: Option<&[u8]>| {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
        let mut b = reqwest::Client::builder().tls_certs_only([ca]).redirect(reqwest::redirect::Policy::none());
        if let Some(id) = identity {
            b = b.identity(reqwest::Identity::from_pem(id).unwrap());
        }
        b.build().unwrap()
    };

    let overview = https(&ca, Some(&officer)).get(format!("{}/v1/admin/overview", server.url)).send().await.unwrap();
    assert_eq!(overview.status(), 200, "the certificate alone opens the admin API");
    let me: Value =
        https(&ca, Some(&officer)).get(format!("{}/v1/me", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["id"], "operator:duty-officer", "{me}");

    let with_cert = no_redirects(Some(&officer));
    let form = with_cert.get(format!("{}/console/login", server.url)).send().await.unwrap().text().await.unwrap();
    assert!(form.contains("id=\"certificate-sign-in\"") && form.contains("duty-officer"), "{form}");
    let signed = with_cert
        .post(format!("{}/console/login", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("with=certificate&next=%2Fconsole%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let page = with_cert.get(format!("{}/console/", server.url)).header("cookie", &session).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("duty-officer"));

    // Without the certificate, there is nothing to sign in with.
    let plain = no_redirects(None);
    let form = plain.get(format!("{}/console/login", server.url)).send().await.unwrap().text().await.unwrap();
    assert!(!form.contains("certificate-sign-in"));
    let refused = plain
        .post(format!("{}/console/login", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("with=certificate")
        .send()
        .await
        .unwrap();
    assert!(refused.headers()["location"].to_str().unwrap().contains("failed=1"));

    // One owner per certificate.
    let config = ConfigDir::new(&pki.settings("1h"));
    configure(
        &config,
        &[("procuratorate:330100", "    auth: both\n    certificates:\n      - subject: CN=值班证书\n".into())],
    );
    config.write("operators.yaml", &named);
    let errors = xietong::config::Config::load(config.path()).err().expect("refused").to_string();
    assert!(errors.contains("CN=值班证书 is also procuratorate:330100's"), "{errors}");
}
