//! The `anomaly` binary: parse the command, load the configuration, start the role.

use std::process::ExitCode;

use anomaly_api::cli::{Cli, execute};
use anomaly_api::config::Config;
use clap::Parser;

/// mimalloc, not glibc's allocator: a server holding a million cached series keeps a large heap of
/// small objects, where glibc's allocator slowed every request (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("anomaly: {err}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or_default();
    let _telemetry = anomaly_api::telemetry::init(config.log_format, command.name());
    match execute(command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("anomaly: {err:#}");
            ExitCode::FAILURE
        }
    }
}
