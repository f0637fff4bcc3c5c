//! The `devpulse` binary.

use anyhow::Context;
use clap::Parser;
use devpulse::cli::{Cli, Command, PluginCommand, TokenCommand};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    devpulse::telemetry::init_logging();
    match cli.command {
        Command::Serve(args) => {
            // Listen for SIGTERM before serving, so a signal right after start is not fatal.
            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            let server = devpulse::server::start(args.settings()?).await?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("shutting down");
            server.stop().await
        }
        Command::Token { command: TokenCommand::Create(args) } => {
            let secret = devpulse::cli::create_token(&args).await?;
            println!("{secret}");
            Ok(())
        }
        Command::Plugin { command: PluginCommand::Inspect { file } } => match devpulse::cli::inspect(&file).await {
            Ok(report) => {
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(())
            }
            Err(err) => Err(err).with_context(|| format!("{} is not a loadable plugin", file.display())),
        },
    }
}
