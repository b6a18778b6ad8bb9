//! `scopegate`: the developer and operator CLI. Flags are parsed here; the work is in
//! `scopegate::admin`.

use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use scopegate::admin;
use scopegate::authorizer::Authorizer;
use scopegate::clock::SystemClock;
use scopegate::config::Config;
use scopegate::mapping::configured::ConfiguredMappings;
use scopegate::mapping::store::aws::AwsOptions;
use std::sync::Arc;

#[path = "scopegate/store_cli.rs"]
mod store_cli;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  nothing found or differences (get, diff, import --dry-run with changes), or cancelled
  2  usage: bad flags, unknown profile, no region, --yes needed
  3  conflict: a true conflict, or the mappings kept changing after retries
  4  invalid input: a mapping file, an entry or an ARN that does not validate (or routes IAM cannot separate)
  5  AWS or service error (the table not found included)";

/// scopegate: an API Gateway Lambda authorizer for third-party OAuth 2.0 / OIDC tokens.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    /// Log at debug level on stderr, the AWS SDK's error details included (RUST_LOG
    /// overrides).
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run API Gateway locally in front of the authorizer, with a dev identity provider.
    Local {
        /// Mappings file (default: the embedded seed-data/mappings.json).
        #[arg(long)]
        mappings: Option<PathBuf>,
        /// Gateway port on 127.0.0.1.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Dev identity provider port on 127.0.0.1.
        #[arg(long, default_value_t = 8081)]
        idp_port: u16,
        /// The API to serve (arn:aws:execute-api:REGION:ACCOUNT:APIID); default the first in the mappings.
        #[arg(long)]
        api: Option<String>,
        /// The stage to serve; default the first stage of that API in the mappings.
        #[arg(long)]
        stage: Option<String>,
        /// Seconds the authorizer's answer is cached per token (0 to 3600; 0 = no cache).
        #[arg(long, default_value_t = 300)]
        authorizer_ttl: u32,
        /// The authorizer's type, as template.yaml's AuthorizerType: token (the seed's), or
        /// request, which passes the request's method, path and headers (what DPoP needs;
        /// answers are then never cached).
        #[arg(long, value_parser = ["token", "request"], default_value = "token")]
        authorizer_type: String,
        /// Token source header.
        #[arg(long, default_value = "Authorization")]
        token_header: String,
        /// Token validation regex (default: the seed's JWT bearer regex; "" for none).
        #[arg(long)]
        token_regex: Option<String>,
        /// Serve the mappings of this DynamoDB table (edits show within
        /// SCOPEGATE_MAPPING_TTL_SECONDS) instead of a file.
        #[arg(long, conflicts_with = "mappings")]
        table: Option<String>,
        /// DynamoDB endpoint for --table (an emulator such as LocalStack or moto).
        #[arg(long, requires = "table")]
        endpoint_url: Option<String>,
        /// AWS region for --table.
        #[arg(long, requires = "table")]
        region: Option<String>,
        /// AWS profile for --table.
        #[arg(long, requires = "table")]
        profile: Option<String>,
    },
    /// Print a fresh access token from the dev identity provider of `scopegate local`.
    Token {
        /// Space-separated scopes to ask for.
        #[arg(long, default_value = "")]
        scope: String,
        /// A claim to issue besides: NAME=VALUE for a string (tenant_id=acme), NAME:=JSON for
        /// anything else (realm_access:='{"roles":["admin"]}'). A NAME given more than once
        /// is an array of its values (--claim groups=a --claim groups=b).
        #[arg(long, value_name = "NAME=VALUE")]
        claim: Vec<String>,
        /// A DPoP-bound token (RFC 9449): bound to the EC P-256 key in this PEM file, as
        /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client.pem`
        /// writes it. Send it as `Authorization: DPoP <token>` with a proof from
        /// `scopegate dpop-proof`.
        #[arg(long, value_name = "KEYFILE")]
        dpop: Option<std::path::PathBuf>,
        /// The dev identity provider's base URL.
        #[arg(
            long,
            env = "SCOPEGATE_LOCAL_IDP",
            default_value = "http://127.0.0.1:8081"
        )]
        idp: String,
    },
    /// Print a DPoP proof (RFC 9449) for one request, signed with the key in KEYFILE: the
    /// value of the `DPoP` header. A proof is good once, for 60 s.
    DpopProof {
        /// The client's EC P-256 private key (PKCS#8 PEM).
        #[arg(long, value_name = "KEYFILE")]
        key: std::path::PathBuf,
        /// The request's method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The URL the request goes to (its query and fragment are left out of the proof).
        #[arg(long)]
        url: String,
        /// The access token the request carries (the proof's `ath`).
        #[arg(long)]
        token: Option<String>,
    },
    /// Answer authorizer events offline: one JSON event or an NDJSON stream in, one JSON line
    /// per event out, exactly what the Lambda returns. Reads the same SCOPEGATE_* settings
    /// (with SCOPEGATE_MAPPINGS_TABLE, the mappings come from DynamoDB, as in the Lambda).
    Invoke {
        /// Event file, or - for standard input.
        #[arg(long, default_value = "-")]
        event: String,
    },
    #[command(flatten)]
    Store(store_cli::StoreCommand),
}

/// `scopegate token --claim`s as a JSON object: `NAME=VALUE` a string, `NAME:=JSON` any
/// value; a name given more than once holds the array of its values.
fn token_claims(args: &[String]) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut given: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for arg in args {
        let (name, value) = match (arg.split_once(":="), arg.split_once('=')) {
            (Some((n, json)), Some((m, _))) if n.len() < m.len() => (
                n,
                serde_json::from_str(json)
                    .with_context(|| format!("--claim {n}:=...: not a JSON value"))?,
            ),
            (_, Some((n, v))) => (n, serde_json::Value::from(v)),
            _ => anyhow::bail!("--claim takes NAME=VALUE or NAME:=JSON"),
        };
        match given.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) => values.push(value),
            None => given.push((name.to_owned(), vec![value])),
        }
    }
    Ok(given
        .into_iter()
        .map(|(name, mut values)| {
            let value = if values.len() == 1 {
                values.remove(0)
            } else {
                serde_json::Value::Array(values)
            };
            (name, value)
        })
        .collect())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The operator's commands log for people; the others as the Lambda does, `invoke`'s
    // decision lines buffered (one event after another, a write each cost as much as the
    // event's path past its signature check) until `logs` is dropped.
    let mut logs = None;
    match &cli.command {
        Command::Store(_) => scopegate::logging::init_cli(cli.debug),
        Command::Invoke { .. } => logs = Some(scopegate::logging::init_buffered()),
        _ => scopegate::logging::init(),
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // The buffered log lines first, then the error that ended the run.
    drop(logs);
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            for line in scopegate::error_text::one_line(e.as_ref()).lines() {
                eprintln!("error: {line}");
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The exit code of a failure: its [`ErrorKind`], else 5.
fn exit_code(e: &anyhow::Error) -> u8 {
    use scopegate::admin::migrate::MigrationError;
    use scopegate::admin::{AdminError, ErrorKind};
    use scopegate::mapping::file::FileError;
    use scopegate::mapping::store::StoreError;
    for cause in e.chain() {
        let kind = if let Some(a) = cause.downcast_ref::<AdminError>() {
            a.kind()
        } else if let Some(s) = cause.downcast_ref::<StoreError>() {
            ErrorKind::of_store(s)
        } else if cause.is::<FileError>()
            || cause.is::<MigrationError>()
            || cause.is::<scopegate::mapping::MappingError>()
        {
            ErrorKind::Invalid
        } else {
            continue;
        };
        return kind.exit_code();
    }
    ErrorKind::Service.exit_code()
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Store(command) => {
            let target = command.store().map(store_cli::StoreArgs::target);
            let result = store_cli::run(command).await;
            match (result, target) {
                (Err(mut e), Some(target)) => {
                    store_cli::locate(&mut e, &target).await;
                    Err(e)
                }
                (result, _) => result,
            }
        }
        Command::Invoke { event } => {
            let config = Config::from_env().context("configuration")?;
            let mappings = ConfiguredMappings::from_config(
                &config,
                &AwsOptions::for_authorizer(),
                Arc::new(SystemClock),
            )
            .await?;
            let authorizer = Authorizer::new(&config, mappings, Arc::new(SystemClock))?;
            let authorizer = match scopegate::replay::configured(
                &config,
                &AwsOptions::for_authorizer(),
            )
            .await?
            {
                Some(store) => authorizer.with_replay_store(store),
                None => authorizer,
            };
            authorizer.hydrate().await;
            authorizer.mappings().prime().await;
            let input: Box<dyn Read> = if event == "-" {
                Box::new(io::stdin().lock())
            } else {
                Box::new(std::fs::File::open(&event).with_context(|| format!("opening {event}"))?)
            };
            admin::invoke::run(&authorizer, input, io::stdout().lock()).await?;
            Ok(0)
        }
        Command::Token {
            scope,
            claim,
            dpop,
            idp,
        } => {
            let endpoint = format!("{}/token", idp.trim_end_matches('/'));
            let claims = token_claims(&claim)?;
            let token = match dpop {
                None => scopegate::local::fetch_token_with(&endpoint, &scope, &claims).await,
                Some(file) => {
                    let key = scopegate::local::dpop::DpopKey::from_file(&file)?;
                    let now = scopegate::clock::Clock::now(&SystemClock);
                    let proof = key.proof("POST", &endpoint, None, now)?;
                    scopegate::local::fetch_dpop_token(&endpoint, &scope, &claims, &proof).await
                }
            }
            .with_context(|| format!("is `scopegate local` running with its provider at {idp}?"))?;
            println!("{token}");
            Ok(0)
        }
        Command::DpopProof {
            key,
            method,
            url,
            token,
        } => {
            let key = scopegate::local::dpop::DpopKey::from_file(&key)?;
            let now = scopegate::clock::Clock::now(&SystemClock);
            println!("{}", key.proof(&method, &url, token.as_deref(), now)?);
            Ok(0)
        }
        Command::Local {
            mappings,
            port,
            idp_port,
            api,
            stage,
            authorizer_ttl,
            authorizer_type,
            token_header,
            token_regex,
            table,
            endpoint_url,
            region,
            profile,
        } => {
            let idp = tokio::net::TcpListener::bind(("127.0.0.1", idp_port))
                .await
                .with_context(|| {
                    format!(
                        "binding the identity provider to 127.0.0.1:{idp_port} (use --idp-port)"
                    )
                })?;
            let gateway = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .with_context(|| format!("binding the gateway to 127.0.0.1:{port} (use --port)"))?;
            let opts = admin::local::LocalOptions {
                mappings,
                api,
                stage,
                authorizer_ttl,
                request_authorizer: authorizer_type == "request",
                token_header,
                token_regex,
                table,
                aws: AwsOptions {
                    region,
                    profile,
                    endpoint_url,
                    ..AwsOptions::for_authorizer()
                },
            };
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("\nshutting down");
            };
            admin::local::run(opts, idp, gateway, shutdown, |r| println!("{}", r.banner)).await?;
            Ok(0)
        }
    }
}
