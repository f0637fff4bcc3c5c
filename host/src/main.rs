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
            let server = devpulse::server::start(args.settings()?).await?;
            shutdown_signal().await;
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

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
