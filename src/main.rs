//! The `stageflow` command line: nothing but parsing arguments and calling the library.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use stageflow::api::server::Application;
use stageflow::clock::{Clock as _, SystemClock};
use stageflow::config::Config;
use stageflow::config::settings::{SettingArgs, Source};
use stageflow::db::Database;
use stageflow::service::bootstrap::{self, KeyState};

/// Stageflow — a headless, multi-tenant business-process platform (REST/JSON API).
///
/// Every setting is a flag and an environment variable (the flag wins); see
/// docs/configuration.md. `stageflow config` shows the effective values.
#[derive(Parser)]
#[command(name = "stageflow", version, about)]
struct Cli {
    #[command(flatten)]
    settings: SettingArgs,
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
    /// Print the effective configuration: every setting, where its value came from (default,
    /// env or flag) and the value, secrets masked. Exit status 2 when it is invalid.
    Config,
    /// Platform operator recovery.
    Operator {
        #[command(subcommand)]
        action: OperatorCommand,
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
    /// Mail intake from an MTA (docs/mail.md).
    Mail {
        #[command(subcommand)]
        action: MailCommand,
    },
    /// Backups (docs/operations.md): `stageflow backup` makes a generation now — a
    /// consistent copy of the database while it serves, plus the attachment content it
    /// references — copies it to STAGEFLOW_BACKUP_COPY_DIR, rotates, verifies it and records
    /// both. Exit status: 0 done, 1 failed, 2 invalid configuration, 3 the backup was made
    /// but does not verify.
    Backup {
        #[command(subcommand)]
        action: Option<BackupCommand>,
    },
    /// Replace the configured database with a backup generation (verified first), and copy
    /// back the attachment content the store lacks. Stop every server on the database first.
    /// Exit status: 0 done, 1 failed, 2 invalid configuration, 3 the generation does not
    /// verify (nothing was changed).
    Restore {
        /// The generation's name (`stageflow backup list`).
        generation: String,
        /// Verify and report what would be replaced; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Take the generation from STAGEFLOW_BACKUP_COPY_DIR.
        #[arg(long)]
        copy: bool,
    },
    /// Tenants (docs/operations.md, "Tenant export, import and erasure").
    Tenant {
        #[command(subcommand)]
        action: TenantCommand,
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
enum TenantCommand {
    /// Recreate a tenant from an export archive (`GET /api/v1/tenants/{id}/exports/{id}/archive`
    /// of another instance on the same backend and schema version): its plan and account if
    /// missing, every row, every attachment. Exit status: 0 done, 1 refused or failed (nothing
    /// of the tenant is written), 2 invalid configuration.
    Import {
        /// The `.tar.gz` archive.
        archive: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Make a generation now (the default): copy, rotate, verify, record.
    Create,
    /// Check a generation (the newest unless named): every file against its checksum, the
    /// database restored into a scratch database and checked (integrity, schema version,
    /// row counts per table), the attachment content re-hashed. Exit status 3 when invalid.
    Verify {
        generation: Option<String>,
        /// Check a generation in STAGEFLOW_BACKUP_COPY_DIR.
        #[arg(long)]
        copy: bool,
    },
    /// List the finished generations, oldest first.
    List {
        /// List STAGEFLOW_BACKUP_COPY_DIR.
        #[arg(long)]
        copy: bool,
    },
}

#[derive(Subcommand)]
enum MailCommand {
    /// Take one message (standard input, as received) in on a channel: the same intake as
    /// `POST /api/v1/mail-channels/{id}/messages`, for a Postfix/Exim pipe transport. Exit
    /// status: 0 taken in (whatever became of it, pending included), 75 temporary failure
    /// (database or master key unavailable: the MTA retries), 65 larger than the channel
    /// takes, 67 no such tenant or channel, 2 invalid configuration.
    Deliver {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The channel's id.
        #[arg(long)]
        channel: String,
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

#[derive(Subcommand)]
enum OperatorCommand {
    /// Set a new password for the platform operator in the configured database, clear its
    /// lock-out and end its sessions. The password is read from standard input (one line; on a
    /// terminal after a prompt, which echoes), or generated with --generate and printed once.
    /// Exit status: 0 done, 1 database or other failure, 2 invalid configuration or the
    /// password refused by the policy, 3 no operator with that username.
    ResetPassword {
        /// The operator's username [default: STAGEFLOW_OPERATOR_USERNAME, else operator].
        #[arg(long)]
        username: Option<String>,
        /// Generate a password and print it once instead of reading one.
        #[arg(long)]
        generate: bool,
    },
}

fn main() -> ExitCode {
    stageflow::memory::cap_malloc_arenas();
    let cli = Cli::parse();
    let settings = cli.settings;
    stageflow::logging::init(settings.raw("RUST_LOG").unwrap_or("info"));
    let with_config = |run: fn(Config) -> Result<(), String>| {
        with_config_and(&settings, move |config| {
            run(config).map(|()| ExitCode::SUCCESS)
        })
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi { output } => openapi(output),
        Command::Diagram {
            catalog_key,
            format,
            lang,
        } => diagram(&catalog_key, &format, &lang),
        Command::Config => with_config_and(&settings, |config| {
            print_config(&settings, &config);
            Ok(ExitCode::SUCCESS)
        }),
        Command::Operator {
            action: OperatorCommand::ResetPassword { username, generate },
        } => with_config_and(&settings, |config| {
            operator_reset_password(&config, username, generate)
        }),
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
            with_config_and(&settings, move |config| {
                stageflow::seed::seed_tickets(&config, &options).map(|()| ExitCode::SUCCESS)
            })
        }
        Command::Mail {
            action: MailCommand::Deliver { tenant, channel },
        } => with_config_and(&settings, move |config| {
            Ok(mail_deliver(&config, &tenant, &channel))
        }),
        Command::Backup { action } => with_config_and(&settings, move |config| {
            backup_command(&config, action.unwrap_or(BackupCommand::Create))
        }),
        Command::Restore {
            generation,
            dry_run,
            copy,
        } => with_config_and(&settings, move |config| {
            restore_command(&config, &generation, dry_run, location(copy))
        }),
        Command::Tenant {
            action: TenantCommand::Import { archive },
        } => with_config_and(&settings, move |config| tenant_import(&config, &archive)),
        Command::Serve => with_config(serve),
    }
}

fn tenant_import(config: &Config, archive: &std::path::Path) -> Result<ExitCode, String> {
    use stageflow::service::tenant_export;
    let read = tenant_export::read_archive(archive)?;
    let (db, _) = Database::open_and_migrate(config).map_err(|e| e.to_string())?;
    let blobs = stageflow::storage::FsBlobStore::open(stageflow::storage::attachments_dir(
        &config.data_dir,
    ))
    .map_err(|e| e.to_string())?;
    let total = read.tables.values().map(Vec::len).sum::<usize>();
    let progress = stageflow::progress::Progress::start("tenant import: rows", total as u64);
    let imported = tenant_export::import(&db, &blobs, &read, &progress);
    progress.finish();
    match imported {
        Ok(done) => {
            println!(
                "tenant {} ({}) imported: {} rows, {} attachments",
                done.slug, done.tenant, done.rows, done.attachments
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("stageflow: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Exit status of a backup that does not verify.
const EXIT_INVALID_BACKUP: u8 = 3;

fn location(copy: bool) -> stageflow::service::backup::Location {
    if copy {
        stageflow::service::backup::Location::Copy
    } else {
        stageflow::service::backup::Location::Local
    }
}

fn backup_failed(error: &stageflow::service::backup::BackupError) -> ExitCode {
    eprintln!("stageflow: {error}");
    match error {
        stageflow::service::backup::BackupError::Invalid(_) => ExitCode::from(EXIT_INVALID_BACKUP),
        _ => ExitCode::FAILURE,
    }
}

fn backup_command(config: &Config, action: BackupCommand) -> Result<ExitCode, String> {
    use stageflow::service::backup;
    match action {
        BackupCommand::Create => {
            let (db, _) = Database::open_and_migrate(config).map_err(|e| e.to_string())?;
            let progress = stageflow::progress::Progress::start("backup: attachments", 0);
            let recorded = backup::run_and_record(&db, config, SystemClock.now(), "cli", &progress)
                .map_err(|e| e.to_string())?;
            progress.finish();
            if let Some(m) = &recorded.manifest {
                println!(
                    "backup {} written to {}: database {} bytes, {} rows in {} tables, {} \
                     attachments ({} bytes){}",
                    m.id,
                    config.backup.dir.display(),
                    m.database.bytes,
                    m.rows(),
                    m.tables.len(),
                    m.attachments.len(),
                    m.attachment_bytes(),
                    config
                        .backup
                        .copy_dir
                        .as_ref()
                        .map(|c| format!(", copied to {}", c.display()))
                        .unwrap_or_default()
                );
            }
            match &recorded.error {
                None => {
                    println!("verified");
                    Ok(ExitCode::SUCCESS)
                }
                Some(error) if recorded.manifest.is_some() => {
                    eprintln!("stageflow: the new backup does not verify: {error}");
                    Ok(ExitCode::from(EXIT_INVALID_BACKUP))
                }
                Some(error) => Ok(backup_failed(error)),
            }
        }
        BackupCommand::Verify { generation, copy } => {
            let progress = stageflow::progress::Progress::start("verify: attachments", 0);
            let checked = backup::verify(config, location(copy), generation.as_deref(), &progress);
            progress.finish();
            match checked {
                Ok(v) => {
                    println!(
                        "backup {} verified: {} rows in {} tables, schema {}, {} attachments",
                        v.manifest.id,
                        v.manifest.rows(),
                        v.manifest.tables.len(),
                        v.manifest.schema_version,
                        v.attachments
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => Ok(backup_failed(&error)),
            }
        }
        BackupCommand::List { copy } => {
            let all = backup::list(&config.backup, location(copy)).map_err(|e| e.to_string())?;
            for m in all {
                println!(
                    "{}  {}  {} bytes  {} rows  {} attachments  schema {}",
                    m.id,
                    m.backend,
                    m.database.bytes,
                    m.rows(),
                    m.attachments.len(),
                    m.schema_version
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn restore_command(
    config: &Config,
    generation: &str,
    dry_run: bool,
    location: stageflow::service::backup::Location,
) -> Result<ExitCode, String> {
    use stageflow::service::backup;
    let progress = stageflow::progress::Progress::start("restore: attachments checked", 0);
    let restored = backup::restore(config, location, generation, dry_run, &progress);
    progress.finish();
    match restored {
        Ok(r) => {
            let before: i64 = r.replaced.values().sum();
            let verb = if r.dry_run {
                "would replace"
            } else {
                "replaced"
            };
            println!(
                "backup {} verified; {verb} {before} rows in {} tables with {} rows in {} \
                 tables (schema {}); attachment content {}: {}",
                r.manifest.id,
                r.replaced.len(),
                r.manifest.rows(),
                r.manifest.tables.len(),
                r.manifest.schema_version,
                if r.dry_run {
                    "to copy back"
                } else {
                    "copied back"
                },
                r.attachments_copied
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(backup_failed(&error)),
    }
}

/// sysexits(3) codes an MTA understands.
const EX_DATAERR: u8 = 65;
const EX_NOUSER: u8 = 67;
const EX_TEMPFAIL: u8 = 75;

fn mail_deliver(config: &Config, tenant: &str, channel: &str) -> ExitCode {
    use stageflow::service::error::ServiceError;
    use stageflow::service::mail::intake;
    use std::io::Read as _;
    let fail = |code: u8, message: &str| {
        eprintln!("stageflow: {message}");
        ExitCode::from(code)
    };
    let Ok(channel) = channel.parse() else {
        return fail(EX_NOUSER, "--channel is not a channel id");
    };
    let mut raw = Vec::new();
    let limit = u64::try_from(intake::MAX_MESSAGE_BYTES).unwrap_or(u64::MAX);
    if let Err(e) = std::io::stdin().take(limit + 1).read_to_end(&mut raw) {
        return fail(EX_TEMPFAIL, &format!("cannot read the message: {e}"));
    }
    let Ok((db, _)) = Database::open_and_migrate(config) else {
        return fail(EX_TEMPFAIL, "the database is unavailable");
    };
    let deps = match intake::CommandLineIntake::open(&db, config, tenant) {
        Ok(Some(deps)) => deps,
        Ok(None) => return fail(EX_NOUSER, &format!("no tenant {tenant:?}")),
        Err(e) => return fail(EX_TEMPFAIL, &e.to_string()),
    };
    match deps.receive(&db, channel, raw, SystemClock.now()) {
        Ok(row) => {
            println!("{} {}", row.id, row.status);
            ExitCode::SUCCESS
        }
        Err(ServiceError::NotFound) => fail(EX_NOUSER, "no such channel in this tenant"),
        Err(ServiceError::TooLarge { limit }) => fail(
            EX_DATAERR,
            &format!("the message is larger than the channel takes ({limit} bytes)"),
        ),
        Err(e) => fail(EX_TEMPFAIL, &e.to_string()),
    }
}

/// Runs `run` with the configuration; a bad setting stops here with one line naming its
/// variable (and its flag when it was given as one) and exit status 2.
fn with_config_and(
    settings: &SettingArgs,
    run: impl FnOnce(Config) -> Result<ExitCode, String>,
) -> ExitCode {
    match settings.config() {
        Ok(config) => match run(config) {
            Ok(done) => done,
            Err(message) => {
                eprintln!("stageflow: {message}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            match settings.flag_of(error.variable) {
                Some(flag) => eprintln!("stageflow: invalid configuration: --{flag}: {error}"),
                None => eprintln!("stageflow: invalid configuration: {error}"),
            }
            ExitCode::from(2)
        }
    }
}

fn print_config(settings: &SettingArgs, config: &Config) {
    for (variable, source, value) in settings.describe(config) {
        let value = if value.is_empty() { "(unset)" } else { &value };
        let source = match source {
            Source::Default => "default",
            other => other.as_str(),
        };
        println!("{variable:<41} {source:<8} {value}");
    }
}

/// Exit status of `operator reset-password` for an operator name that matches no operator.
const EXIT_NO_SUCH_OPERATOR: u8 = 3;

fn operator_reset_password(
    config: &Config,
    username: Option<String>,
    generate: bool,
) -> Result<ExitCode, String> {
    use stageflow::service::operators::{self, NewOperatorPassword, ResetError};
    let username = username.unwrap_or_else(|| config.operator_username.clone());
    let password = if generate {
        NewOperatorPassword::Generate
    } else {
        NewOperatorPassword::Given(read_password(&username)?)
    };
    let (db, _) = Database::open_and_migrate(config).map_err(|e| e.to_string())?;
    match operators::reset_operator_password(&db, config, &username, password, SystemClock.now()) {
        Ok(password) => {
            if generate {
                println!("{password}");
            }
            eprintln!(
                "stageflow: the password of operator '{username}' is reset; its sessions are \
                 ended and any lock-out is cleared"
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error @ (ResetError::Password(_) | ResetError::Username(_))) => {
            eprintln!("stageflow: {error}");
            Ok(ExitCode::from(2))
        }
        Err(error @ ResetError::NoSuchOperator(_)) => {
            eprintln!("stageflow: {error}");
            Ok(ExitCode::from(EXIT_NO_SUCH_OPERATOR))
        }
        Err(error) => Err(error.to_string()),
    }
}

/// One line from standard input, after a prompt when it is a terminal (the input echoes).
fn read_password(username: &str) -> Result<String, String> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("new password for operator '{username}': ");
        std::io::stderr().flush().map_err(|e| e.to_string())?;
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the new password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
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
    stageflow::logging::write_files(&config.log)?;
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
            print!("{}", render(&def, format, language, None));
            ExitCode::SUCCESS
        }
        Err(issues) => {
            eprintln!("stageflow: catalog entry {catalog_key} does not parse: {issues:?}");
            ExitCode::FAILURE
        }
    }
}
