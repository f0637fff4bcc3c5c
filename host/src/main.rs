//! The `devpulse` binary.

use anyhow::Context;
use clap::Parser;
use devpulse::authoring::{build, inspect, scaffold};
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
        Command::Plugin { command } => plugin_command(command).await,
    }
}

/// The author's commands; results go to stdout for scripts, progress to stderr.
async fn plugin_command(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New { name, lang, dir, sdk } => {
            let dir = scaffold::create(&scaffold::NewPlugin { name, lang, dir, sdk })?;
            tracing::info!(dir = %dir.display(), "created; next: devpulse plugin build {}", dir.display());
            println!("{}", dir.display());
        }
        PluginCommand::Build { dir, out } => {
            let wasm = build::build(&dir, out.as_deref())?;
            println!("{}", wasm.display());
        }
        PluginCommand::Inspect { file, json } => {
            let report = inspect::inspect(&file)
                .await
                .with_context(|| format!("{} is not a loadable plugin", file.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
        }
    }
    Ok(())
}
