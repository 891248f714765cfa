//! A Redis protocol proxy in front of a real Redis server. It passes every command through,
//! except the ones a test takes over: `WAITAOF` (which the Redis 7.0 on these machines lacks) is
//! answered by the proxy, held until the test says what to answer, and `COMMAND INFO WAITAOF`
//! says the command exists. Every command is recorded with its connection, in order, so a test
//! can tell what the gateway sent before it waited.

use std::io;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// One command the proxy read, or one `WAITAOF` it answered.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The client connection, counted from 0 in the order they were opened.
    pub connection: usize,
    /// The command's words, the name upper-cased (`["WAITAOF", "1", "0", "1000"]`);
    /// `["(answered WAITAOF)"]` when the proxy sent a held answer.
    pub words: Vec<String>,
}

pub struct RespProxy {
    pub port: u16,
    log: Arc<Mutex<Vec<Seen>>>,
    /// What to answer a `WAITAOF`; `None` holds the answers.
    waitaof: watch::Sender<Option<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

/// What a client's next reply comes from, in the order of its commands.
enum Reply {
    Upstream,
    Local(Vec<u8>),
    Waitaof,
}

impl RespProxy {
    /// Listens on a free local port, in front of the Redis server on `redis_port`; every
    /// `WAITAOF` is held until [`RespProxy::answer_waitaof`].
    pub async fn start(redis_port: u16) -> RespProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (waitaof, _) = watch::channel(None);
        let (shared_log, answers) = (log.clone(), waitaof.clone());
        let task = tokio::spawn(async move {
            let mut connection = 0;
            while let Ok((client, _)) = listener.accept().await {
                let (log, answers) = (shared_log.clone(), answers.subscribe());
                tokio::spawn(async move {
                    let _ = relay(client, redis_port, connection, log, answers).await;
                });
                connection += 1;
            }
        });
        RespProxy { port, log, waitaof, task }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// From now on, every held and every later `WAITAOF` is answered with `reply` (RESP bytes).
    pub fn answer_waitaof(&self, reply: &[u8]) {
        self.waitaof.send_replace(Some(reply.to_vec()));
    }

    /// Holds the answers to the `WAITAOF`s that come from now on.
    pub fn hold_waitaof(&self) {
        self.waitaof.send_replace(None);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// How many `WAITAOF`s the gateway has sent.
    pub fn waitaofs(&self) -> usize {
        self.seen().iter().filter(|s| s.words[0] == "WAITAOF").count()
    }
}

impl Drop for RespProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    redis_port: u16,
    connection: usize,
    log: Arc<Mutex<Vec<Seen>>>,
    mut answers: watch::Receiver<Option<Vec<u8>>>,
) -> io::Result<()> {
    let upstream = TcpStream::connect(("127.0.0.1", redis_port)).await?;
    let (client_read, mut client_write) = client.into_split();
    let (upstream_read, mut upstream_write) = upstream.into_split();
    let (replies, mut pending) = mpsc::unbounded_channel::<Reply>();
    let answer_log = log.clone();
    // Answers go back in the order of the commands: a held WAITAOF holds what follows it.
    let answering = tokio::spawn(async move {
        let mut upstream = BufReader::new(upstream_read);
        while let Some(reply) = pending.recv().await {
            let bytes = match reply {
                Reply::Upstream => {
                    let mut frame = Vec::new();
                    read_frame(&mut upstream, &mut frame).await?;
                    frame
                }
                Reply::Local(bytes) => bytes,
                Reply::Waitaof => {
                    let answer = answers.wait_for(Option::is_some).await.map_err(io::Error::other)?.clone().unwrap();
                    let words = vec!["(answered WAITAOF)".to_string()];
                    answer_log.lock().unwrap().push(Seen { connection, words });
                    answer
                }
            };
            client_write.write_all(&bytes).await?;
        }
        io::Result::Ok(())
    });
    let mut client = BufReader::new(client_read);
    loop {
        let mut frame = Vec::new();
        if read_frame(&mut client, &mut frame).await.is_err() {
            break;
        }
        let words = command_words(&frame);
        log.lock().unwrap().push(Seen { connection, words: words.clone() });
        let reply = match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["WAITAOF", ..] => Reply::Waitaof,
            ["COMMAND", info, name] if info.eq_ignore_ascii_case("info") && name.eq_ignore_ascii_case("waitaof") => {
                Reply::Local(b"*1\r\n*1\r\n$7\r\nwaitaof\r\n".to_vec())
            }
            _ => {
                upstream_write.write_all(&frame).await?;
                Reply::Upstream
            }
        };
        if replies.send(reply).is_err() {
            break;
        }
    }
    drop(replies);
    answering.abort();
    Ok(())
}

/// Reads one whole RESP value (RESP2 or RESP3, nested as deep as it goes) into `out`.
async fn read_frame<R: AsyncBufRead + Unpin>(r: &mut R, out: &mut Vec<u8>) -> io::Result<()> {
    let mut values_left = 1usize;
    while values_left > 0 {
        values_left -= 1;
        let start = out.len();
        if r.read_until(b'\n', out).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = out[start..].strip_suffix(b"\r\n").ok_or_else(|| io::Error::other("a RESP line without CRLF"))?;
        let number = || -> io::Result<i64> {
            std::str::from_utf8(&line[1..])
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| io::Error::other("a bad RESP length"))
        };
        match line.first() {
            Some(b'*' | b'~' | b'>') => values_left += usize::try_from(number()?).unwrap_or(0),
            Some(b'%' | b'|') => values_left += 2 * usize::try_from(number()?).unwrap_or(0),
            Some(b'$' | b'=' | b'!') => {
                if let Ok(len) = usize::try_from(number()?) {
                    let mut body = vec![0; len + 2];
                    r.read_exact(&mut body).await?;
                    out.extend_from_slice(&body);
                }
            }
            Some(_) => {}
            None => return Err(io::Error::other("an empty RESP line")),
        }
    }
    Ok(())
}

/// The words of a command (an array of bulk strings), its name upper-cased.
fn command_words(frame: &[u8]) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = frame;
    let next_line = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = rest[..end].to_vec();
        *rest = &rest[end + 2..];
        Some(line)
    };
    let Some(header) = next_line(&mut rest) else { return words };
    let count: usize = std::str::from_utf8(&header[1..]).ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    for _ in 0..count {
        let Some(len) = next_line(&mut rest) else { break };
        let len: usize = std::str::from_utf8(&len[1..]).ok().and_then(|n| n.parse().ok()).unwrap_or(0);
        if rest.len() < len + 2 {
            break;
        }
        words.push(String::from_utf8_lossy(&rest[..len]).into_owned());
        rest = &rest[len + 2..];
    }
    if let Some(name) = words.first_mut() {
        *name = name.to_ascii_uppercase();
    }
    words
}
