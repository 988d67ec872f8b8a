//! The one dispatcher: which front end runs a parsed command line.
//!
//! Layer 7, the front ends, at their top. `commands` runs each subcommand, `action` runs the GitHub
//! Action (through `commands`); this module is above both and nothing imports it but the crate
//! root.

use crate::cli::{Cli, Command};
use crate::env::EnvSnapshot;
use crate::error::Outcome;
use crate::report::Reporter;
use crate::smoke::runtime::OrtSearch;
use crate::{action, commands, config, verify};

/// Runs one command.
pub fn run(cli: Cli, env: &EnvSnapshot, reporter: &Reporter) -> anyhow::Result<Outcome> {
    let ort = OrtSearch::new(env, cli.global.ort_lib.clone());
    match cli.command {
        Command::Check(args) => {
            commands::check(args, env, ort, reporter).map(|r| commands::check_outcome(&r))
        }
        Command::Plan(args) => commands::plan(&args, env, reporter).map(|_| Outcome::Success),
        Command::Publish(args) => commands::publish(&args, env, ort, reporter).map(|r| r.outcome()),
        Command::Convert(args) => commands::convert(args, reporter),
        Command::Scan(args) => commands::scan(&args, reporter),
        Command::Quantize(args) => commands::quantize(&args, reporter),
        Command::Smoke(args) => commands::smoke(args, env, &ort, reporter),
        Command::Sample(args) => commands::sample(args, env, &ort, reporter),
        Command::Card(args) => commands::card(&args, env, reporter),
        Command::Action => action::run(env, ort, reporter),
        Command::Validate(args) => commands::validate(&args, env, reporter),
        Command::Verify(args) => verify::run(&args, env, reporter),
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut command, "tinydit-release", &mut script);
            reporter.data(String::from_utf8_lossy(&script).trim_end());
            Ok(Outcome::Success)
        }
        Command::Schema => {
            reporter.json(&config::schema())?;
            Ok(Outcome::Success)
        }
    }
}
