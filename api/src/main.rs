//! The `anomaly` binary: parse the command, load the configuration, start the role.

use std::process::ExitCode;

use anomaly_api::cli::{Cli, execute};
use anomaly_api::config::Config;
use clap::Parser;

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
    anomaly_api::telemetry::init(config.log_format);
    match execute(cli.command.unwrap_or_default(), config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("anomaly: {err:#}");
            ExitCode::FAILURE
        }
    }
}
