//! The `acd` command line: thin, everything lives in the library.

use acd::config::{Config, ShutdownMode};
use acd::context::{parse_skills, Store};
use acd::serve::{self, Demo};
use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "acd",
    version,
    about = "SIP contact-center ACD with context-aware routing"
)]
struct Cli {
    /// Config file (default: ./acd.toml if present, else built-in defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://USER@HOST/DB (overrides the config).
    #[arg(long, global = true)]
    db: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the contact centre.
    Serve {
        #[arg(long)]
        sip_listen: Option<SocketAddr>,
        #[arg(long)]
        http_listen: Option<SocketAddr>,
        /// Address put in Via/Contact/SDP (needed when listening on 0.0.0.0 for other hosts).
        #[arg(long)]
        advertise: Option<IpAddr>,
        #[arg(long)]
        dialplan: Option<PathBuf>,
        /// RTP port range LOW-HIGH.
        #[arg(long)]
        rtp_ports: Option<String>,
        /// Seed the demo centre: agents 1001 (sales), 1002 (support), 1003 (both).
        #[arg(long)]
        demo: bool,
        /// Password for the demo agents (random and printed if not given).
        #[arg(long)]
        demo_password: Option<String>,
        /// On SIGTERM, drain instead of ending calls: take no new calls (503), let those in
        /// progress finish, then stop (a second SIGTERM or Ctrl-C ends them at once). SIGUSR1
        /// drains and stops whatever this flag says.
        #[arg(long)]
        drain: bool,
    },
    /// Manage agents.
    Agents {
        #[command(subcommand)]
        cmd: AgentsCmd,
    },
    /// Import campaign sends, customers or tickets from a CSV file with a header row.
    Import {
        kind: acd::context::import::ImportKind,
        file: PathBuf,
        /// Check every row and report, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Reports from the interaction history.
    Report {
        #[command(subcommand)]
        kind: ReportCmd,
    },
    /// Show where a call would go and why, without a call (reads the store and the dialplan).
    Route {
        /// The caller's number, in any common format.
        #[arg(long)]
        from: String,
        /// The dialled number.
        #[arg(long)]
        to: String,
        /// Evaluate at this ISO-8601 time instead of now.
        #[arg(long)]
        at: Option<String>,
        /// The address the INVITE comes from (a `[[trunk]]` address makes the number trusted).
        #[arg(long)]
        source: Option<std::net::IpAddr>,
        /// A P-Asserted-Identity number (believed only from a trunk).
        #[arg(long)]
        pai: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        dialplan: Option<PathBuf>,
    },
    /// Validate a dialplan file; errors name the line.
    CheckDialplan { file: PathBuf },
    /// Write the built-in welcome and hold-music prompts as WAV files (8 kHz mono) to a folder.
    Prompts {
        #[arg(long, default_value = "prompts")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AgentsCmd {
    /// Add an agent (its SIP user name is ID).
    Add {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        password: String,
        /// e.g. sales:5,support:2 (level 1-10, default 5)
        #[arg(long, default_value = "")]
        skills: String,
        /// Desk role: agent, supervisor, marketer or admin
        #[arg(long, default_value = "agent")]
        role: String,
        /// The agent's own after-call seconds (default: each queue's wrapup_s)
        #[arg(long)]
        wrapup_s: Option<u32>,
    },
    List,
    /// Change an agent's skills or wrap-up (a running server routes on it within
    /// database.reload_s).
    Set {
        id: String,
        /// e.g. sales:5,support:2 (replaces all the agent's skills)
        #[arg(long)]
        skills: Option<String>,
        /// The agent's own after-call seconds
        #[arg(long, conflicts_with = "queue_wrapup")]
        wrapup_s: Option<u32>,
        /// Back to each queue's wrapup_s
        #[arg(long)]
        queue_wrapup: bool,
    },
    Remove {
        id: String,
    },
}

#[derive(Subcommand)]
enum ReportCmd {
    /// Service level, speed of answer, abandonment, handle time, transfers and first-contact
    /// resolution per queue, per agent and per hour.
    Queues {
        /// Calls from (ISO-8601; default 30 days before --until).
        #[arg(long)]
        since: Option<String>,
        /// Calls before (ISO-8601; default now).
        #[arg(long)]
        until: Option<String>,
        /// table, csv or json
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Calls per SMS campaign: recipients, callers inside the window, answered, abandoned,
    /// waits, dispositions, conversion, calls by hour since the send.
    Campaigns {
        /// Sends from (ISO-8601; default 30 days before --until).
        #[arg(long)]
        since: Option<String>,
        /// Sends before (ISO-8601; default now).
        #[arg(long)]
        until: Option<String>,
        /// table, csv or json
        #[arg(long, default_value = "table")]
        format: String,
        /// Also write the charts to this SVG file.
        #[arg(long)]
        chart: Option<PathBuf>,
        /// A caller who got several campaigns counts for the latest send or the first
        /// (default: reports.attribution from the config, else latest).
        #[arg(long)]
        attribution: Option<String>,
    },
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let mut cfg = match &cli.config {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None if std::path::Path::new("acd.toml").exists() => {
            Config::load(std::path::Path::new("acd.toml")).map_err(|e| e.to_string())?
        }
        None => Config::default(),
    };
    if let Some(db) = &cli.db {
        cfg.database.url = db.clone();
    }
    Ok(cfg)
}

async fn run(cli: Cli) -> Result<(), String> {
    let mut cfg = load_config(&cli)?;
    match cli.cmd {
        Cmd::Serve {
            sip_listen,
            http_listen,
            advertise,
            dialplan,
            rtp_ports,
            demo,
            demo_password,
            drain,
        } => {
            if let Some(a) = sip_listen {
                cfg.sip.listen = a;
            }
            if let Some(a) = http_listen {
                cfg.http.listen = a;
            }
            if let Some(a) = advertise {
                cfg.sip.advertise = Some(a);
            }
            if let Some(d) = dialplan {
                cfg.dialplan = d;
            }
            if let Some(r) = rtp_ports {
                cfg.media.rtp_ports = r;
            }
            // Handlers first: a signal sent as soon as "acd is running" appears must not meet
            // the default action (SIGHUP would end the process).
            let signals = Signals::install()?;
            let running = serve::start(
                &cfg,
                &Demo {
                    enabled: demo,
                    password: demo_password,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            let sip = running.core.sip_addr;
            let tls = running
                .sip_tls_addr
                .map(|a| format!(", SIP {a} (TLS)"))
                .unwrap_or_default();
            let scheme = if cfg.http.https { "https" } else { "http" };
            println!(
                "acd is running: SIP {sip} (UDP+TCP){tls}, HTTP {scheme}://{}",
                running.http_addr
            );
            if let Some(pw) = &running.demo_password {
                println!("demo centre: dial 100 (menu: 1 sales, 2 support) or 200 (support)");
                for (number, story) in serve::DEMO_CALLERS {
                    println!("  caller {number} {story}");
                }
                for (id, name, skills) in serve::DEMO_AGENTS {
                    println!("  agent {id} ({name}, {skills}) password: {pw}");
                }
                for (id, name, _) in serve::DEMO_STAFF {
                    println!("  desk user {id} ({name}) password: {pw}");
                }
                println!(
                    "  agent desk {scheme}://{0}/desk · wallboard {scheme}://{0}/wallboard",
                    running.http_addr
                );
                println!(
                    "  register a softphone as sip:1001@{}:{} with that password",
                    cfg.advertise(),
                    sip.port()
                );
            }
            let mut signals = signals;
            let mut running = running;
            let why = wait_for_shutdown(&cfg, &running, &mut signals).await?;
            // An upgrade callers do not hear: the next start takes the calls over.
            if why == Stop::Term && !drain && cfg.calls.shutdown == ShutdownMode::Resume {
                println!("shutting down: calls in progress are left to the next start");
                running.stop(true).await;
                return Ok(());
            }
            if why == Stop::Drain || (drain && why == Stop::Term) {
                println!("draining: no new calls; waiting for the calls in progress to end");
                tokio::select! {
                    _ = running.core.drain() => println!("drained"),
                    _ = signals.term.recv() => println!("second signal: ending the calls left"),
                    _ = tokio::signal::ctrl_c() => println!("second signal: ending the calls left"),
                }
            }
            println!("shutting down: ending calls");
            running.stop(false).await;
            Ok(())
        }
        Cmd::Agents { cmd } => {
            let store = Store::open(&cfg.database.url)
                .await
                .map_err(|e| e.to_string())?;
            let r = match cmd {
                AgentsCmd::Add {
                    id,
                    name,
                    password,
                    skills,
                    role,
                    wrapup_s,
                } => {
                    let skills = parse_skills(&skills).map_err(|e| e.to_string())?;
                    let role = acd::context::Role::parse(&role).ok_or_else(|| {
                        format!("role '{role}': use agent, supervisor, marketer or admin")
                    })?;
                    let r = store
                        .add_agent(&id, &name, &cfg.sip.realm, &password, &skills)
                        .await;
                    match r {
                        Ok(()) => match store.set_role(&id, role).await {
                            Ok(_) => store
                                .set_wrapup(&id, wrapup_s)
                                .await
                                .map(|_| println!("added agent {id} ({})", role.as_str())),
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    }
                }
                AgentsCmd::List => store.list_agents().await.map(|list| {
                    println!(
                        "{:<10} {:<20} {:<11} {:<7} skills",
                        "id", "name", "role", "wrapup"
                    );
                    for a in list {
                        let s: Vec<String> =
                            a.skills.iter().map(|(k, l)| format!("{k}:{l}")).collect();
                        let wrapup = a.wrapup_s.map_or("queue".to_string(), |w| format!("{w}s"));
                        println!(
                            "{:<10} {:<20} {:<11} {:<7} {}",
                            a.id,
                            a.name,
                            a.role.as_str(),
                            wrapup,
                            s.join(",")
                        );
                    }
                }),
                AgentsCmd::Set {
                    id,
                    skills,
                    wrapup_s,
                    queue_wrapup,
                } => {
                    let r = set_agent(&store, &id, skills.as_deref(), wrapup_s, queue_wrapup).await;
                    store.close().await;
                    return r;
                }
                AgentsCmd::Remove { id } => match store.remove_agent(&id).await {
                    Ok(true) => {
                        println!("removed agent {id}");
                        Ok(())
                    }
                    Ok(false) => {
                        store.close().await;
                        return Err(format!("no agent '{id}'"));
                    }
                    Err(e) => Err(e),
                },
            };
            store.close().await;
            r.map_err(|e| e.to_string())
        }
        Cmd::Import {
            kind,
            file,
            dry_run,
        } => import(&cfg, kind, &file, dry_run).await,
        Cmd::Report {
            kind:
                ReportCmd::Queues {
                    since,
                    until,
                    format,
                },
        } => report_queues(&cfg, since.as_deref(), until.as_deref(), &format).await,
        Cmd::Report {
            kind:
                ReportCmd::Campaigns {
                    since,
                    until,
                    format,
                    chart,
                    attribution,
                },
        } => {
            report_campaigns(
                &cfg,
                since.as_deref(),
                until.as_deref(),
                &format,
                chart.as_deref(),
                attribution.as_deref(),
            )
            .await
        }
        Cmd::Route {
            from,
            to,
            at,
            source,
            pai,
            json,
            dialplan,
        } => {
            if let Some(d) = dialplan {
                cfg.dialplan = d;
            }
            let id = acd::call::identify_parts(&from, pai.as_deref(), source, &cfg.trunk);
            route(&cfg, &id, &to, at.as_deref(), json).await
        }
        Cmd::CheckDialplan { file } => {
            let d = acd::routing::Dialplan::load(&file).map_err(|e| e.to_string())?;
            let mut nums: Vec<_> = d.numbers().collect();
            nums.sort();
            println!(
                "{}: ok ({} queues, {} numbers)",
                file.display(),
                d.queues.len(),
                nums.len()
            );
            for (n, q) in nums {
                println!("  {n} -> {q}");
            }
            Ok(())
        }
        Cmd::Prompts { out } => {
            use acd::media::prompt::{default_hold_music, default_welcome, write_wav};
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            for (name, pcm) in [
                ("welcome.wav", default_welcome()),
                ("hold.wav", default_hold_music()),
            ] {
                let p = out.join(name);
                std::fs::write(&p, write_wav(&pcm)).map_err(|e| format!("{}: {e}", p.display()))?;
                println!("wrote {}", p.display());
            }
            Ok(())
        }
    }
}

async fn route(
    cfg: &Config,
    id: &acd::call::Identity,
    to: &str,
    at: Option<&str>,
    json: bool,
) -> Result<(), String> {
    let now = match at {
        Some(a) => acd::context::time::parse_iso8601(a)
            .ok_or_else(|| format!("--at '{a}' is not an ISO-8601 time"))?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let plan = serve::load_dialplan(cfg).map_err(|e| e.to_string())?;
    let country = acd::context::e164::Country::by_iso(&cfg.context.default_country)
        .map_err(|e| e.to_string())?;
    let from = id.number.as_str();
    let number = acd::context::e164::normalize(from, &country);
    let context = match &number {
        Ok(n) => {
            let store = Store::open(&cfg.database.url)
                .await
                .map_err(|e| e.to_string())?;
            let c = store.lookup(n, now).await.map_err(|e| e.to_string());
            store.close().await;
            Some(c?)
        }
        Err(_) => None,
    };
    let caller = number
        .as_ref()
        .map_or_else(|_| from.to_string(), String::clone);
    let input = acd::routing::rules::Input {
        dialed: to,
        caller: &caller,
        context: context.as_ref(),
        now,
    };
    let d = plan.decide(&input).ok_or_else(|| {
        format!(
            "number '{to}' is not in the dialplan ({})",
            cfg.dialplan.display()
        )
    })?;
    if json {
        let mut v = serde_json::to_value(&d).map_err(|e| e.to_string())?;
        v["caller"] = serde_json::json!(caller);
        v["identity"] = serde_json::to_value(id).map_err(|e| e.to_string())?;
        v["at"] = serde_json::json!(acd::context::time::format_iso8601(now));
        v["context"] = serde_json::to_value(&context).map_err(|e| e.to_string())?;
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!(
        "caller {caller} dialling {to} at {}",
        acd::context::time::format_iso8601(now)
    );
    println!(
        "  identity: {} ({}){}",
        id.number,
        id.basis,
        if id.trusted {
            ""
        } else {
            "; no callback through the trunk"
        }
    );
    println!(
        "→ queue {} (skills {}), priority {}, {}",
        d.queue,
        d.skills.join(","),
        d.priority,
        if d.skip_ivr {
            "skips the menu"
        } else {
            "hears the menu"
        }
    );
    println!("  rule: {}", d.rule.as_deref().unwrap_or("(none)"));
    println!("  reason: {}", d.reason);
    if let Some(a) = &d.preferred_agent {
        println!("  preferred agent: {a}");
    }
    println!("trace:");
    for t in &d.trace {
        println!("  {} {}", if t.matched { "MATCH" } else { "no   " }, t.rule);
        for w in &t.why {
            println!("      {w}");
        }
    }
    Ok(())
}

async fn import(
    cfg: &Config,
    kind: acd::context::import::ImportKind,
    file: &std::path::Path,
    dry_run: bool,
) -> Result<(), String> {
    use std::io::Write;
    let name = file.display().to_string();
    let country = acd::context::e164::Country::by_iso(&cfg.context.default_country)
        .map_err(|e| e.to_string())?;
    let f = std::fs::File::open(file).map_err(|e| format!("{name}: {e}"))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0).max(1);
    let store = Store::open(&cfg.database.url)
        .await
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let mut last = std::time::Instant::now();
    let report = acd::context::import::import(
        &store,
        kind,
        &name,
        std::io::BufReader::with_capacity(1 << 20, f),
        &country,
        dry_run,
        |bytes| {
            if last.elapsed() >= std::time::Duration::from_millis(500) {
                last = std::time::Instant::now();
                eprint!("\r{name}: {:>3}% ", bytes * 100 / size);
                let _ = std::io::stderr().flush();
            }
        },
    )
    .await;
    store.close().await;
    let report = report.map_err(|e| e.to_string())?;
    eprint!("\r");
    for e in &report.rejected {
        eprintln!("{name}:{}: column {}: {}", e.line, e.column, e.msg);
    }
    if report.errors > report.rejected.len() as u64 {
        eprintln!(
            "… and {} more rejected rows",
            report.errors - report.rejected.len() as u64
        );
    }
    let verb = if dry_run {
        "checked (dry run, nothing written)"
    } else {
        "imported"
    };
    println!(
        "{name}: {} rows {verb}, {} new or updated, {} rejected, in {:.1} s",
        report.rows,
        report.written,
        report.errors,
        started.elapsed().as_secs_f64()
    );
    if report.errors > 0 {
        return Err(format!("{} rows of {name} were rejected", report.errors));
    }
    Ok(())
}

/// The signals `serve` answers, listened to from before it says it is running.
struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

/// Why `serve` is stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Ctrl-C: end the calls now.
    Interrupt,
    /// SIGTERM: end them now, or drain with `--drain`.
    Term,
    /// SIGUSR1: drain, then stop.
    Drain,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(|e| e.to_string())?,
            hup: signal(SignalKind::hangup()).map_err(|e| e.to_string())?,
            usr1: signal(SignalKind::user_defined1()).map_err(|e| e.to_string())?,
        })
    }
}

/// Runs until SIGINT, SIGTERM or SIGUSR1 and says which; SIGHUP reloads the dialplan and the
/// TLS certificates (a bad file is reported and the running one kept).
async fn wait_for_shutdown(
    cfg: &Config,
    running: &serve::Running,
    signals: &mut Signals,
) -> Result<Stop, String> {
    let Signals { term, hup, usr1 } = signals;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => return r.map(|()| Stop::Interrupt).map_err(|e| e.to_string()),
            _ = term.recv() => return Ok(Stop::Term),
            _ = usr1.recv() => return Ok(Stop::Drain),
            _ = hup.recv() => {
                match serve::load_dialplan(cfg) {
                    Ok(d) => {
                        running.core.set_dialplan(d).await;
                        println!("dialplan reloaded from {}", cfg.dialplan.display());
                    }
                    Err(e) => eprintln!("dialplan not reloaded, keeping the running one: {e}"),
                }
                for c in &running.certs {
                    match c.reload() {
                        Ok(()) => println!("certificate reloaded from {}", c.cert_path().display()),
                        Err(e) => eprintln!("certificate not reloaded, keeping the running one: {e}"),
                    }
                }
            }
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ACD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn report_campaigns(
    cfg: &Config,
    since: Option<&str>,
    until: Option<&str>,
    format: &str,
    chart: Option<&std::path::Path>,
    attribution: Option<&str>,
) -> Result<(), String> {
    use acd::report::{campaigns, svg, Format};
    let format: Format = format
        .parse()
        .map_err(|e: acd::report::ReportError| e.to_string())?;
    let rule = match attribution {
        None => cfg.reports.attribution,
        Some("latest") => acd::context::attribution::Attribution::Latest,
        Some("first") => acd::context::attribution::Attribution::First,
        Some(other) => return Err(format!("attribution '{other}': use latest or first")),
    };
    let (since, until) = acd::report::period(since, until, acd::context::time::unix_now())
        .map_err(|e| e.to_string())?;
    let store = Store::open(&cfg.database.url)
        .await
        .map_err(|e| e.to_string())?;
    let r = campaigns::report(&store, since, until, rule).await;
    store.close().await;
    let r = r.map_err(|e| e.to_string())?;
    match format {
        Format::Table => print!("{}", campaigns::table(&r)),
        Format::Csv => print!("{}", campaigns::csv(&r)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
        ),
    }
    if let Some(path) = chart {
        std::fs::write(path, svg::campaign_chart(&r))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

async fn report_queues(
    cfg: &Config,
    since: Option<&str>,
    until: Option<&str>,
    format: &str,
) -> Result<(), String> {
    use acd::report::{queues, Format};
    let format: Format = format
        .parse()
        .map_err(|e: acd::report::ReportError| e.to_string())?;
    let (since, until) = acd::report::period(since, until, acd::context::time::unix_now())
        .map_err(|e| e.to_string())?;
    let store = Store::open(&cfg.database.url)
        .await
        .map_err(|e| e.to_string())?;
    let r = queues::report(&store, since, until, cfg.reports.thresholds()).await;
    store.close().await;
    let r = r.map_err(|e| e.to_string())?;
    match format {
        Format::Table => print!("{}", queues::table(&r)),
        Format::Csv => print!("{}", queues::csv(&r)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
        ),
    }
    Ok(())
}

/// `acd agents set`: new skills and/or wrap-up for one agent.
async fn set_agent(
    store: &acd::context::Store,
    id: &str,
    skills: Option<&str>,
    wrapup_s: Option<u32>,
    queue_wrapup: bool,
) -> Result<(), String> {
    if skills.is_none() && wrapup_s.is_none() && !queue_wrapup {
        return Err("nothing to change: give --skills, --wrapup-s or --queue-wrapup".into());
    }
    let missing = || format!("no agent '{id}'");
    if let Some(s) = skills {
        let parsed = parse_skills(s).map_err(|e| e.to_string())?;
        if !store
            .set_skills(id, &parsed)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err(missing());
        }
    }
    if (wrapup_s.is_some() || queue_wrapup)
        && !store
            .set_wrapup(id, wrapup_s)
            .await
            .map_err(|e| e.to_string())?
    {
        return Err(missing());
    }
    println!("updated agent {id}");
    Ok(())
}
