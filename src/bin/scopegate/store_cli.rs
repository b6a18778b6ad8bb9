//! The store commands' flags (AWS CLI conventions) and their wiring to
//! `scopegate::admin::{mappings, migrate}`; confirmation prompts and the progress bar live
//! here, at the terminal.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use scopegate::admin::mappings::{self as ops, Admin, Filter, Output, Target};
use scopegate::admin::migrate;
use scopegate::mapping::dynamo::AwsOptions;
use scopegate::mapping::file;
use scopegate::mapping::Mapping;

/// Where the store is and how to talk to it: the AWS CLI's options.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// AWS region (default: the SDK's chain, AWS_REGION, the profile).
    #[arg(long)]
    region: Option<String>,
    /// AWS profile.
    #[arg(long)]
    profile: Option<String>,
    /// Endpoint URL (LocalStack, moto); also AWS_ENDPOINT_URL.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The mappings table.
    #[arg(long, env = "SCOPEGATE_MAPPINGS_TABLE")]
    table: String,
    /// The snapshot bucket (the snapshot is published after every change when set).
    #[arg(long, env = "SCOPEGATE_SNAPSHOT_BUCKET")]
    bucket: Option<String>,
    /// The snapshot object key.
    #[arg(
        long,
        env = "SCOPEGATE_SNAPSHOT_KEY",
        default_value = "mappings/snapshot.json"
    )]
    key: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputArg::Table)]
    output: OutputArg,
    /// Who is making the change, for the history (default: $USER).
    #[arg(long)]
    actor: Option<String>,
    /// Do not publish the S3 snapshot after a change.
    #[arg(long)]
    no_publish: bool,
}

/// `--output`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputArg {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
}

impl StoreArgs {
    fn output(&self) -> Output {
        match self.output {
            OutputArg::Table => Output::Table,
            OutputArg::Json => Output::Json,
        }
    }

    async fn open(&self) -> Admin {
        Admin::open(&Target {
            aws: AwsOptions {
                region: self.region.clone(),
                profile: self.profile.clone(),
                endpoint_url: self.endpoint_url.clone(),
                ..AwsOptions::default()
            },
            table: self.table.clone(),
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            actor: self.actor.clone().unwrap_or_else(ops::default_actor),
            publish: !self.no_publish,
        })
        .await
    }
}

/// One entry on the command line.
#[derive(Debug, Args)]
pub struct EntryArgs {
    /// The API: arn:aws:execute-api:REGION:ACCOUNT:APIID.
    #[arg(long)]
    api: String,
    /// The stage, or * for every stage.
    #[arg(long)]
    stage: String,
    /// GET, POST, ..., or * / ANY.
    #[arg(long)]
    method: String,
    /// The resource path; * wildcards, no {params}.
    #[arg(long)]
    resource: String,
    /// The scope.
    #[arg(long)]
    scope: String,
    /// Allow or Deny.
    #[arg(long, default_value = "Allow")]
    effect: String,
}

impl EntryArgs {
    fn mapping(&self) -> anyhow::Result<Mapping> {
        let json = serde_json::json!({
            "api": self.api, "stage": self.stage, "method": self.method,
            "resource": self.resource, "scope": self.scope, "effect": self.effect,
        });
        let bytes = serde_json::to_vec(&[json])?;
        let mut entries = file::parse(&bytes, "the command line")?;
        Ok(entries.remove(0))
    }
}

/// The store commands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create the table and apply the data migrations not yet applied (a second run changes
    /// nothing).
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
        /// Apply this folder of migrations instead of the embedded ones.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Load the seed data (seed-data/*.json) into the mappings, as one change.
    Seed {
        #[command(flatten)]
        store: StoreArgs,
        /// Folder (or file) of seed data.
        #[arg(long, default_value = "seed-data")]
        dir: PathBuf,
        /// Replace the whole set with the seed data (asks unless --yes).
        #[arg(long)]
        replace: bool,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Add, remove, list or show mapping entries.
    Mappings {
        #[command(subcommand)]
        command: MappingsCommand,
    },
    /// Import a mapping file: merged into the current set, or --replace it. Shows the diff.
    Import {
        #[command(flatten)]
        store: StoreArgs,
        /// The file (JSON array of entries, or a snapshot document).
        file: PathBuf,
        /// Replace the whole set (entries not in the file are removed; asks unless --yes).
        #[arg(long)]
        replace: bool,
        /// Show the diff, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Print the current set as a snapshot document.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// Document format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write the current set to the S3 snapshot (never over a newer version).
    Publish {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check a mapping file without touching any store; warns about policies over the size
    /// budget.
    Validate {
        /// The file.
        file: PathBuf,
        /// Policy size budget in bytes.
        #[arg(long, env = "SCOPEGATE_POLICY_MAX_BYTES", default_value_t = 10_240)]
        budget: usize,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputArg::Table)]
        output: OutputArg,
    },
    /// Who changed what, and when (newest first).
    History {
        #[command(flatten)]
        store: StoreArgs,
        /// How many changes.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Allow or Deny for a token's scopes on a request, and the entries that decided it.
    Explain {
        #[command(flatten)]
        store: StoreArgs,
        /// Space-separated scopes.
        #[arg(long, conflicts_with = "token", required_unless_present = "token")]
        scopes: Option<String>,
        /// A JWT whose scopes to use (read, not verified).
        #[arg(long)]
        token: Option<String>,
        /// The request: arn:aws:execute-api:REGION:ACCOUNT:APIID/STAGE/METHOD/PATH.
        #[arg(long)]
        method_arn: String,
        /// Explain against this mapping file instead of the table.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// The snapshot document {version, generated_at, mappings}.
    Json,
}

/// `scopegate mappings ...`.
#[derive(Debug, Subcommand)]
pub enum MappingsCommand {
    /// Add one entry (refused if its target is already mapped).
    Add {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        entry: EntryArgs,
    },
    /// Remove one entry (asks unless --yes).
    Remove {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        entry: EntryArgs,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// List entries.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this scope.
        #[arg(long)]
        scope: Option<String>,
        /// Only this API (ARN or id).
        #[arg(long)]
        api: Option<String>,
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
    },
    /// Show the entry with this target (exit 1 when not mapped).
    Get {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        entry: EntryArgs,
    },
}

fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{question}: refusing without --yes (standard input is not a terminal)");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!("cancelled")
    }
}

/// A progress bar on stderr when it is a terminal.
fn progress_bar() -> impl Fn(usize, usize) + Send + Sync {
    let tty = std::io::stderr().is_terminal();
    move |done: usize, total: usize| {
        if !tty || total == 0 {
            return;
        }
        const WIDTH: usize = 40;
        let filled = done * WIDTH / total;
        eprint!(
            "\r  writing [{}{}] {done}/{total}",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled)
        );
        if done == total {
            eprintln!();
        }
    }
}

fn print(s: &str) {
    print!("{s}");
}

/// Runs a store command.
pub async fn run(command: StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Migrate { store, dir } => {
            let migrations = match dir {
                Some(d) => migrate::load_dir(&d)?,
                None => migrate::embedded(),
            };
            let admin = store.open().await;
            let report = migrate::migrate(&admin, &migrations).await?;
            if store.output() == Output::Json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for id in &report.applied {
                    println!("applied {id}");
                }
                for id in &report.changed_since {
                    println!(
                        "warning: {id} was applied, and its file has changed since (not re-run)"
                    );
                }
                if report.applied.is_empty() {
                    println!(
                        "nothing to do: {} migrations already applied",
                        report.already.len()
                    );
                }
            }
            Ok(())
        }
        StoreCommand::Seed {
            store,
            dir,
            replace,
            yes,
        } => {
            if replace {
                confirm(
                    &format!(
                        "replace every mapping in {} with {}?",
                        store.table,
                        dir.display()
                    ),
                    yes,
                )?;
            }
            let admin = store.open().await;
            let changed = migrate::seed(&admin, &dir, replace).await?;
            print(&ops::render_changed(&changed, store.output()));
            Ok(())
        }
        StoreCommand::Import {
            store,
            file,
            replace,
            dry_run,
            yes,
        } => {
            let doc = file::load_document(&file)?;
            let admin = store.open().await;
            // Show the diff first; with a change to make, ask, then apply exactly that diff
            // (refused if the table moved on since).
            let plan = admin
                .import("import", doc.mappings.clone(), replace, true, &|_, _| {})
                .await?;
            if dry_run || plan.diff.is_empty() {
                print(&ops::render_changed(&plan, store.output()));
                return Ok(());
            }
            if !yes {
                eprint!("{}", ops::render_changed(&plan, Output::Table));
            }
            let how = if replace {
                "replace the mappings in"
            } else {
                "merge into"
            };
            confirm(
                &format!("{how} {} from {}?", store.table, file.display()),
                yes,
            )?;
            let bar = progress_bar();
            let changed = admin
                .import_at(
                    Some(plan.from_version),
                    "import",
                    doc.mappings,
                    replace,
                    false,
                    &bar,
                )
                .await?;
            print(&ops::render_changed(&changed, store.output()));
            Ok(())
        }
        StoreCommand::Export {
            store,
            format: ExportFormat::Json,
            out,
        } => {
            let admin = store.open().await;
            let doc = admin.export().await?;
            let text = serde_json::to_string_pretty(&doc)? + "\n";
            match out {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => print(&text),
            }
            Ok(())
        }
        StoreCommand::Publish { store } => {
            let admin = store.open().await;
            let published = admin.publish_now().await?;
            if store.output() == Output::Json {
                println!("{}", serde_json::to_string(&published)?);
            } else {
                let location = admin
                    .snapshots
                    .as_ref()
                    .map(|s| s.location())
                    .unwrap_or_default();
                match published {
                    scopegate::mapping::s3::Published::Written { version } => {
                        println!("published version {version} to {location}")
                    }
                    scopegate::mapping::s3::Published::AlreadyCurrent { version } => {
                        println!("{location} already holds version {version}")
                    }
                }
            }
            Ok(())
        }
        StoreCommand::Validate {
            file,
            budget,
            output,
        } => {
            let report = ops::validate(&file, budget)?;
            match output {
                OutputArg::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                OutputArg::Table => {
                    for w in &report.warnings {
                        eprintln!("warning: {}: {w}", report.file);
                    }
                    println!(
                        "{}: {} entries, {} scopes: valid",
                        report.file, report.entries, report.scopes
                    );
                }
            }
            Ok(())
        }
        StoreCommand::History { store, limit } => {
            let admin = store.open().await;
            print(&ops::render_history(
                &admin.history(limit).await?,
                store.output(),
            ));
            Ok(())
        }
        StoreCommand::Explain {
            store,
            scopes,
            token,
            method_arn,
            file,
        } => {
            let scopes: Vec<String> = match (scopes, token) {
                (Some(s), _) => s.split_whitespace().map(str::to_owned).collect(),
                (None, Some(t)) => ops::token_scopes(&t)?,
                (None, None) => bail!("give --scopes or --token"),
            };
            let snapshot = match file {
                Some(f) => {
                    let doc = file::load_document(&f)?;
                    scopegate::mapping::Snapshot::new(doc.version.unwrap_or(0), doc.mappings)
                }
                None => store.open().await.snapshot().await?,
            };
            print(&ops::render_explain(
                &ops::explain(&snapshot, &scopes, &method_arn)?,
                store.output(),
            ));
            Ok(())
        }
        StoreCommand::Mappings { command } => mappings(command).await,
    }
}

async fn mappings(command: MappingsCommand) -> anyhow::Result<()> {
    match command {
        MappingsCommand::Add { store, entry } => {
            let m = entry.mapping()?;
            let admin = store.open().await;
            print(&ops::render_changed(
                &admin.add(vec![m]).await?,
                store.output(),
            ));
        }
        MappingsCommand::Remove { store, entry, yes } => {
            let m = entry.mapping()?;
            confirm(&format!("remove {m}?"), yes)?;
            let admin = store.open().await;
            print(&ops::render_changed(
                &admin.remove(vec![m]).await?,
                store.output(),
            ));
        }
        MappingsCommand::List {
            store,
            scope,
            api,
            stage,
        } => {
            let admin = store.open().await;
            let (head, entries) = admin.list(&Filter { scope, api, stage }).await?;
            print(&ops::render_mappings(&entries, store.output()));
            if store.output() == Output::Table {
                eprintln!("{} entries, version {}", entries.len(), head.version);
            }
        }
        MappingsCommand::Get { store, entry } => {
            let m = entry.mapping()?;
            let admin = store.open().await;
            match admin.get(&m).await? {
                Some(found) => print(&ops::render_mappings(&[found], store.output())),
                None => {
                    eprintln!("not mapped: {m}");
                    std::process::exit(1);
                }
            }
        }
    }
    Ok(())
}
