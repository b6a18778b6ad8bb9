//! `scopegate migrate` and `scopegate seed`.
//!
//! Migrations (`migrations/*.json`, embedded in the binary) are applied in id order and
//! recorded in the table, so a second run changes nothing (see `migrations/README.md` for
//! the format). `seed` merges `seed-data/*.json` into the current set as one change.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::commands::{Admin, Changed};
use super::error::AdminError;
use crate::mapping::file::{self, FileError};
use crate::mapping::store::MigrationRecord;
use crate::mapping::store::DEFAULT_SHARDS;
use crate::mapping::Mapping;

/// The migrations shipped with this build, in order.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "0001_create_table.json",
        include_str!("../../migrations/0001_create_table.json"),
    ),
    (
        "0002_version_record.json",
        include_str!("../../migrations/0002_version_record.json"),
    ),
];

/// One step of a migration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Creates the table unless it exists.
    CreateTable {
        /// Must be `pk`.
        partition_key: String,
        /// Must be `sk`.
        sort_key: String,
        /// Must be `PAY_PER_REQUEST`.
        billing_mode: String,
    },
    /// Writes the version record unless there is one.
    InitVersion {
        /// Partitions per generation.
        #[serde(default = "default_shards")]
        shards: u32,
    },
    /// Merges entries into the current set.
    PutMappings {
        /// The entries.
        mappings: Vec<Mapping>,
    },
    /// Removes entries that are there.
    RemoveMappings {
        /// The entries (by target).
        mappings: Vec<Mapping>,
    },
}

fn default_shards() -> u32 {
    DEFAULT_SHARDS
}

/// A migration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// Its id; ordered by it.
    pub id: String,
    /// What it does.
    pub description: String,
    /// Its steps, in order.
    pub steps: Vec<Step>,
    /// FNV-1a of the file's bytes (not in the file).
    #[serde(skip)]
    pub checksum: String,
}

/// A migration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// Not readable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a migration.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Something the store cannot do.
    #[error("{path}: {reason}")]
    Unsupported {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

fn checksum(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Parses one migration file.
///
/// # Errors
/// [`MigrationError`].
pub fn parse(name: &str, bytes: &[u8]) -> Result<Migration, MigrationError> {
    let mut m: Migration =
        serde_json::from_slice(bytes).map_err(|source| MigrationError::Parse {
            path: name.to_owned(),
            source,
        })?;
    m.checksum = checksum(bytes);
    for step in &m.steps {
        if let Step::CreateTable {
            partition_key,
            sort_key,
            billing_mode,
        } = step
        {
            if partition_key != "pk" || sort_key != "sk" || billing_mode != "PAY_PER_REQUEST" {
                return Err(MigrationError::Unsupported {
                    path: name.to_owned(),
                    reason: "the store reads keys pk/sk of an on-demand table; change the store, not just the migration".into(),
                });
            }
        }
    }
    Ok(m)
}

/// The embedded migrations, in order.
///
/// # Panics
/// If an embedded migration does not parse (a test keeps them valid).
pub fn embedded() -> Vec<Migration> {
    EMBEDDED
        .iter()
        .map(|(name, text)| parse(name, text.as_bytes()).expect("embedded migrations parse"))
        .collect()
}

/// The `*.json` files in `dir`, in file-name order: the order migrations and seed files apply.
fn json_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// The migrations in `dir` (`*.json`), in file-name order.
///
/// # Errors
/// [`MigrationError`].
pub fn load_dir(dir: &Path) -> Result<Vec<Migration>, MigrationError> {
    let read_err = |source| MigrationError::Read {
        path: dir.display().to_string(),
        source,
    };
    json_files(dir)
        .map_err(read_err)?
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).map_err(|source| MigrationError::Read {
                path: p.display().to_string(),
                source,
            })?;
            parse(&p.display().to_string(), &bytes)
        })
        .collect()
}

/// What `migrate` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateReport {
    /// Whether this run created the table.
    pub created: bool,
    /// Migrations applied by this run.
    pub applied: Vec<String>,
    /// Migrations already recorded.
    pub already: Vec<String>,
    /// Recorded migrations whose file has changed since (not re-run).
    pub changed_since: Vec<String>,
}

/// Applies the migrations not yet recorded, in order, recording each.
///
/// # Errors
/// [`AdminError`] from the first step that fails; the migrations before it stay recorded.
pub async fn migrate(admin: &Admin, migrations: &[Migration]) -> Result<MigrateReport, AdminError> {
    let mut sorted: Vec<&Migration> = migrations.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    // The record lives in the table: it has to exist before anything can be recorded.
    // Creating it is idempotent, so this is also what the first migration does.
    let created = admin.store.create_table().await?;
    let recorded = admin.store.migrations().await?;
    let mut report = MigrateReport {
        created,
        ..MigrateReport::default()
    };
    for m in sorted {
        if let Some(r) = recorded.iter().find(|r| r.id == m.id) {
            if r.checksum != m.checksum {
                report.changed_since.push(m.id.clone());
            }
            report.already.push(m.id.clone());
            continue;
        }
        for step in &m.steps {
            apply_step(admin, &m.id, step).await?;
        }
        admin
            .store
            .record_migration(&MigrationRecord {
                id: m.id.clone(),
                applied_at: crate::clock::rfc3339_now(),
                actor: admin.actor.clone(),
                checksum: m.checksum.clone(),
            })
            .await?;
        report.applied.push(m.id.clone());
    }
    Ok(report)
}

async fn apply_step(admin: &Admin, id: &str, step: &Step) -> Result<(), AdminError> {
    match step {
        Step::CreateTable { .. } => {
            admin.store.create_table().await?;
        }
        Step::InitVersion { shards } => {
            admin.store.init_version(*shards, &admin.actor).await?;
        }
        Step::PutMappings { mappings } => {
            admin
                .import(
                    &format!("migrate {id}"),
                    mappings.clone(),
                    false,
                    false,
                    &|_, _| {},
                )
                .await?;
        }
        Step::RemoveMappings { mappings } => {
            let mut present = Vec::new();
            for m in mappings {
                if admin.get(m).await?.is_some() {
                    present.push(m.clone());
                }
            }
            if !present.is_empty() {
                admin.remove(present).await?;
            }
        }
    }
    Ok(())
}

/// The entries of every `*.json` file in `dir` (or of `dir` itself when it is a file), in
/// file-name order, validated together.
///
/// # Errors
/// [`FileError`] naming the file, entry and field.
pub fn seed_entries(dir: &Path) -> Result<Vec<Mapping>, AdminError> {
    seed_document(dir).map(|d| d.mappings)
}

/// The seed data at `dir` (a file, or every `*.json` file in a folder) as one document: the
/// entries of all, and the API kinds they declare.
///
/// # Errors
/// [`AdminError`] naming the file; a repeated entry across files; two files declaring one
/// API of two kinds.
pub fn seed_document(dir: &Path) -> Result<file::Document, AdminError> {
    let files: Vec<std::path::PathBuf> = if dir.is_file() {
        vec![dir.to_owned()]
    } else {
        json_files(dir).map_err(|source| FileError::Read {
            path: dir.to_owned(),
            source,
        })?
    };
    let mut entries = Vec::new();
    let mut apis = crate::mapping::ApiKinds::new();
    for f in &files {
        let doc = file::load_document(f)?;
        for (api, kind) in doc.apis.iter() {
            if apis.declare(api.clone(), kind).is_some_and(|k| k != kind) {
                return Err(AdminError::Usage(format!(
                    "{}: declares {api} {kind}, which another seed file declares otherwise",
                    f.display()
                )));
            }
        }
        entries.extend(doc.mappings);
    }
    file::check_unique(&entries, &dir.display().to_string())?;
    Ok(file::Document {
        apis,
        mappings: entries,
        ..file::Document::default()
    })
}

/// `scopegate seed`: merges the seed data into the current set (one change; none when it is
/// all there already).
///
/// # Errors
/// [`AdminError`].
pub async fn seed(admin: &Admin, dir: &Path, replace: bool) -> Result<Changed, AdminError> {
    let doc = seed_document(dir)?;
    admin
        .import_document("seed", doc, replace, false, &|_, _| {})
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_parse_in_order() {
        let all = embedded();
        assert_eq!(all.len(), EMBEDDED.len());
        for (m, (name, _)) in all.iter().zip(EMBEDDED) {
            assert_eq!(format!("{}.json", m.id), *name);
        }
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        assert!(matches!(all[0].steps[0], Step::CreateTable { .. }));
        let on_disk = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")).unwrap();
        assert_eq!(on_disk, all, "migrations/ and the embedded list agree");
    }

    #[test]
    fn bad_migrations_are_refused_with_the_file() {
        let err = parse(
            "x.json",
            br#"{"id":"x","description":"","steps":[{"op":"drop_table"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("x.json:"), "{err}");
        let err = parse(
            "y.json",
            br#"{"id":"y","description":"","steps":[{"op":"create_table","partition_key":"id","sort_key":"sk","billing_mode":"PAY_PER_REQUEST"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("pk/sk"), "{err}");
    }

    #[test]
    fn seed_data_validates() {
        let entries =
            seed_entries(&Path::new(env!("CARGO_MANIFEST_DIR")).join("seed-data")).unwrap();
        assert!(entries.len() > 10);
    }
}
