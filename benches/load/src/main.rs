//! `xietong-load`: drives a running gateway with realistic native messages and reports
//! throughput and latency, next to the ceiling measured the same way in the same run; with
//! `--webhook` and `--sse`, also what reaches the recipients and how long after its POST.
//!
//!     xietong-load --url http://127.0.0.1:8080 --ceiling --connections 64 --sizes 1k
//!     xietong-load --url http://127.0.0.1:8080 --rate 500 \
//!         --webhook procuratorate:330100=demo-procuratorate-330100 \
//!         --sse ip_office:330100=demo-ip_office-330100
//!     xietong-load ceiling --listen 127.0.0.1:9090
//!
//! docs/performance.md has the commands behind every figure.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::json;
use xietong_load::delivery::{self, DeliveryReport, Reader};
use xietong_load::drive::{self, Plan};
use xietong_load::messages::Mix;
use xietong_load::receiver::{self, Receiver};
use xietong_load::report::Report;
use xietong_load::sse;

/// The gateway's allocator (the gateway's src/main.rs), so the ceiling measured here runs on the
/// same one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "xietong-load",
    about = "Load for a running xietong gateway, measured against the ceiling of its stack"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// The gateway's base URL; several (comma-separated) for instances of one gateway, the
    /// connections spread over them.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_delimiter = ',')]
    url: Vec<String>,
    /// Also measure the ceiling (a minimal actix-web handler in a child process) first, and
    /// report every figure as a share of it.
    #[arg(long)]
    ceiling: bool,
    /// With `--ceiling`: fail (exit 1) when the gateway's throughput is below this share of the
    /// ceiling's, e.g. 0.05 for 5% (the regression guard's threshold for a collapse).
    #[arg(long, requires = "ceiling")]
    min_share: Option<f64>,
    /// Connections, each sending one message after another.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Messages per second in total (open loop); default: as fast as the connections go.
    #[arg(long)]
    rate: Option<f64>,
    /// How long each phase is measured.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Sent before each phase is measured, not counted.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Body sizes, each message takes one at random: bytes, or with k (KiB), e.g. 1k,16k,64k.
    #[arg(long, default_value = "1k", value_delimiter = ',', value_parser = size)]
    sizes: Vec<usize>,
    /// Share of messages from procuratorates (opinion requests); the rest are IP offices' clue
    /// transfers.
    #[arg(long, default_value_t = 0.3)]
    procuratorate: f64,
    /// Share of cases touching another province of the sender's key region.
    #[arg(long, default_value_t = 0.2)]
    cross_region: f64,
    /// Share of messages with an attachment marked 秘密, which the gateway removes.
    #[arg(long, default_value_t = 0.1)]
    stripped: f64,
    /// Subscribe OWNER's feed (with its TOKEN) to a webhook receiver run here, for the run, and
    /// report what reaches it: OWNER=TOKEN, repeatable. The gateway must allow webhooks to
    /// 127.0.0.1 (`delivery.allow_internal: [127.0.0.0/8]`).
    #[arg(long, value_parser = delivery::reader)]
    webhook: Vec<Reader>,
    /// Requests in flight to the receiver per subscription.
    #[arg(long, default_value_t = 64)]
    webhook_concurrency: u32,
    /// Subscriptions per `--webhook` feed: each message to the feed is delivered this many
    /// times (to weigh delivery against ingest).
    #[arg(long, default_value_t = 1)]
    webhook_copies: usize,
    /// Follow OWNER's feed over Server-Sent Events during the run: OWNER=TOKEN, repeatable.
    #[arg(long, value_parser = delivery::reader)]
    sse: Vec<Reader>,
    /// The longest wait, after the load, for deliveries still on their way.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// Also write the reports as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Sub {
    /// Serve the ceiling: parse the JSON body, answer 202.
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
        /// Worker threads (default: one per core, as the gateway).
        #[arg(long)]
        workers: Option<usize>,
    },
}

fn size(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    let (number, unit) = match t.strip_suffix('k') {
        Some(n) => (n, 1024),
        None => (t.as_str(), 1),
    };
    match number.parse::<usize>() {
        Ok(n) if n > 0 && n * unit <= 1024 * 1024 => Ok(n * unit),
        _ => Err(format!("`{text}`: a size in bytes or KiB (1k to 1024k) was expected")),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Sub::Ceiling { listen, workers }) => serve_ceiling(listen, workers.unwrap_or_else(cores)),
        None => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(measure(&cli)),
            Err(e) => {
                eprintln!("xietong-load: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn serve_ceiling(listen: &str, workers: usize) -> ExitCode {
    let listener = match TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("xietong-load ceiling: {listen}: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let result = actix_web::rt::System::new().block_on(async move {
        let server = xietong_load::ceiling::server(listener, workers)?;
        println!("ceiling listening on http://{addr}");
        server.await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xietong-load ceiling: {e}");
            ExitCode::from(1)
        }
    }
}

/// The ceiling in a child process (so it has the machine as the gateway does): its URL.
fn start_ceiling() -> Result<(Child, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let mut child = Command::new(exe)
        .args(["ceiling", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the ceiling: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("the ceiling's output")?;
    BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("the ceiling's output: {e}"))?;
    match line.trim().strip_prefix("ceiling listening on ") {
        Some(url) => Ok((child, url.to_string())),
        None => {
            let _ = child.kill();
            Err(format!("the ceiling did not start: {line}"))
        }
    }
}

async fn measure(cli: &Cli) -> ExitCode {
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("xietong-load: {e}");
            ExitCode::from(1)
        }
    }
}

/// The delivery side of a run: the receiver, the subscriptions made for it, the SSE readers.
struct Watch {
    receiver: Option<Receiver>,
    /// Subscription id, its owner, and its name at the receiver.
    subscriptions: Vec<(String, Reader, String)>,
    /// The receiver's names of the subscriptions, and the feeds they read.
    hooks: Vec<(String, String)>,
    readers: Vec<(String, tokio::task::JoinHandle<sse::Seen>)>,
    seen: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Watch {
    async fn start(cli: &Cli, url: &str, run: &str) -> Result<Watch, String> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut watch = Watch {
            receiver: None,
            subscriptions: Vec::new(),
            hooks: Vec::new(),
            readers: Vec::new(),
            seen: Arc::default(),
            stop,
        };
        if !cli.webhook.is_empty() {
            let secret = receiver::new_secret();
            let receiver = Receiver::start("127.0.0.1:0", &secret, cores())?;
            watch.receiver = Some(receiver);
            let copies = (0..cli.webhook_copies.max(1)).flat_map(|_| &cli.webhook);
            for (i, reader) in copies.enumerate() {
                let (id, name) = (format!("load-{run}-{i}"), i.to_string());
                let hook = format!("{}/{name}", watch.receiver.as_ref().map_or("", |r| r.url.as_str()));
                match delivery::subscribe(url, reader, &id, &hook, &secret, cli.webhook_concurrency).await {
                    Ok(id) => {
                        watch.hooks.push((name.clone(), reader.owner.clone()));
                        watch.subscriptions.push((id, reader.clone(), name));
                    }
                    Err(e) => {
                        watch.end(url).await;
                        return Err(e);
                    }
                }
            }
        }
        for (i, reader) in cli.sse.iter().enumerate() {
            let after = delivery::head(url, reader, &format!("load-{run}-head-{i}")).await?;
            let (url, r, stopped, seen) = (url.to_string(), reader.clone(), stopped.clone(), watch.seen.clone());
            let task = tokio::spawn(async move { sse::read(&url, &r.owner, &r.token, after, stopped, seen).await });
            watch.readers.push((reader.owner.clone(), task));
        }
        Ok(watch)
    }

    fn arrived(&self) -> usize {
        self.receiver.as_ref().map_or(0, Receiver::count) + self.seen.load(Ordering::Relaxed)
    }

    /// Waits until nothing more has arrived for a second, or `drain` has passed.
    async fn drain(&self, drain: Duration) {
        let until = Instant::now() + drain;
        let (mut last, mut quiet_since) = (self.arrived(), Instant::now());
        while Instant::now() < until && quiet_since.elapsed() < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.arrived();
            if now != last {
                (last, quiet_since) = (now, Instant::now());
            }
        }
    }

    /// Deletes the subscriptions and stops the readers; what arrived at the receiver and the
    /// readers.
    async fn end(&mut self, url: &str) -> (Option<xietong_load::receiver::Arrivals>, Vec<(String, sse::Seen)>) {
        for (id, reader, _) in self.subscriptions.drain(..) {
            if let Err(e) = delivery::unsubscribe(url, &reader, &id).await {
                eprintln!("xietong-load: {e}");
            }
        }
        let _ = self.stop.send(true);
        let mut seen = Vec::new();
        for (owner, task) in self.readers.drain(..) {
            seen.push((owner, task.await.unwrap_or_default()));
        }
        let arrivals = match self.receiver.take() {
            Some(r) => Some(r.stop().await),
            None => None,
        };
        (arrivals, seen)
    }
}

/// Runs the phases; false when some answers were not 202 or some deliveries did not arrive.
async fn run(cli: &Cli) -> Result<bool, String> {
    let mix = Mix {
        sizes: cli.sizes.clone(),
        procuratorate: cli.procuratorate,
        cross_region: cli.cross_region,
        stripped: cli.stripped,
    };
    let run = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let watching = !cli.webhook.is_empty() || !cli.sse.is_empty();
    let plan = Plan {
        urls: cli.url.clone(),
        connections: cli.connections.max(1),
        rate: cli.rate,
        warmup: cli.warmup,
        duration: cli.duration,
        mix,
        run: run.clone(),
        receipts: watching,
    };
    println!(
        "{} connections to {}, {}, {:?} measured after {:?} of warm-up; sizes {:?} B; procuratorate {}, cross-region {}, stripped {}",
        plan.connections,
        plan.urls.join(" "),
        plan.rate.map_or("closed loop".to_string(), |r| format!("{r} messages/s")),
        plan.duration,
        plan.warmup,
        plan.mix.sizes,
        plan.mix.procuratorate,
        plan.mix.cross_region,
        plan.mix.stripped
    );
    let mut reports: Vec<Report> = Vec::new();
    let mut ceiling = None;
    if cli.ceiling {
        let (mut child, url) = start_ceiling()?;
        let result = drive::run("ceiling", &Plan { urls: vec![url], receipts: false, ..plan.clone() }).await;
        let _ = child.kill();
        let _ = child.wait();
        let r = result.map_err(|e| format!("the ceiling: {e}"))?.report;
        println!("{r}");
        ceiling = Some(r.per_second);
        reports.push(r);
    }
    let url = plan.urls[0].trim_end_matches('/').to_string();
    let mut watch = Watch::start(cli, &url, &run).await?;
    let measured = drive::run("gateway", &plan).await;
    if watching {
        watch.drain(cli.drain).await;
    }
    let hooks = watch.hooks.clone();
    let (arrivals, seen) = watch.end(&url).await;
    let measured = measured?;
    let mut gateway = measured.report;
    gateway.ratio_to_ceiling = ceiling.filter(|c| *c > 0.0).map(|c| gateway.per_second / c);
    println!("{gateway}");
    let refused = gateway.requests - gateway.done;
    let share = gateway.ratio_to_ceiling;
    reports.push(gateway);

    let mut deliveries: Vec<DeliveryReport> = Vec::new();
    if let Some(a) = arrivals {
        let mut r = delivery::report("webhooks", &measured.sent, &hooks, &a.delivered, measured.measured);
        r.bad_signatures = Some(a.bad_signatures);
        deliveries.push(r);
    }
    for (owner, s) in seen {
        if let Some(why) = &s.broke {
            eprintln!("xietong-load: the SSE stream of {owner} broke: {why}");
        }
        let tagged: Vec<(String, String, Instant)> =
            s.events.into_iter().map(|(id, at)| (owner.clone(), id, at)).collect();
        let readers = [(owner.clone(), owner)];
        deliveries.push(delivery::report("sse", &measured.sent, &readers, &tagged, measured.measured));
    }
    for d in &deliveries {
        println!("{d}");
    }

    if let Some(path) = &cli.json {
        let doc = json!({
            "machine": { "cores": cores() },
            "plan": {
                "urls": plan.urls, "connections": plan.connections, "rate": plan.rate,
                "seconds": plan.duration.as_secs_f64(), "warmup_seconds": plan.warmup.as_secs_f64(),
                "sizes": plan.mix.sizes, "procuratorate": plan.mix.procuratorate,
                "cross_region": plan.mix.cross_region, "stripped": plan.mix.stripped,
                "webhooks": cli.webhook.iter().map(|r| &r.owner).collect::<Vec<_>>(),
                "sse": cli.sse.iter().map(|r| &r.owner).collect::<Vec<_>>(),
            },
            "reports": reports,
            "deliveries": deliveries,
        });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut ok = true;
    if refused > 0 {
        eprintln!("xietong-load: {refused} answers were not 202 (see the statuses above)");
        ok = false;
    }
    if let (Some(min), Some(share)) = (cli.min_share, share)
        && share < min
    {
        eprintln!(
            "xietong-load: the gateway reached {:.1}% of the ceiling, below the {:.1}% required (--min-share)",
            share * 100.0,
            min * 100.0
        );
        ok = false;
    }
    for d in deliveries.iter().filter(|d| d.missing > 0 || d.bad_signatures.unwrap_or(0) > 0) {
        eprintln!("xietong-load: {}: {} deliveries missing, {:?} bad signatures", d.name, d.missing, d.bad_signatures);
        ok = false;
    }
    Ok(ok)
}
