//! The store commands' flags (AWS CLI conventions) and their wiring to
//! `scopegate::admin::{mappings, migrate}`; confirmation prompts and the progress bar live
//! here, at the terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use scopegate::admin::flush::{self, CacheFlusher, Flushed, StageTarget};
use scopegate::admin::{self as ops, Admin, AdminError, Change, Filter, Output, Target};
use scopegate::admin::{from_openapi, migrate};
use scopegate::clock::Stopwatch;
use scopegate::mapping::file;
use scopegate::mapping::store::aws::{AwsConfig, AwsOptions};
use scopegate::mapping::store::{Diff, StoreError};
use scopegate::mapping::Mapping;

/// Exit codes of `scopegate` (documented in `--help` and docs/mappings.md).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Nothing found, or differences (`get`, `diff`, `import --dry-run`), or cancelled.
    pub const DIFFERENT: u8 = 1;
}

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
    /// The mappings table (required by every command that reads or writes the table; not by
    /// `explain --file`).
    #[arg(long, env = "SCOPEGATE_MAPPINGS_TABLE")]
    table: Option<String>,
    /// The snapshot bucket (the snapshot is published after every change when set).
    #[arg(long, env = "SCOPEGATE_SNAPSHOT_BUCKET")]
    bucket: Option<String>,
    /// The snapshot object key.
    #[arg(
        long,
        env = "SCOPEGATE_SNAPSHOT_KEY",
        default_value = scopegate::config::SNAPSHOT_KEY.text_default()
    )]
    key: String,
    /// Output format: table (for people), json, or text (tab-separated, no header).
    #[arg(long, value_enum, default_value_t = OutputArg::Table)]
    output: OutputArg,
    /// Who is making the change, for the history (default: $USER).
    #[arg(long)]
    actor: Option<String>,
    /// Do not publish the S3 snapshot after a change.
    #[arg(long)]
    no_publish: bool,
    /// The claims entries may require, as the authorizer is configured (comma-separated
    /// names or JSON Pointers): a change adding an entry that requires another is refused.
    #[arg(long, env = "SCOPEGATE_GRANT_CLAIMS", value_parser = parse_grant_claims, default_value = "")]
    grant_claims: GrantClaims,
    /// After a change that takes a grant away (an Allow removed, a Deny added, an Allow
    /// turned into a Deny), flush API Gateway's authorizer cache of the stages it names (a
    /// stage `*`: every stage of the API): at once, and again once every warm container has
    /// the change (the function's mapping TTL and 5 s: see --mapping-ttl), so that no cached
    /// policy outlives it. With --dry-run, lists the stages. A failure is reported; the
    /// change stands.
    #[arg(
        long,
        env = "SCOPEGATE_FLUSH_AUTHORIZER_CACHE",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    flush_authorizer_cache: bool,
    /// The authorizer function's SCOPEGATE_MAPPING_TTL_SECONDS, which the second flush waits
    /// for. Without it, read from --authorizer-function's configuration; without either, the
    /// authorizer's default (60).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    mapping_ttl: Option<u64>,
    /// The authorizer function (name or ARN), whose SCOPEGATE_MAPPING_TTL_SECONDS the second
    /// flush waits for (read with lambda:GetFunctionConfiguration).
    #[arg(long, env = "SCOPEGATE_AUTHORIZER_FUNCTION", value_name = "NAME|ARN")]
    authorizer_function: Option<String>,
}

/// The AWS CLI's connection options, for a command without a table.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// AWS profile.
    #[arg(long)]
    profile: Option<String>,
    /// Endpoint URL (an emulator); also AWS_ENDPOINT_URL.
    #[arg(long)]
    endpoint_url: Option<String>,
}

/// `--output`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputArg {
    /// Aligned columns with a header and a footer.
    Table,
    /// JSON.
    Json,
    /// Tab-separated fields, one record per line, no header or footer (for shell pipelines).
    Text,
}

impl From<OutputArg> for Output {
    fn from(o: OutputArg) -> Output {
        match o {
            OutputArg::Table => Output::Table,
            OutputArg::Json => Output::Json,
            OutputArg::Text => Output::Text,
        }
    }
}

impl StoreArgs {
    fn output(&self) -> Output {
        self.output.into()
    }

    /// With `--flush-authorizer-cache`, flushes (or with `dry_run` lists) the stages whose
    /// grants `diff` takes away, at once and again when every warm container has the change
    /// ([`flush::flush_twice`]), and says so on stderr. A failure is a warning: the change
    /// is made, and `scopegate flush-cache` can be run again.
    async fn flush_after(&self, diff: &Diff, dry_run: bool) {
        if !self.flush_authorizer_cache {
            return;
        }
        let targets = flush::stages_to_flush(diff);
        if targets.is_empty() {
            return;
        }
        let aws = match AwsConfig::load(&self.target().aws).await {
            Ok(aws) => aws,
            Err(e) => {
                eprintln!("scopegate: warning: could not flush the authorizer caches: {e}; the change stands (run `scopegate flush-cache`)");
                return;
            }
        };
        // The API's region, for a function given by name: an authorizer is in its API's region.
        let region = targets
            .first()
            .map(|t| t.api.region().to_owned())
            .unwrap_or_default();
        let from = std::cell::RefCell::new(String::new());
        // Asked once the first round is done: the first flush waits on nothing.
        let wait = async {
            let (ttl, source) = self.function_mapping_ttl(&aws, &region).await;
            *from.borrow_mut() = source;
            flush::second_flush_after(ttl)
        };
        let flusher = CacheFlusher::new(aws.clone());
        flush::flush_twice(&flusher, &targets, dry_run, wait, |round| match round {
            flush::FlushRound::Done { rows, dry_run } => report_flushed(rows, dry_run),
            flush::FlushRound::Waiting(wait) => eprintln!(
                "scopegate: flushing again in {} s, when every warm container has the change ({}); Ctrl-C skips it",
                wait.as_secs(),
                from.borrow()
            ),
        })
        .await;
    }

    /// The deployed function's mapping TTL, and where it came from: --mapping-ttl, else the
    /// function's configuration (--authorizer-function), else the authorizer's default, with
    /// a warning. Never this process's own environment: the operator's shell does not say
    /// what the function runs with.
    async fn function_mapping_ttl(&self, aws: &AwsConfig, region: &str) -> (u64, String) {
        let default = scopegate::config::MAPPING_TTL_SECONDS.number_default();
        if let Some(ttl) = self.mapping_ttl {
            return (ttl, format!("--mapping-ttl {ttl}"));
        }
        let Some(function) = &self.authorizer_function else {
            eprintln!("scopegate: warning: the authorizer's mapping TTL is unknown; assuming its default, {default} s (give --mapping-ttl or --authorizer-function)");
            return (default, format!("the default mapping TTL, {default} s"));
        };
        match flush::function_mapping_ttl(aws, function, region).await {
            Ok(ttl) => (ttl, format!("{function}'s mapping TTL, {ttl} s")),
            Err(e) => {
                eprintln!("scopegate: warning: could not read {function}'s mapping TTL: {e}; assuming the default, {default} s (give --mapping-ttl)");
                (default, format!("the default mapping TTL, {default} s"))
            }
        }
    }
}

impl StoreArgs {
    /// Opens the store; makes no request.
    async fn open(&self) -> Result<Admin, AdminError> {
        if self.table.is_none() {
            return Err(AdminError::Usage(
                "the mappings table is needed: give --table or set SCOPEGATE_MAPPINGS_TABLE".into(),
            ));
        }
        Admin::open(&self.target()).await
    }

    /// The table's name, for messages (empty when none was given; `open` refuses that).
    fn table(&self) -> &str {
        self.table.as_deref().unwrap_or_default()
    }

    /// Opens the store for a command that changes it, and says once, on stderr, which
    /// account, principal, region and table it acts on (STS GetCallerIdentity): the line
    /// that keeps an operator from editing the wrong account.
    async fn open_for_change(&self) -> Result<Admin, AdminError> {
        let admin = self.open().await?;
        self.announce(&admin).await;
        Ok(admin)
    }

    /// The line of [`open_for_change`](Self::open_for_change); returns the account, when
    /// STS could tell it.
    async fn announce(&self, admin: &Admin) -> Option<String> {
        let region = admin.region().unwrap_or_default();
        match admin.identity().await {
            Ok(id) => {
                eprintln!(
                    "scopegate: account {} ({}), region {region}, table {}",
                    id.account,
                    id.arn,
                    self.table()
                );
                Some(id.account)
            }
            Err(e) => {
                eprintln!(
                    "scopegate: warning: cannot tell which account this is ({e}); region {region}, table {}",
                    self.table()
                );
                None
            }
        }
    }

    /// Where this command acts, for error messages that name it.
    pub fn target(&self) -> Target {
        Target {
            aws: AwsOptions {
                region: self.region.clone(),
                profile: self.profile.clone(),
                endpoint_url: self.endpoint_url.clone(),
                ..AwsOptions::for_cli()
            },
            table: self.table().to_owned(),
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            actor: self.actor.clone().unwrap_or_else(ops::default_actor),
            publish: !self.no_publish,
            grant_claims: self.grant_claims.0.clone(),
        }
    }
}

/// `--grant-claims` / `SCOPEGATE_GRANT_CLAIMS`, read as the authorizer reads it.
#[derive(Debug, Clone, Default)]
pub struct GrantClaims(Vec<scopegate::claim::ClaimName>);

fn parse_grant_claims(v: &str) -> Result<GrantClaims, String> {
    scopegate::config::grant_claims(Some(v))
        .map(GrantClaims)
        .map_err(|e| e.to_string())
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
    /// The resource path: a route (orders/{id}, files/{proxy+}) or a glob (* and ?).
    #[arg(long)]
    resource: String,
    /// The scope; give it more than once to require all of them at once.
    #[arg(long, required_unless_present_any = ["any_token", "nobody"])]
    scope: Vec<String>,
    /// Require no scope ("scopes": []): only a verified token, or with --claim, only the
    /// claims.
    #[arg(long, conflicts_with_all = ["scope", "nobody"])]
    any_token: bool,
    /// A route held for nobody ("nobody": true): no token is granted it, and other routes'
    /// grants are kept off it.
    #[arg(long, conflicts_with_all = ["scope", "claim"])]
    nobody: bool,
    /// A claim value required too: NAME=VALUE for a string (groups=support-leads), or
    /// NAME:=JSON for a number or a boolean (tier:=3, mfa:=true). Give it more than once to
    /// require all of them. The claim must be one of SCOPEGATE_GRANT_CLAIMS.
    #[arg(long, value_name = "NAME=VALUE")]
    claim: Vec<String>,
    /// Allow or Deny.
    #[arg(long, default_value = "Allow")]
    effect: String,
}

impl EntryArgs {
    fn mapping(&self) -> anyhow::Result<Mapping> {
        let mut json = serde_json::json!({
            "api": self.api, "stage": self.stage, "method": self.method,
            "resource": self.resource, "effect": self.effect,
        });
        match self.scope.as_slice() {
            _ if self.nobody => json["nobody"] = true.into(),
            [one] => json["scope"] = one.as_str().into(),
            all => json["scopes"] = all.into(),
        }
        if !self.claim.is_empty() {
            json["claims"] = claims_arg(&self.claim)?;
        }
        let bytes = serde_json::to_vec(&[json])?;
        let mut entries = file::parse(&bytes, "the command line")?;
        Ok(entries.remove(0))
    }
}

/// `--claim` values as an entry's `"claims"`: `NAME=VALUE` (a string) or `NAME:=JSON`.
fn claims_arg(args: &[String]) -> Result<serde_json::Value, AdminError> {
    let mut claims = serde_json::Map::new();
    for arg in args {
        let (name, value) = match (arg.split_once(":="), arg.split_once('=')) {
            (Some((n, json)), Some((m, _))) if n.len() < m.len() => (
                n,
                serde_json::from_str(json).map_err(|_| {
                    AdminError::Usage(format!(
                        "--claim {n}:=...: not a JSON value (write a number, true or false)"
                    ))
                })?,
            ),
            (_, Some((n, v))) => (n, serde_json::Value::from(v)),
            _ => {
                return Err(AdminError::Usage(
                    "--claim takes NAME=VALUE (a string) or NAME:=JSON (a number or boolean)"
                        .into(),
                ))
            }
        };
        let values = claims
            .entry(name.to_owned())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(v) = values {
            v.push(value);
        }
    }
    Ok(serde_json::Value::Object(claims))
}

/// The store commands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create the table (with deletion protection, encryption and point-in-time recovery)
    /// and apply the data migrations not yet applied (a second run changes nothing). Says
    /// what it will create first, and asks on a terminal.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
        /// Apply this folder of migrations instead of the embedded ones.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Do not ask before creating the table.
        #[arg(long)]
        yes: bool,
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
    /// With --openapi, the entries an OpenAPI document's security says, for one API and
    /// stage (see `scopegate openapi`).
    Import {
        #[command(flatten)]
        store: StoreArgs,
        /// The file (JSON array of entries, or a snapshot document).
        #[arg(required_unless_present = "openapi", conflicts_with = "openapi")]
        file: Option<PathBuf>,
        /// An OpenAPI 3.0/3.1 or Swagger 2.0 document (YAML or JSON) to import instead.
        #[arg(long, requires_all = ["api", "stage"])]
        openapi: Option<PathBuf>,
        /// With --openapi: the API, arn:aws:execute-api:REGION:ACCOUNT:APIID.
        #[arg(long, requires = "openapi")]
        api: Option<String>,
        /// With --openapi: the stage, or * for every stage.
        #[arg(long, requires = "openapi")]
        stage: Option<String>,
        /// With --openapi: how a requirement object listing several scopes reads (see
        /// `scopegate openapi`).
        #[arg(long, value_enum, default_value_t = ScopeListsArg::All, requires = "openapi")]
        scope_lists: ScopeListsArg,
        /// With --openapi: the kind of API the document describes, where it does not say.
        #[arg(long, value_enum, requires = "openapi")]
        kind: Option<KindArg>,
        /// Replace the whole set (entries not in the file are removed; asks unless --yes).
        /// With --openapi, only the entries of that API and stage are replaced.
        #[arg(long)]
        replace: bool,
        /// Show the diff, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Compare a mapping file with the table, as `import --replace` would change it (exit 1
    /// when they differ): for CI to check that a repository's mappings file is what is
    /// deployed.
    Diff {
        #[command(flatten)]
        store: StoreArgs,
        /// The file (JSON array of entries, or a snapshot document).
        file: PathBuf,
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
    /// Print the mappings an OpenAPI document's security says (offline): one Allow entry
    /// per operation and requirement alternative, for `validate` and `import`. What is not
    /// mapped (public operations, apiKey or http requirements) is said on stderr.
    Openapi {
        /// An OpenAPI 3.0/3.1 or Swagger 2.0 document, YAML or JSON.
        file: PathBuf,
        /// The API: arn:aws:execute-api:REGION:ACCOUNT:APIID.
        #[arg(long)]
        api: String,
        /// The stage, or * for every stage.
        #[arg(long)]
        stage: String,
        /// How a requirement object listing several scopes reads: `all` of them (what the
        /// OpenAPI specification says), or `any` one (what API Gateway's own Cognito and JWT
        /// authorizers do, and what many vendors' documents mean). Stderr counts the
        /// operations the choice affects.
        #[arg(long, value_enum, default_value_t = ScopeListsArg::All)]
        scope_lists: ScopeListsArg,
        /// The kind of API the document describes, where it does not say (an HTTP API
        /// export says so): `rest` (the default) serves `/x/` from `/x`; `http` routes them
        /// apart.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
    /// Check a mapping file without touching any store: reports every bad entry (exit 4),
    /// and warns about policies over the size budget and routes a policy cannot separate.
    Validate {
        /// The file.
        file: PathBuf,
        /// Policy size budget in bytes.
        #[arg(
            long,
            env = "SCOPEGATE_POLICY_MAX_BYTES",
            default_value_t = scopegate::config::POLICY_MAX_BYTES.number_default() as usize
        )]
        budget: usize,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputArg::Table)]
        output: OutputArg,
        /// Exit 0 even when routes IAM cannot separate cost a granted route some requests
        /// (they are denied, and listed): without it, such a pair exits 4.
        #[arg(long)]
        accept_inseparable: bool,
        /// The claims entries may require, as the authorizer is configured: an entry that
        /// requires another is refused (exit 4).
        #[arg(long, env = "SCOPEGATE_GRANT_CLAIMS", value_parser = parse_grant_claims, default_value = "")]
        grant_claims: GrantClaims,
    },
    /// Flush API Gateway's authorizer cache of a stage (FlushStageAuthorizersCache), so that
    /// every token's next request is decided again from the current mappings. Stage `*`:
    /// every stage of the API (GetStages). REST APIs only.
    FlushCache {
        #[command(flatten)]
        aws: AwsArgs,
        /// The API: arn:aws:execute-api:REGION:ACCOUNT:APIID (asked in its region).
        #[arg(long)]
        api: String,
        /// AWS region, as every other command takes it: must be the API's own (its ARN
        /// names it); another is refused rather than silently ignored.
        #[arg(long)]
        region: Option<String>,
        /// The stage, or * for every stage.
        #[arg(long)]
        stage: String,
        /// List the stages, flush nothing.
        #[arg(long)]
        dry_run: bool,
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
        /// A JWT whose scopes to use (read, not verified), and its values of the grant claims
        /// (--grant-claims, SCOPEGATE_GRANT_CLAIMS).
        #[arg(long)]
        token: Option<String>,
        /// With --token: the claim holding its scopes, as the authorizer's
        /// SCOPEGATE_SCOPE_CLAIM (default: scp, then scope).
        #[arg(long, env = "SCOPEGATE_SCOPE_CLAIM")]
        scope_claim: Option<String>,
        /// With --scopes: the token's other claims, as a JSON object
        /// ('{"groups":["support-leads"]}'), of which the grant claims count.
        #[arg(long, conflicts_with = "token")]
        claims: Option<String>,
        /// The request: arn:aws:execute-api:REGION:ACCOUNT:APIID/STAGE/METHOD/PATH.
        #[arg(long)]
        method_arn: String,
        /// Explain against this mapping file instead of the table.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// `--kind`: a REST or an HTTP API.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// A REST API.
    Rest,
    /// An HTTP API.
    Http,
}

impl From<KindArg> for scopegate::policy::ApiKind {
    fn from(k: KindArg) -> scopegate::policy::ApiKind {
        match k {
            KindArg::Rest => scopegate::policy::ApiKind::Rest,
            KindArg::Http => scopegate::policy::ApiKind::Http,
        }
    }
}

/// `--scope-lists`: [`from_openapi::ScopeLists`] on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeListsArg {
    /// Every listed scope is required (the OpenAPI specification).
    All,
    /// Any one listed scope suffices (API Gateway's Cognito and JWT authorizers).
    Any,
}

impl From<ScopeListsArg> for from_openapi::ScopeLists {
    fn from(a: ScopeListsArg) -> from_openapi::ScopeLists {
        match a {
            ScopeListsArg::All => from_openapi::ScopeLists::All,
            ScopeListsArg::Any => from_openapi::ScopeLists::Any,
        }
    }
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
    /// Show or declare whether an API is a REST or an HTTP API. Its routing rules follow the
    /// declared kind (an API declared nowhere is REST), and the authorizer refuses an event
    /// from an API of the other kind.
    Kind {
        #[command(flatten)]
        store: StoreArgs,
        /// The API: arn:aws:execute-api:REGION:ACCOUNT:ID.
        #[arg(long)]
        api: String,
        /// Declare it this kind; without, show its kind.
        kind: Option<KindArg>,
    },
}

/// Asks `question` on a terminal unless `yes`; refuses without `--yes` when standard input is
/// not a terminal (a script must say what it means).
fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(AdminError::Usage(format!(
            "{question}: refusing without --yes (standard input is not a terminal)"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(AdminError::Cancelled.into())
    }
}

/// Progress of a long import or export on stderr: an indicatif bar on a terminal; on
/// anything else (CI logs), a plain line at most every 2 s and at the end, so that a long
/// run is never silent.
struct Progress {
    verb: &'static str,
    bar: Option<indicatif::ProgressBar>,
    last: std::sync::Mutex<Option<Stopwatch>>,
}

impl Progress {
    const EVERY: Duration = Duration::from_secs(2);

    fn new(verb: &'static str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::hidden();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "  {msg} [{bar:40}] {pos}/{len} ({eta} left)",
                )
                .expect("a valid template")
                .progress_chars("#> "),
            );
            bar.set_message(verb);
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar
        });
        Progress {
            verb,
            bar,
            last: std::sync::Mutex::new(None),
        }
    }

    fn update(&self, done: usize, total: usize) {
        if total == 0 {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done.min(total) as u64);
            if done >= total {
                bar.finish_and_clear();
            }
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= Self::EVERY);
        if due || done >= total && last.is_some() {
            eprintln!(
                "scopegate: {} {done}/{total} ({}%)",
                self.verb,
                done * 100 / total
            );
            *last = Some(Stopwatch::start());
        }
    }
}

fn print(s: &str) {
    print!("{s}");
}

/// Loads a mapping file for `validate`, `import` or `diff`. With `--output json`, a file that
/// does not validate is also printed as JSON (every problem) before the error is returned.
fn load_file(path: &Path, output: Output) -> anyhow::Result<file::Document> {
    match file::load_document(path) {
        Ok(doc) => Ok(doc),
        Err(e) => {
            if output == Output::Json {
                print(&ops::render_invalid_json(path, &e));
            }
            Err(e.into())
        }
    }
}

/// Runs a store command; `Ok` holds the exit code (0, or 1 for "not found" and "differs").
pub async fn run(command: StoreCommand) -> anyhow::Result<u8> {
    match command {
        StoreCommand::Migrate { store, dir, yes } => {
            let migrations = match dir {
                Some(d) => migrate::load_dir(&d)?,
                None => migrate::embedded(),
            };
            let admin = store.open().await?;
            let account = store.announce(&admin).await;
            if !admin.store.exists().await? {
                let region = admin.region().unwrap_or_default();
                let account = account.unwrap_or_else(|| "an unknown account".to_owned());
                eprintln!(
                    "scopegate: will create table {} in {region}/{account} (on-demand, deletion protection, SSE with the AWS managed key, point-in-time recovery)",
                    store.table()
                );
                if std::io::stdin().is_terminal() {
                    confirm(&format!("create table {}?", store.table()), yes)?;
                }
            }
            let report = migrate::migrate(&admin, &migrations).await?;
            print(&ops::render_migrated(
                &report,
                store.table(),
                store.output(),
            ));
            Ok(exit::OK)
        }
        StoreCommand::Seed {
            store,
            dir,
            replace,
            yes,
        } => {
            let doc = migrate::seed_document(&dir)?;
            if replace {
                confirm(
                    &format!(
                        "replace every mapping in {} with {}?",
                        store.table(),
                        dir.display()
                    ),
                    yes,
                )?;
            }
            let admin = store.open_for_change().await?;
            let changed = admin
                .import_document("seed", doc, replace, false, &|_, _| {})
                .await?;
            print(&ops::render_changed(&changed, store.output()));
            store.flush_after(&changed.diff, false).await;
            Ok(exit::OK)
        }
        StoreCommand::Import {
            store,
            file,
            openapi,
            api,
            stage,
            scope_lists,
            kind,
            replace,
            dry_run,
            yes,
        } => {
            let (entries, apis, within) = match (&file, &openapi) {
                (Some(file), _) => {
                    let doc = load_file(file, store.output())?;
                    (doc.mappings, doc.apis, None)
                }
                (None, Some(doc)) => {
                    let (api, stage) = (api.unwrap_or_default(), stage.unwrap_or_default());
                    // Without --kind, the kind the table declares for the API (the document
                    // may still say it is an HTTP API's): an import never flips a declared
                    // HTTP API to REST by omission.
                    let kind = match kind {
                        Some(k) => Some(k.into()),
                        None => store.open().await?.kinds().await?.declared(&api),
                    };
                    let read = from_openapi::ReadAs {
                        scope_lists: scope_lists.into(),
                        kind,
                    };
                    let derived = from_openapi::load(doc, &api, &stage, read)?;
                    for note in &derived.notes {
                        eprintln!("scopegate: note: {note}");
                    }
                    file::check_unique(&derived.entries, "the OpenAPI document")?;
                    // The document speaks for this API and stage only, even when it maps
                    // nothing: --replace never reaches past them. It declares the API's kind.
                    let apis = [(derived.api.clone(), derived.kind)].into_iter().collect();
                    (
                        derived.entries,
                        apis,
                        Some((derived.api, derived.stage, derived.kind)),
                    )
                }
                (None, None) => unreachable!("clap requires a file or --openapi"),
            };
            let change = match (replace, within) {
                (true, Some((api, stage, kind))) => Change::ReplaceWithin {
                    api,
                    stage,
                    entries,
                    kind,
                },
                (true, None) => Change::Replace(entries, apis),
                (false, _) => Change::Merge(entries, apis),
            };
            if dry_run {
                let admin = store.open().await?;
                let plan = admin.plan(&change).await?;
                print(&ops::render_changed(&plan, store.output()));
                store.flush_after(&plan.diff, true).await;
                return Ok(if plan.diff.is_empty() {
                    exit::OK
                } else {
                    exit::DIFFERENT
                });
            }
            let admin = store.open_for_change().await?;
            let progress = Progress::new("writing");
            let update = |done, total| progress.update(done, total);
            let changed = if yes {
                // No one to show a plan to: apply the change, re-applied after conflicts.
                admin.change("import", change, None, &update).await?
            } else {
                // Show the plan; with a change to make, ask, then apply exactly that plan
                // (retried while it stays the same, refused if the table moved under it).
                let plan = admin.plan(&change).await?;
                if plan.diff.is_empty() {
                    print(&ops::render_changed(&plan, store.output()));
                    return Ok(exit::OK);
                }
                eprint!("{}", ops::render_changed(&plan, Output::Table));
                let how = match &change {
                    Change::ReplaceWithin { api, stage, .. } => {
                        format!("replace the mappings of {api} stage {stage} in")
                    }
                    Change::Replace(..) => "replace the mappings in".to_owned(),
                    _ => "merge into".to_owned(),
                };
                let source = file.as_ref().or(openapi.as_ref()).map(|p| p.display());
                let source = source.map(|p| p.to_string()).unwrap_or_default();
                confirm(&format!("{how} {} from {source}?", store.table()), false)?;
                admin
                    .change("import", change, Some(&plan.diff), &update)
                    .await?
            };
            print(&ops::render_changed(&changed, store.output()));
            store.flush_after(&changed.diff, false).await;
            Ok(exit::OK)
        }
        StoreCommand::Diff { store, file } => {
            let doc = load_file(&file, store.output())?;
            let admin = store.open().await?;
            let plan = admin
                .import_document("diff", doc, true, true, &|_, _| {})
                .await?;
            if store.output() == Output::Table && plan.diff.is_empty() {
                print(&ops::render_same(&file, store.table(), plan.from_version));
            } else {
                print(&ops::render_changed(&plan, store.output()));
            }
            Ok(if plan.diff.is_empty() {
                exit::OK
            } else {
                exit::DIFFERENT
            })
        }
        StoreCommand::Export {
            store,
            format: ExportFormat::Json,
            out,
        } => {
            let admin = store.open().await?;
            let progress = Progress::new("reading");
            let doc = admin
                .export_with(&|done, total| progress.update(done, total))
                .await?;
            let text = serde_json::to_string_pretty(&doc)? + "\n";
            match out {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => print(&text),
            }
            Ok(exit::OK)
        }
        StoreCommand::Publish { store } => {
            let admin = store.open_for_change().await?;
            let published = admin.publish_now().await?;
            let location = admin
                .snapshots
                .as_ref()
                .map(|s| s.location())
                .unwrap_or_default();
            print(&ops::render_published(published, &location, store.output()));
            Ok(exit::OK)
        }
        StoreCommand::Openapi {
            file,
            api,
            stage,
            scope_lists,
            kind,
        } => {
            let read = from_openapi::ReadAs {
                scope_lists: scope_lists.into(),
                kind: kind.map(Into::into),
            };
            let derived = from_openapi::load(&file, &api, &stage, read)?;
            for note in &derived.notes {
                eprintln!("scopegate: note: {note}");
            }
            file::check_unique(&derived.entries, "the OpenAPI document")?;
            // One entry per line: a document to review, diff and keep in version control. It
            // declares the API's kind, which the entries' routing rules follow.
            let lines: Vec<String> = derived
                .entries
                .iter()
                .map(|m| serde_json::to_string(m).expect("entries serialize"))
                .collect();
            let apis: scopegate::mapping::ApiKinds =
                [(derived.api.clone(), derived.kind)].into_iter().collect();
            let apis = serde_json::to_string(&apis).expect("kinds serialize");
            if lines.is_empty() {
                println!("{{\n  \"apis\": {apis},\n  \"mappings\": []\n}}");
            } else {
                println!(
                    "{{\n  \"apis\": {apis},\n  \"mappings\": [\n    {}\n  ]\n}}",
                    lines.join(",\n    ")
                );
            }
            eprintln!(
                "scopegate: {} from {} operations",
                ops::count(derived.entries.len(), "entry", "entries"),
                derived.operations
            );
            Ok(exit::OK)
        }
        StoreCommand::Validate {
            file,
            budget,
            output,
            accept_inseparable,
            grant_claims,
        } => {
            let output: Output = output.into();
            let doc = load_file(&file, output)?;
            scopegate::admin::check_declared(&doc.mappings, &grant_claims.0)?;
            scopegate::admin::check_storable(&doc.mappings)?;
            let report = ops::validate_document(&file.display().to_string(), doc, budget);
            let rendered = ops::render_valid(&report, output);
            eprint!("{}", rendered.err);
            print(&rendered.out);
            if report.inseparable > 0 && !accept_inseparable {
                eprintln!(
                    "scopegate: {} of routes IAM cannot separate cost granted routes some requests (listed above; they are denied): give --accept-inseparable to accept them",
                    ops::count(report.inseparable, "pair", "pairs")
                );
                return Ok(scopegate::admin::ErrorKind::Invalid.exit_code());
            }
            Ok(exit::OK)
        }
        StoreCommand::History { store, limit } => {
            let admin = store.open().await?;
            print(&ops::render_history(
                &admin.history(limit).await?,
                store.output(),
            ));
            Ok(exit::OK)
        }
        StoreCommand::Explain {
            store,
            scopes,
            token,
            scope_claim,
            claims,
            method_arn,
            file,
        } => {
            let grant = &store.grant_claims.0;
            let scope_claim = match scope_claim.filter(|c| !c.is_empty()) {
                Some(c) => scopegate::config::ScopeClaim::Named(c),
                None => scopegate::config::ScopeClaim::Standard,
            };
            let mut scopes: Vec<String> = match (scopes, token) {
                (Some(s), _) => s.split_whitespace().map(str::to_owned).collect(),
                (None, Some(t)) => {
                    if let Some(note) = ops::token_binding(&t) {
                        eprintln!("note: {note}");
                    }
                    ops::token_grants(&t, grant, &scope_claim)?
                }
                (None, None) => {
                    return Err(AdminError::Usage("give --scopes or --token".into()).into())
                }
            };
            if let Some(c) = claims {
                scopes.extend(ops::claim_grants(&c, grant)?);
            }
            let snapshot = match file {
                Some(f) => {
                    scopegate::mapping::Snapshot::from_document(load_file(&f, Output::Table)?)
                }
                None => store.open().await?.snapshot().await?,
            };
            print(&ops::render_explain(
                &ops::explain(&snapshot, &scopes, &method_arn)?,
                store.output(),
            ));
            Ok(exit::OK)
        }
        StoreCommand::Mappings { command } => mappings(command).await,
        StoreCommand::FlushCache {
            aws,
            api,
            region,
            stage,
            dry_run,
            output,
        } => {
            let target = StageTarget::parse(&api, &stage)?;
            if let Some(r) = region.filter(|r| r != target.api.region()) {
                return Err(AdminError::Usage(format!(
                    "--region {r} is not the region of {} ({}): an API's cache is flushed in the API's own region",
                    target.api.as_str(),
                    target.api.region()
                ))
                .into());
            }
            let aws = AwsConfig::load(&AwsOptions {
                profile: aws.profile,
                endpoint_url: aws.endpoint_url,
                // Each API is asked in its own region; this one only satisfies the loader.
                region: Some(target.api.region().to_owned()),
                ..AwsOptions::for_cli()
            })
            .await?;
            let flushed = CacheFlusher::new(aws)
                .flush_all(&[target].into(), dry_run)
                .await;
            print(&ops::render_flushed(&flushed, dry_run, output.into()));
            let failed = flushed.iter().filter(|f| f.error.is_some()).count();
            if failed > 0 {
                anyhow::bail!("could not flush the authorizer cache of {failed} stage(s)");
            }
            Ok(exit::OK)
        }
    }
}

async fn mappings(command: MappingsCommand) -> anyhow::Result<u8> {
    match command {
        MappingsCommand::Add { store, entry } => {
            let m = entry.mapping()?;
            let admin = store.open_for_change().await?;
            let changed = admin.add(vec![m]).await?;
            print(&ops::render_changed(&changed, store.output()));
            store.flush_after(&changed.diff, false).await;
        }
        MappingsCommand::Remove { store, entry, yes } => {
            let m = entry.mapping()?;
            confirm(&format!("remove {m}?"), yes)?;
            let admin = store.open_for_change().await?;
            let changed = admin.remove(vec![m]).await?;
            print(&ops::render_changed(&changed, store.output()));
            store.flush_after(&changed.diff, false).await;
        }
        MappingsCommand::List {
            store,
            scope,
            api,
            stage,
        } => {
            let admin = store.open().await?;
            let (head, entries) = admin.list(&Filter { scope, api, stage }).await?;
            print(&ops::render_mappings(
                &entries,
                store.output(),
                Some(head.version),
            ));
        }
        MappingsCommand::Kind { store, api, kind } => {
            let api = scopegate::policy::ApiArn::parse(&api)
                .map_err(|e| AdminError::Usage(format!("--api: {e}")))?;
            match kind {
                Some(kind) => {
                    let admin = store.open_for_change().await?;
                    let changed = admin.declare(api, kind.into()).await?;
                    print(&ops::render_changed(&changed, store.output()));
                    store.flush_after(&changed.diff, false).await;
                }
                None => {
                    let declared = store.open().await?.kinds().await?.declared(api.as_str());
                    match declared {
                        Some(k) => println!("{api}: {k}"),
                        None => println!("{api}: rest (not declared)"),
                    }
                }
            }
        }
        MappingsCommand::Get { store, entry } => {
            let m = entry.mapping()?;
            let admin = store.open().await?;
            match admin.get(&m).await? {
                Some(found) => print(&ops::render_mappings(&[found], store.output(), None)),
                None => {
                    eprintln!("not mapped: {m}");
                    return Ok(exit::DIFFERENT);
                }
            }
        }
    }
    Ok(exit::OK)
}

impl StoreCommand {
    /// The store options of the command, if it has any.
    pub fn store(&self) -> Option<&StoreArgs> {
        match self {
            StoreCommand::Migrate { store, .. }
            | StoreCommand::Seed { store, .. }
            | StoreCommand::Import { store, .. }
            | StoreCommand::Diff { store, .. }
            | StoreCommand::Export { store, .. }
            | StoreCommand::Publish { store }
            | StoreCommand::History { store, .. }
            | StoreCommand::Explain { store, .. } => Some(store),
            StoreCommand::Validate { .. }
            | StoreCommand::Openapi { .. }
            | StoreCommand::FlushCache { .. } => None,
            StoreCommand::Mappings { command } => Some(match command {
                MappingsCommand::Add { store, .. }
                | MappingsCommand::Remove { store, .. }
                | MappingsCommand::List { store, .. }
                | MappingsCommand::Get { store, .. }
                | MappingsCommand::Kind { store, .. } => store,
            }),
        }
    }
}

/// Fills in where a missing table was looked for (`REGION/ACCOUNT`), so that the message
/// tells an operator whether they are in the wrong account or region.
pub async fn locate(e: &mut anyhow::Error, target: &Target) {
    let slot = match e.downcast_mut::<AdminError>() {
        Some(AdminError::Store(StoreError::TableNotFound { location, .. })) => location,
        _ => match e.downcast_mut::<StoreError>() {
            Some(StoreError::TableNotFound { location, .. }) => location,
            _ => return,
        },
    };
    if slot.is_some() {
        return;
    }
    let Ok(admin) = Admin::open(target).await else {
        return;
    };
    let region = admin.region().unwrap_or_else(|| "?".to_owned());
    let account = match admin.identity().await {
        Ok(id) => id.account,
        Err(_) => "an unknown account".to_owned(),
    };
    *slot = Some(format!("{region}/{account}"));
}

/// One stderr line per stage flushed (or in a dry run, to flush), and a warning per failure.
fn report_flushed(flushed: &[Flushed], dry_run: bool) {
    for f in flushed {
        let at = format!("the authorizer cache of {} stage {}", f.api, f.stage);
        match &f.error {
            None if dry_run => eprintln!("scopegate: would flush {at}"),
            None => eprintln!("scopegate: flushed {at}"),
            Some(e) => eprintln!(
                "scopegate: warning: could not flush {at}: {e}; the change stands (run `scopegate flush-cache`)"
            ),
        }
    }
}
