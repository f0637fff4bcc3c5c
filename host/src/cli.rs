//! The command line: `devpulse serve`, `devpulse plugin new|build|inspect`, `devpulse token create`.

use crate::audit;
use crate::auth::Role;
use crate::auth::tokens::{self, NewToken};
use crate::authoring::Lang;
use crate::config::{ConfigError, FileConfig, Settings};
use crate::identity::{self, NewUser};
use clap::{Args, Parser, Subcommand};
use sea_orm::TransactionTrait;
use std::net::SocketAddr;
use std::path::PathBuf;

/// DevPulse: developer-productivity metrics from sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "devpulse", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server with the bundled plugins and every `*.wasm` in the plugins folder.
    Serve(ServeArgs),
    /// Work with plugin files.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Manage API tokens directly in the database (works while a server runs).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new token for a user, creating the org and the user if needed.
    Create(TokenCreateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TokenCreateArgs {
    /// The org's slug.
    #[arg(long)]
    pub org: String,
    /// The user's display name.
    #[arg(long)]
    pub user: String,
    /// The role of a user created by this command.
    #[arg(long, value_parser = parse_role, default_value = "developer")]
    pub role: Role,
    /// Let the token manage orgs across the instance.
    #[arg(long)]
    pub operator: bool,
    /// A name for the token.
    #[arg(long, default_value = "cli")]
    pub name: String,
    #[command(flatten)]
    pub storage: StorageArgs,
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "one of owner, admin, manager, developer".into())
}

/// Where the data lives: shared by every command that opens the database.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Where the SQLite database and the compiled-plugin cache live.
    #[arg(long, env = "DEVPULSE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Database URL, `postgres://...` or `sqlite://...` [default: SQLite in the data dir]
    #[arg(long, env = "DEVPULSE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// TOML config file: per-plugin limits, capability grants and settings.
    #[arg(long, env = "DEVPULSE_CONFIG")]
    pub config: Option<PathBuf>,
}

impl StorageArgs {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| crate::store::default_url(&self.data_dir))
    }
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin project (Rust, Python or JavaScript) ready to build.
    New {
        /// The plugin's name: its URL prefix, 1 to 63 of a-z, 0-9 and '-'.
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// The project folder [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Rust: the devpulse-sdk folder to depend on, or a version requirement
        /// [default: the SDK this binary was built from].
        #[arg(long)]
        sdk: Option<String>,
    },
    /// Build the project in DIR into a component, printing its path.
    Build {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Also copy the component here: a plugins folder (the server loads it
        /// without a restart) or a file path.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a plugin's manifest, WIT version, capabilities and routes, or why it is invalid.
    Inspect {
        /// The component to inspect.
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "DEVPULSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder watched for `*.wasm` plugins; files added, replaced or removed take effect without a restart.
    #[arg(long, env = "DEVPULSE_PLUGINS_DIR", default_value = "./plugins-dir")]
    pub plugins_dir: PathBuf,
    /// Optional Redis URL (`redis://127.0.0.1:6379`) for multi-replica deployments.
    #[arg(long, env = "DEVPULSE_REDIS_URL")]
    pub redis_url: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
}

impl ServeArgs {
    /// Resolves the options into settings, reading the config file if named.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let file = match &self.storage.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Ok(Settings {
            listen: self.listen,
            database_url: self.storage.database_url(),
            data_dir: self.storage.data_dir.clone(),
            plugins_dir: self.plugins_dir.clone(),
            redis_url: self.redis_url.clone(),
            file,
        })
    }
}

/// Creates a token (and the org and user when missing); returns its secret.
pub async fn create_token(args: &TokenCreateArgs) -> anyhow::Result<String> {
    if let Some(path) = &args.storage.config {
        FileConfig::load(path)?;
    }
    let db = crate::store::connect(&args.storage.database_url()).await?;
    // SQLite refuses a transaction at once (no busy wait) when another process
    // (the running server) wrote between its first read and its first write;
    // the whole transaction is then tried again, for as long as a busy server
    // (one starting up writes a lot) may take to leave it a gap.
    let started = std::time::Instant::now();
    let mut attempts: u64 = 1;
    let secret = loop {
        match create_token_in(&db, args).await {
            Err(err)
                if started.elapsed() < std::time::Duration::from_secs(10)
                    && err.chain().any(|cause| cause.to_string().contains("database is locked")) =>
            {
                tracing::debug!(attempts, "the database was written meanwhile; trying again");
                tokio::time::sleep(std::time::Duration::from_millis((20 * attempts).min(250))).await;
                attempts += 1;
            }
            other => break other?,
        }
    };
    db.close().await?;
    Ok(secret)
}

async fn create_token_in(db: &sea_orm::DatabaseConnection, args: &TokenCreateArgs) -> anyhow::Result<String> {
    let txn = db.begin().await?;
    let org = match identity::org_by_slug(&txn, &args.org).await? {
        Some(org) => org,
        None => identity::create_org(&txn, &args.org, &args.org).await?,
    };
    let user = match identity::user_by_name(&txn, &org.id, &args.user).await? {
        Some(user) => {
            if user.role != args.role.as_str() {
                tracing::warn!(user = %user.id, role = %user.role, "the user exists; keeping their role");
            }
            user
        }
        None => {
            let local: String =
                args.user.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
            let new = NewUser {
                display_name: args.user.clone(),
                email: format!("{}@{}.localhost", if local.is_empty() { "user" } else { &local }, org.slug),
                role: args.role,
                time_zone: "UTC".into(),
                identities: Vec::new(),
            };
            identity::create_user(&txn, &org.id, new).await?
        }
    };
    let created = tokens::create(
        &txn,
        NewToken {
            org_id: &org.id,
            user_id: &user.id,
            name: &args.name,
            expires_at: None,
            operator: args.operator,
            format: Default::default(),
        },
    )
    .await?;
    audit::record(
        &txn,
        audit::Entry::system(&org.id, "token.create", &format!("token/{}", created.token.id))
            .details(serde_json::json!({"user": user.id, "via": "cli", "operator": args.operator})),
    )
    .await?;
    txn.commit().await?;
    Ok(created.secret)
}
