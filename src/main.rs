//! The `xietong` command line: `serve`, `check`, `explain`, `token new`, `audit verify`, `audit key`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use xietong::config::Config;
use xietong::config::settings::Backend;
use xietong::model::{AgencyId, BodyKind, Sender};
use xietong::pipeline::explain;

/// mimalloc instead of the system allocator: the pipeline allocates and frees many small
/// values per message (docs/performance.md, "What was changed"). The load harness's ceiling
/// and the stage benchmarks use it too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "xietong", version, about = "协同 — the data-exchange gateway between IP offices and procuratorates")]
struct Cli {
    /// The configuration directory.
    #[arg(long, global = true, default_value = "config", env = "XIETONG_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Listen on this address instead of the configured one.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Keep the embedded store here instead of the configured data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Check every configuration file; print each problem with its file and position.
    Check,
    /// Print the OpenAPI 3.1 document of the HTTP API (what GET /v1/openapi.json serves).
    Openapi,
    /// Run the whole pipeline on a message without storing or delivering it; print one JSON
    /// object. Exit 0 if accepted, 1 if refused, 2 on a usage or configuration error.
    Explain {
        /// The sending agency, e.g. ip_office:330100, or a hub, e.g. hub:yangtze_delta (hubs send
        /// canonical events: --kind cloudevent).
        #[arg(long = "as", value_name = "AGENCY_ID")]
        sender: Sender,
        /// Read the message as this kind of body.
        #[arg(long, value_enum, default_value_t = Kind::Native)]
        kind: Kind,
        /// The message file, or `-` for standard input.
        file: PathBuf,
    },
    /// Manage bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the whole chain and its signed checkpoints; print a JSON report naming the first
    /// broken link. Exit 0 if intact, 1 if broken, 2 on a usage or configuration error.
    Verify {
        /// The data directory of the embedded store (default: the configured one).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The public key to check checkpoints with (default: audit.verify_key, or the public
        /// half of audit.signing_key).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Make an Ed25519 key for signing checkpoints: the private key goes to FILE (mode 0600),
    /// the public key to standard output.
    Key {
        /// Where to write the private key (PKCS#8 PEM); it must not exist.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a fresh token for an agency (or, with --operator, an operator) and the lines to
    /// add to agencies.yaml (or operators.yaml).
    New {
        /// The agency, e.g. ip_office:330100.
        #[arg(required_unless_present = "operator", conflicts_with = "operator")]
        agency: Option<AgencyId>,
        /// An operator's name, for the admin endpoints.
        #[arg(long)]
        operator: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// The sender's native format (as configured for the agency).
    Native,
    /// A canonical CloudEvent (as posted with application/cloudevents+json).
    Cloudevent,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { listen, data_dir } => serve(&cli.config, listen, data_dir).await,
        Command::Check => check(&cli.config),
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(xietong::http::contract::document()).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Command::Explain { sender, kind, file } => explain_file(&cli.config, &sender, kind, &file).await,
        Command::Audit { command: AuditCommand::Verify { data_dir, key } } => {
            audit_verify(&cli.config, data_dir, key).await
        }
        Command::Audit { command: AuditCommand::Key { file } } => audit_key(&file),
        Command::Token { command: TokenCommand::New { agency, operator } } => {
            let token = xietong::token::generate();
            let hash = xietong::token::format_hash(&xietong::token::hash(&token));
            let (who, file, entry) = match (agency, operator) {
                (Some(a), _) => (a.to_string(), "agencies.yaml", format!("  - id: {a}")),
                (None, Some(name)) => (format!("operator {name}"), "operators.yaml", format!("  - name: {name}")),
                (None, None) => {
                    eprintln!("name an agency (token new ip_office:330100) or an operator (token new --operator NAME)");
                    return ExitCode::from(2);
                }
            };
            println!("token for {who} (shown once; hand it over, store it nowhere else):\n\n  {token}\n");
            println!("add its hash to {}/{file}:\n\n{entry}\n    tokens:\n      - {hash}", cli.config.display());
            ExitCode::SUCCESS
        }
    }
}

fn load(dir: &std::path::Path) -> Result<Config, ExitCode> {
    xietong::pipeline::rule_tests::load(dir).map_err(|errors| {
        eprintln!("{errors}");
        eprintln!("configuration in {} has {} problem(s)", dir.display(), errors.0.len());
        ExitCode::from(2)
    })
}

async fn audit_verify(dir: &std::path::Path, data_dir: Option<PathBuf>, key: Option<PathBuf>) -> ExitCode {
    use xietong::audit::checkpoint::Verifier;
    let config = match load(dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let audit = &config.settings.audit;
    let key = key.or_else(|| audit.verify_key.as_ref().or(audit.signing_key.as_ref()).map(|k| dir.join(k)));
    let verifier = match key.as_deref().map(Verifier::load).transpose() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // An explicit data directory is the embedded store's, whatever the configuration says.
    let mut settings = config.settings;
    if let Some(dir) = data_dir {
        settings.store.backend = Backend::Embedded;
        settings.data_dir = dir;
    }
    let clock = std::sync::Arc::new(xietong::clock::SystemClock);
    let store = match xietong::store::open_read_only(&settings, clock).await {
        Ok(s) => s,
        Err(e) if settings.store.backend == Backend::Embedded => {
            eprintln!("{e} (pass --data-dir)");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("cannot read the audit log from Redis: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match xietong::store::audit::verify(store.as_ref(), verifier.as_ref()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot read the audit log: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = serde_json::to_value(&report).unwrap_or_default();
    out["intact"] = report.intact().into();
    out["key"] = verifier.map(|v| v.key_id()).into();
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    if report.intact() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn audit_key(file: &std::path::Path) -> ExitCode {
    let signer = xietong::audit::checkpoint::Signer::generate();
    let (private, public) = match signer.to_pem() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot encode the key: {e}");
            return ExitCode::from(2);
        }
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file).and_then(|mut f| std::io::Write::write_all(&mut f, private.as_bytes())) {
        Ok(()) => {
            eprintln!("private key written to {}; set audit.signing_key to it", file.display());
            print!("{public}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::from(2)
        }
    }
}

fn check(dir: &std::path::Path) -> ExitCode {
    match load(dir) {
        Ok(config) => {
            println!(
                "{}: OK — {} source formats ({}), {} agencies, {} operators, {} routing rules, {} regions, {} divisions",
                dir.display(),
                config.formats.len(),
                config.formats.keys().cloned().collect::<Vec<_>>().join(", "),
                config.agencies.len(),
                config.operators.len(),
                config.router.rules().len(),
                config.router.regions.iter().count(),
                config.router.divisions.len(),
            );
            let s = &config.settings;
            let listener = match (&s.tls, config.tls.as_ref().and_then(|m| m.clients.as_ref())) {
                (None, _) => "plain HTTP".to_string(),
                (Some(_), None) => "HTTPS".to_string(),
                (Some(t), Some(_)) => format!("HTTPS with client certificates from {} CA file(s)", t.client_ca.len()),
            };
            let checkpoints =
                if s.audit.signing_key.is_some() { "signed checkpoints" } else { "no signed checkpoints" };
            let store = match s.store.backend {
                Backend::Embedded => format!("embedded store in {}", s.data_dir.display()),
                Backend::Redis => format!(
                    "Redis store at {}{} under {{{}}}",
                    xietong::config::settings::redact(&s.store.redis.url),
                    if s.store.redis.cluster { " (Cluster)" } else { "" },
                    s.store.redis.prefix
                ),
            };
            println!(
                "  {} message types granted in permissions.yaml; {listener}; {store}; audit chain {} with {checkpoints}",
                config.permissions.types_granted(),
                s.audit.hash.as_str(),
            );
            println!("  {}", config.schemas.summary());
            println!("  {} routing tests passed (rules.test.yaml)", config.rule_tests);
            for w in &config.warnings {
                eprintln!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

async fn explain_file(dir: &std::path::Path, sender: &Sender, kind: Kind, file: &std::path::Path) -> ExitCode {
    let config = match load(dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut body = Vec::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut body).map(|_| ())
    } else {
        std::fs::read(file).map(|b| body = b)
    };
    if let Err(e) = read {
        eprintln!("cannot read {}: {e}", file.display());
        return ExitCode::from(2);
    }
    let kind = match kind {
        Kind::Native => BodyKind::Native,
        Kind::Cloudevent => BodyKind::CloudEvent,
    };
    match explain::explain(&config, sender, kind, &body, None).await {
        Ok(e) => {
            println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
            if e.accepted { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(usage) => {
            eprintln!("{usage}");
            ExitCode::from(2)
        }
    }
}

async fn serve(dir: &std::path::Path, listen: Option<std::net::SocketAddr>, data_dir: Option<PathBuf>) -> ExitCode {
    let config = match load(dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let overrides = xietong::gateway::Overrides { listen, data_dir, workers: None };
    xietong::telemetry::init_logging(&config.settings.log);
    let gateway = match xietong::gateway::Gateway::open(config, overrides).await {
        Ok(g) => std::sync::Arc::new(g),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let data_dir = gateway.runtime().config.settings.data_dir.clone();
    gateway.start_workers();
    let running = match xietong::http::start(gateway, None) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot listen: {e}");
            return ExitCode::from(1);
        }
    };
    // One line on stdout for scripts and tests: where the gateway listens.
    println!("xietong listening on http://{}", running.addr);
    tracing::info!(addr = %running.addr, data_dir = %data_dir.display(), "listening");
    match running.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server error: {e}");
            ExitCode::from(1)
        }
    }
}
