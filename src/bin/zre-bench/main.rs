//! zre-bench: measures a ZRE node against raw libzmq on loopback and prints one NDJSON
//! line per result. How to run it and what the figures mean: BENCHMARKS.md. A dev tool:
//! built with `--features bench` (the tests turn it on), never installed.

//!
//! Every result line is `{"type":"result","name":..,"layout":..,"unit":..,"value":..,
//! "baseline":..,"baseline_kind":..,"ratio":..}` plus fields particular to the result.
//! `baseline_kind` is `libzmq` (raw DEALER to ROUTER measured in the same run, same frame
//! shape and process layout), `zyre` (Zyre C's figure on this machine type, from issue 5)
//! or `none`; `ratio` is value / baseline. Progress goes to stderr.
//!
//! The parent spawns itself (`zre-bench child ROLE ..`, hidden) for every process of a
//! measurement; with `--layout threads` the same roles run as threads of one process.
//! Every node binds interface `lo`, beacon ports come from `--port` (49000-49999), and
//! every loop and wait is bounded.
//!
//! - `roles.rs`: what each process or thread of a measurement does (the ZRE roles);
//! - `baseline.rs`: the raw libzmq roles the figures are compared with;
//! - `launcher.rs`: runs a role as a child process or a thread ([`launcher::Worker`]);
//! - `measure.rs`: the measurements;
//! - `procfs.rs`: memory and CPU readings from /proc;
//! - `report.rs`: the result lines and their arithmetic.

mod baseline;
mod launcher;
mod measure;
mod procfs;
mod report;
mod roles;

use clap::{Parser, Subcommand, ValueEnum};

use launcher::Layout;
use measure::*;
use roles::{child_main, Role};

/// Measure a ZRE node against raw libzmq on loopback (NDJSON on stdout)
#[derive(Debug, Parser)]
#[command(name = "zre-bench", version)]
struct Cli {
    /// A smoke run: tiny sizes, a few seconds in all
    #[arg(long)]
    quick: bool,
    /// Only these benchmarks (comma separated): whisper shout rtt enter discovery idle
    #[arg(long, value_delimiter = ',')]
    only: Vec<Bench>,
    /// Where the two ends of a throughput or round-trip measurement run
    #[arg(long, value_enum, default_value = "processes")]
    layout: LayoutArg,
    /// Messages per throughput measurement [default: 500000; quick: 5000]
    #[arg(long)]
    messages: Option<u64>,
    /// Round trips per round-trip measurement [default: 20000; quick: 300]
    #[arg(long)]
    round_trips: Option<u64>,
    /// Start-to-ENTER samples [default: 30; quick: 3]
    #[arg(long)]
    enter_runs: Option<u32>,
    /// Node counts for all-see-all (comma separated) [default: 10,30,60,100; quick: 3]
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<usize>,
    /// Seconds the all-see-all nodes stay up afterwards, counting EVASIVE and EXIT
    /// [default: 6; quick: 0.5]
    #[arg(long)]
    settle: Option<f64>,
    /// Seconds over which idle CPU is measured [default: 20; quick: 1]
    #[arg(long)]
    idle_secs: Option<f64>,
    /// Also measure whisper throughput and round trip with CURVE, beside plain in the
    /// same run (needs a CURVE build: `--config .cargo/curve.toml`)
    #[arg(long)]
    curve: bool,
    /// First UDP beacon port; each measurement uses the next one (49000-49999)
    #[arg(long, default_value_t = 49100)]
    port: u16,
    #[command(subcommand)]
    child: Option<ChildCmd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Bench {
    Whisper,
    Shout,
    Rtt,
    Enter,
    Discovery,
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LayoutArg {
    Processes,
    Threads,
    Both,
}

#[derive(Debug, Subcommand)]
enum ChildCmd {
    /// One end of a measurement (internal)
    #[command(hide = true)]
    Child {
        #[command(subcommand)]
        role: Role,
    },
}

fn main() -> std::process::ExitCode {
    zre::cli::run("zre-bench", || {
        let mut cli = Cli::parse();
        if let Some(ChildCmd::Child { role }) = cli.child.take() {
            return child_main(role);
        }
        let only = cli.only.clone();
        let want = |b: Bench| only.is_empty() || only.contains(&b);
        let layouts = match cli.layout {
            LayoutArg::Processes => vec![Layout::Processes],
            LayoutArg::Threads => vec![Layout::Threads],
            LayoutArg::Both => vec![Layout::Processes, Layout::Threads],
        };
        let nodes = if !cli.nodes.is_empty() {
            cli.nodes.clone()
        } else if cli.quick {
            vec![3]
        } else {
            vec![10, 30, 60, 100]
        };
        if cli.curve && !zre::curve::available() {
            anyhow::bail!("--curve: {}", zre::curve::NOT_AVAILABLE);
        }
        let mut c = Ctx {
            next_port: cli.port,
            cli,
            curve_dir: None,
        };
        for &l in &layouts {
            if want(Bench::Whisper) {
                bench_whisper(&mut c, l)?;
            }
            if want(Bench::Shout) {
                bench_shout(&mut c, l)?;
            }
            if want(Bench::Rtt) {
                bench_rtt(&mut c, l)?;
            }
        }
        if want(Bench::Enter) {
            bench_enter(&mut c)?;
        }
        if want(Bench::Discovery) {
            for &n in &nodes {
                bench_discovery(&mut c, n)?;
            }
        }
        if want(Bench::Idle) {
            bench_idle(&mut c)?;
        }
        if let Some(dir) = &c.curve_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    })
}
