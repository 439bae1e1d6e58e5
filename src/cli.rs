//! Command-line arguments (clap).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Replay recorded traffic through a Load Sharing NAT (RFC 2391), offline and deterministically.
#[derive(Parser, Debug)]
#[command(name = "lsnat", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The input view (overrides the config's `view`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewArg {
    /// The capture holds what arrives at the router from both sides.
    Router,
    /// The capture was taken on the client side only.
    ClientSide,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay a capture through the modelled LSNAT router.
    Replay(ReplayArgs),
    /// What session-timeout policies would do to a capture: sessions broken, table cost,
    /// idle gaps, RFC compliance; exit 1 when a `--require-compliant` policy fails a MUST floor.
    Audit(AuditArgs),
    /// Compare replays against their goldens; exit 1 on a difference.
    Check {
        /// Captures to check (default: every capture in `captures/` with a config beside it).
        captures: Vec<PathBuf>,
        /// Where the goldens are.
        #[arg(long, default_value = "golden")]
        golden_dir: PathBuf,
        /// Rewrite the goldens with the current output instead of comparing.
        #[arg(long)]
        bless: bool,
    },
}

/// Arguments of `lsnat replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The capture (pcap or pcapng).
    pub capture: PathBuf,
    /// The configuration (default: the capture's name with `.toml`).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Write the rewritten capture here (same format as the input).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write one capture per pool member (what each server would see) into this folder.
    #[arg(long)]
    pub members_dir: Option<PathBuf>,
    /// Write the golden (per-packet translation, session table, pool events, summary) here: the
    /// file `lsnat check --bless` writes for this capture and config.
    #[arg(long)]
    pub golden: Option<PathBuf>,
    /// How the capture relates to the router (overrides the config).
    #[arg(long, value_enum)]
    pub view: Option<ViewArg>,
    /// No summary table and no progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Report load per member over intervals of capture time of this length (e.g. 10s).
    #[arg(long)]
    pub interval: Option<String>,
    /// Replay once per configuration and compare the load shares side by side (repeat).
    #[arg(long = "compare", value_name = "CONFIG")]
    pub compare: Vec<PathBuf>,
    /// Override every virtual server's algorithm; repeated: compare the algorithms side by side.
    #[arg(long = "algorithm", value_name = "NAME")]
    pub algorithm: Vec<String>,
}

/// Arguments of `lsnat audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The capture (pcap or pcapng).
    pub capture: PathBuf,
    /// The configuration (default: the capture's name with `.toml`): virtual servers, the view,
    /// the `config` policy (the `[timeouts]` table) and named `[[policy]]` tables.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// A policy: a preset (rfc2391, linux-conntrack, ipvs, rfc-minimum, rfc-recommended),
    /// `config`, a `[[policy]]` name, or KEY=VALUE,... on top of the config's timeouts
    /// (e.g. `tcp=2h,tcp-transitory=4m,udp=5m`). Repeatable. Default: config, every preset and
    /// every `[[policy]]` of the config file; with --sweep, only the sweep's points.
    #[arg(short, long = "policy")]
    pub policies: Vec<String>,
    /// Vary one timeout: `KEY=LO..HI[:STEPS]` (e.g. `udp=10s..10m`), other timeouts from the
    /// first --policy (or the config).
    #[arg(long)]
    pub sweep: Option<String>,
    /// Exit 1 if this policy fails a MUST-level floor (repeatable; audited even if not listed).
    #[arg(long)]
    pub require_compliant: Vec<String>,
    /// Write the JSON report (schema lsnat-audit/1) here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the sweep's SVG chart here (needs --sweep).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// How many worst cases to list per policy.
    #[arg(long, default_value_t = 5)]
    pub worst: usize,
    /// How the capture relates to the router (overrides the config).
    #[arg(long, value_enum)]
    pub view: Option<ViewArg>,
    /// No tables on stdout.
    #[arg(short, long)]
    pub quiet: bool,
}
