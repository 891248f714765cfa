//! Graceful shutdown of the real binary: on SIGTERM it stops accepting, finishes the request in
//! flight, commits it, and exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::*;

/// The gateway's count of requests being served (its `/metrics`, this request included).
fn requests_in_flight(addr: &str) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("xietong_http_requests_in_flight "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no requests-in-flight gauge in {text}"))
}

/// Waits (10 s at most) until `n` other requests are being served.
fn wait_for_requests(addr: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while requests_in_flight(addr) < n + 1 {
        assert!(std::time::Instant::now() < deadline, "the server never had {n} request(s) in flight");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_finishes_the_request_in_flight() {
    let mut exchange = Exchange::start(ConfigDir::new("shutdown_timeout_secs: 30\n"));
    let server = &mut exchange.server;
    let addr = server.url.trim_start_matches("http://").to_string();

    let body = example("prc-non-prosecution-transfer.json");
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        stream,
        "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        demo_token("procuratorate:330100"),
        body.len()
    )
    .unwrap();
    stream.write_all(head).unwrap();
    stream.flush().unwrap();
    // The server is reading the request: SIGTERM now finds it in flight.
    wait_for_requests(&addr, 1);

    server.signal("TERM");
    // New connections are refused while the request in flight is still served.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the listener never closed on SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }

    stream.write_all(tail).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert_eq!(server.wait(), Some(0), "a graceful stop exits 0");
    let id = answer.split("\"id\":\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();

    // Committed: on the embedded store the file holds it; on either store, after a restart, the
    // recipient's feed has it.
    if let Some(conn) = exchange.sqlite() {
        let n: i64 = conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
    }
    exchange.restart();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = rt.block_on(inbox_until(exchange.url(), "ip_office:330100", |events| !events.is_empty()));
    assert_eq!(events.iter().map(|e| e["id"].as_str().unwrap()).collect::<Vec<_>>(), [id.as_str()]);
}

#[test]
fn sigterm_ends_event_streams_and_long_polls_instead_of_waiting_for_them() {
    // A long shutdown timeout: were the stream and the long-poll waited for, the process would
    // take a minute to stop.
    let mut exchange = Exchange::start(ConfigDir::new("shutdown_timeout_secs: 60\n"));
    let server = &mut exchange.server;
    let addr = server.url.trim_start_matches("http://").to_string();
    let token = demo_token("procuratorate:330100");
    let open = |path: &str| {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(50))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
            .unwrap();
        s
    };
    let mut stream = open("/v1/feeds/procuratorate:330100/stream");
    let mut poll = open("/v1/feeds/procuratorate:330100/events?wait=45");
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "the stream is open");
    // The long-poll is waiting (the stream, open, no longer counts as a request in flight).
    wait_for_requests(&addr, 1);

    let asked = std::time::Instant::now();
    server.signal("TERM");
    let mut rest = String::new();
    stream.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("text/event-stream"), "{rest}");
    let mut answer = String::new();
    poll.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("\"events\":[]"), "{answer}");
    assert_eq!(server.wait(), Some(0), "a graceful stop exits 0");
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "stopped after {:?}, not after the 60 s timeout",
        asked.elapsed()
    );
}
