//! The `stageflow` command line: nothing but parsing arguments and calling the library.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use stageflow::api::server::Application;
use stageflow::clock::{Clock as _, SystemClock};
use stageflow::config::Config;
use stageflow::db::Database;
use stageflow::service::bootstrap::{self, KeyState};

/// Stageflow — a headless, multi-tenant business-process platform (REST/JSON API).
///
/// Settings come from the environment (see .env.example and docs/configuration.md).
#[derive(Parser)]
#[command(name = "stageflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the API (the default).
    Serve,
    /// Apply pending migrations and exit. Safe to repeat.
    Migrate,
    /// Manage the access-token signing keys (in the configured database, sealed under the
    /// master key).
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Print the OpenAPI document, or write it to a file.
    Openapi {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Print the diagram of a shipped catalog template (`mermaid` or `dot`).
    Diagram {
        /// The catalog key, e.g. itil_incident.
        catalog_key: String,
        #[arg(long, default_value = "mermaid")]
        format: String,
        /// Label language: ja or en.
        #[arg(long, default_value = "ja")]
        lang: String,
    },
    /// Fill an empty database with benchmark tenants and tickets (bench/tickets.sh).
    #[command(hide = true)]
    SeedTickets {
        /// How many tickets, spread over two tenants.
        #[arg(long, default_value_t = 1_000_000)]
        tickets: u64,
        /// Tickets per write transaction.
        #[arg(long, default_value_t = 1_000)]
        batch: u64,
        /// Seed of the random values (the same seed gives the same data).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Where to write tenants, credentials and sample ticket ids (JSON).
        #[arg(long, default_value = "target/bench-seed.json")]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new signing key the signer. Earlier keys keep verifying the tokens they signed
    /// until those expire; running servers pick the new key up within a minute.
    Rotate,
    /// List the stored signing keys and what each is used for now.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi { output } => openapi(output),
        Command::Diagram {
            catalog_key,
            format,
            lang,
        } => diagram(&catalog_key, &format, &lang),
        Command::Migrate => with_config(migrate),
        Command::Keys { action } => match action {
            KeysCommand::Rotate => with_config(keys_rotate),
            KeysCommand::List => with_config(keys_list),
        },
        Command::SeedTickets {
            tickets,
            batch,
            seed,
            out,
        } => {
            let options = stageflow::seed::SeedOptions {
                tickets,
                batch: batch.max(1),
                seed,
                out,
            };
            with_config_and(move |config| stageflow::seed::seed_tickets(&config, &options))
        }
        Command::Serve => with_config(serve),
    }
}

fn with_config(run: fn(Config) -> Result<(), String>) -> ExitCode {
    with_config_and(run)
}

fn with_config_and(run: impl FnOnce(Config) -> Result<(), String>) -> ExitCode {
    match Config::from_env() {
        Ok(config) => match run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("stageflow: {message}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("stageflow: invalid configuration: {error}");
            ExitCode::from(2)
        }
    }
}

fn migrate(config: Config) -> Result<(), String> {
    let (_db, applied) = Database::open_and_migrate(&config).map_err(|e| e.to_string())?;
    if applied.is_empty() {
        println!("database is up to date");
    } else {
        for version in applied {
            println!("applied {version}");
        }
    }
    Ok(())
}

fn keys_rotate(config: Config) -> Result<(), String> {
    let (db, _) = Database::open_and_migrate(&config).map_err(|e| e.to_string())?;
    let key = bootstrap::rotate_signing_key(&db, &config, SystemClock.now())
        .map_err(|e| e.to_string())?;
    println!("signing key {} now signs new access tokens", key.kid);
    Ok(())
}

fn keys_list(config: Config) -> Result<(), String> {
    let (db, _) = Database::open_and_migrate(&config).map_err(|e| e.to_string())?;
    let keys =
        bootstrap::list_signing_keys(&db, &config, SystemClock.now()).map_err(|e| e.to_string())?;
    for key in keys {
        let state = match key.state {
            KeyState::Signing => "signing".to_owned(),
            KeyState::Verifying => "verifying".to_owned(),
            KeyState::RetiredUntil(until) => {
                format!("retired, verifies until {}", until.to_rfc3339())
            }
            KeyState::Expired => "expired (deleted at the next rotation)".to_owned(),
        };
        println!(
            "{}  {}  created {}  {state}",
            key.kid,
            key.algorithm,
            key.created_at.to_rfc3339()
        );
    }
    Ok(())
}

fn serve(config: Config) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async move {
        let listen = config.listen;
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let app = Application::build(config, Arc::new(SystemClock))
            .await
            .map_err(|e| e.to_string())?;
        log::info!("stageflow listening on {scheme}://{listen}");
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

fn openapi(output: Option<std::path::PathBuf>) -> ExitCode {
    let document = match stageflow::api::openapi_json_pretty() {
        Ok(document) => document,
        Err(error) => {
            eprintln!("stageflow: cannot render the OpenAPI document: {error}");
            return ExitCode::FAILURE;
        }
    };
    let written = match output {
        Some(path) => {
            std::fs::write(&path, document).map_err(|e| format!("{}: {e}", path.display()))
        }
        None => {
            print!("{document}");
            Ok(())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stageflow: {message}");
            ExitCode::FAILURE
        }
    }
}

fn diagram(catalog_key: &str, format: &str, lang: &str) -> ExitCode {
    use stageflow::domain::diagram::{DiagramFormat, Language, render};
    let Some(format) = DiagramFormat::parse(format) else {
        eprintln!("stageflow: --format must be mermaid or dot");
        return ExitCode::from(2);
    };
    let Some(language) = Language::parse(lang) else {
        eprintln!("stageflow: --lang must be ja or en");
        return ExitCode::from(2);
    };
    let Some(entry) = stageflow::catalog::entry(catalog_key) else {
        eprintln!("stageflow: no catalog entry {catalog_key}");
        return ExitCode::FAILURE;
    };
    match stageflow::domain::template::parse_definition(&entry.template) {
        Ok(def) => {
            print!("{}", render(&def, format, language));
            ExitCode::SUCCESS
        }
        Err(issues) => {
            eprintln!("stageflow: catalog entry {catalog_key} does not parse: {issues:?}");
            ExitCode::FAILURE
        }
    }
}
