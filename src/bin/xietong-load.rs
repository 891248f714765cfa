//! `xietong-load`: drives a running gateway with realistic native messages and reports
//! throughput and latency, next to the ceiling measured the same way in the same run.
//!
//!     xietong-load --url http://127.0.0.1:8080 --ceiling --connections 64 --sizes 1k
//!     xietong-load ceiling --listen 127.0.0.1:9090
//!
//! docs/performance.md has the commands behind every figure.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;
use xietong::load::drive::{self, Plan};
use xietong::load::messages::Mix;
use xietong::load::report::Report;

#[derive(Parser)]
#[command(
    name = "xietong-load",
    about = "Load for a running xietong gateway, measured against the ceiling of its stack"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Also measure the ceiling (a minimal actix-web handler in a child process) first, and
    /// report every figure as a share of it.
    #[arg(long)]
    ceiling: bool,
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
        let server = xietong::load::ceiling::server(listener, workers)?;
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
    let mix = Mix {
        sizes: cli.sizes.clone(),
        procuratorate: cli.procuratorate,
        cross_region: cli.cross_region,
        stripped: cli.stripped,
    };
    let run = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let plan = Plan {
        url: cli.url.clone(),
        connections: cli.connections.max(1),
        rate: cli.rate,
        warmup: cli.warmup,
        duration: cli.duration,
        mix,
        run,
    };
    println!(
        "{} connections, {}, {:?} measured after {:?} of warm-up; sizes {:?} B; procuratorate {}, cross-region {}, stripped {}",
        plan.connections,
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
        let (mut child, url) = match start_ceiling() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("xietong-load: {e}");
                return ExitCode::from(1);
            }
        };
        let result = drive::run("ceiling", &Plan { url, ..plan.clone() }).await;
        let _ = child.kill();
        let _ = child.wait();
        match result {
            Ok(r) => {
                println!("{r}");
                ceiling = Some(r.per_second);
                reports.push(r);
            }
            Err(e) => {
                eprintln!("xietong-load: the ceiling: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let mut gateway = match drive::run("gateway", &plan).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xietong-load: {e}");
            return ExitCode::from(1);
        }
    };
    gateway.ratio_to_ceiling = ceiling.filter(|c| *c > 0.0).map(|c| gateway.per_second / c);
    println!("{gateway}");
    let refused = gateway.requests - gateway.done;
    reports.push(gateway);
    if let Some(path) = &cli.json {
        let doc = json!({
            "machine": { "cores": cores() },
            "plan": {
                "url": plan.url, "connections": plan.connections, "rate": plan.rate,
                "seconds": plan.duration.as_secs_f64(), "warmup_seconds": plan.warmup.as_secs_f64(),
                "sizes": plan.mix.sizes, "procuratorate": plan.mix.procuratorate,
                "cross_region": plan.mix.cross_region, "stripped": plan.mix.stripped,
            },
            "reports": reports,
        });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("xietong-load: {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if refused > 0 {
        eprintln!("xietong-load: {refused} answers were not 202 (see the statuses above)");
    }
    ExitCode::SUCCESS
}
