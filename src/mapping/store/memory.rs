//! An in-memory store and snapshot with the DynamoDB adapter's semantics (conditional
//! writes on the version record, generations, history), for unit tests of the logic above
//! the store: the admin commands' retries, diffs, imports and publishing.
//!
//! A test makes races happen on purpose: [`MemoryStore::interfere`] queues a change by
//! "another writer" that lands between the next read and the next commit, exactly where a
//! real one would make the commit's condition fail.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::diff::Diff;
use super::error::{Fault, StoreError};
use super::layout::{entry_key, new_generation};
use super::records::{
    ChangeNote, Edit, Head, HistoryRecord, Loaded, Progress, Published, SnapshotDigest,
};
use super::seams::{MappingWriter, SnapshotPublisher};
use crate::mapping::api_kinds::ApiKinds;
use crate::mapping::entry::Mapping;

/// What the table holds.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) head: Head,
    /// Generation id -> entries by entry key.
    pub(crate) generations: HashMap<String, BTreeMap<String, Mapping>>,
    pub(crate) history: Vec<HistoryRecord>,
}

impl State {
    /// Another writer's committed change: `edit` applied to the current generation, the
    /// version bumped.
    pub(crate) fn commit_other(&mut self, edit: Edit) {
        let generation = self
            .generations
            .get_mut(&self.head.generation)
            .expect("current");
        let m = edit.mapping().clone();
        match edit {
            Edit::Add(_) | Edit::Change { .. } => generation.insert(entry_key(&m), m),
            Edit::Remove(_) => generation.remove(&entry_key(&m)),
        };
        self.head.entries = generation.len() as u64;
        self.bump("other", "someone else's change");
    }

    /// The current entries, in the adapter's order.
    pub(crate) fn current(&self) -> Vec<Mapping> {
        let mut out: Vec<Mapping> = self.generations[&self.head.generation]
            .values()
            .cloned()
            .collect();
        out.sort();
        out
    }

    fn bump(&mut self, actor: &str, summary: &str) {
        self.head.version += 1;
        self.history.push(HistoryRecord {
            version: self.head.version,
            at: String::new(),
            actor: actor.to_owned(),
            action: "test".to_owned(),
            summary: summary.to_owned(),
            changes: Vec::new(),
        });
    }

    fn check(&self, read: &Head) -> Result<(), StoreError> {
        if self.head.version == read.version && self.head.generation == read.generation {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                read: read.version,
                found: Some(self.head.version),
            })
        }
    }
}

type Interference = Box<dyn FnOnce(&mut State) + Send>;

/// The in-memory store. Counts its write calls by name.
pub(crate) struct MemoryStore {
    state: Mutex<State>,
    before_commit: Mutex<VecDeque<Interference>>,
    calls: Mutex<BTreeMap<&'static str, usize>>,
}

impl MemoryStore {
    /// A store at version 0 holding `entries`.
    pub(crate) fn with(entries: &[Mapping]) -> MemoryStore {
        let generation = new_generation(0);
        let set: BTreeMap<String, Mapping> =
            entries.iter().map(|m| (entry_key(m), m.clone())).collect();
        MemoryStore {
            state: Mutex::new(State {
                head: Head {
                    version: 0,
                    generation: generation.clone(),
                    previous: None,
                    shards: 8,
                    entries: set.len() as u64,
                    updated_at: String::new(),
                    updated_by: String::new(),
                    snapshot: None,
                    apis: ApiKinds::new(),
                },
                generations: HashMap::from([(generation, set)]),
                history: Vec::new(),
            }),
            before_commit: Mutex::new(VecDeque::new()),
            calls: Mutex::new(BTreeMap::new()),
        }
    }

    /// Queues another writer's change, landing just before the next commit.
    pub(crate) fn interfere(&self, f: impl FnOnce(&mut State) + Send + 'static) {
        self.before_commit.lock().unwrap().push_back(Box::new(f));
    }

    /// Reads the state.
    pub(crate) fn state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().unwrap())
    }

    /// How often `name` (a [`MappingWriter`] write method) was called.
    pub(crate) fn calls(&self, name: &str) -> usize {
        self.calls.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    fn count(&self, name: &'static str) {
        *self.calls.lock().unwrap().entry(name).or_default() += 1;
    }

    /// Runs the next queued interference, then `commit` on the state.
    fn commit<T>(&self, commit: impl FnOnce(&mut State) -> T) -> T {
        let next = self.before_commit.lock().unwrap().pop_front();
        let mut state = self.state.lock().unwrap();
        if let Some(other) = next {
            other(&mut state);
        }
        commit(&mut state)
    }
}

impl MappingWriter for MemoryStore {
    async fn read_head(&self) -> Result<Head, StoreError> {
        Ok(self.state(|s| s.head.clone()))
    }

    async fn load_current_with(&self, progress: Progress<'_>) -> Result<Loaded, StoreError> {
        let loaded = self.state(|s| Loaded {
            head: s.head.clone(),
            entries: s.current(),
        });
        progress(loaded.entries.len(), loaded.entries.len());
        Ok(loaded)
    }

    async fn get(&self, target: &Mapping) -> Result<Option<Mapping>, StoreError> {
        Ok(self.state(|s| {
            s.generations[&s.head.generation]
                .get(&entry_key(target))
                .cloned()
        }))
    }

    async fn history(&self, limit: usize) -> Result<Vec<HistoryRecord>, StoreError> {
        Ok(self.state(|s| s.history.iter().rev().take(limit).cloned().collect()))
    }

    async fn apply(
        &self,
        read: &Head,
        edits: &[Edit],
        apis: &ApiKinds,
        note: &ChangeNote,
    ) -> Result<Head, StoreError> {
        self.count("apply");
        self.commit(|s| {
            s.check(read)?;
            let current = s.generations.get_mut(&s.head.generation).expect("current");
            // All or nothing, as a transaction; and like DynamoDB, no item twice in one.
            let mut next = current.clone();
            let mut touched = std::collections::BTreeSet::new();
            for edit in edits {
                let key = entry_key(edit.mapping());
                if !touched.insert(key.clone()) {
                    return Err(StoreError::service(
                        "TransactWriteItems",
                        Fault::Answered {
                            code: "ValidationException".into(),
                            message: Some(
                                "Transaction request cannot include multiple operations on one item"
                                    .into(),
                            ),
                            request_id: None,
                        },
                    ));
                }
                match edit {
                    Edit::Add(m) if next.contains_key(&key) => {
                        return Err(StoreError::Exists {
                            entry: m.to_string(),
                        })
                    }
                    Edit::Add(m) => next.insert(key, m.clone()),
                    Edit::Remove(m) => {
                        Some(next.remove(&key).ok_or_else(|| StoreError::NotFound {
                            entry: m.to_string(),
                        })?)
                    }
                    Edit::Change { old, new } => {
                        if next.get(&key) != Some(old) {
                            return Err(StoreError::NotFound {
                                entry: old.to_string(),
                            });
                        }
                        next.insert(key, new.clone())
                    }
                };
            }
            *current = next;
            s.head.entries = current.len() as u64;
            s.head.apis = apis.clone();
            s.bump(&note.actor, &note.summary);
            Ok(s.head.clone())
        })
    }

    async fn write_generation(
        &self,
        read: &Head,
        entries: &[Mapping],
        _actor: &str,
        progress: Progress<'_>,
    ) -> Result<String, StoreError> {
        self.count("write_generation");
        let generation = new_generation(read.version + 1);
        let set = entries.iter().map(|m| (entry_key(m), m.clone())).collect();
        self.state
            .lock()
            .unwrap()
            .generations
            .insert(generation.clone(), set);
        progress(entries.len(), entries.len());
        Ok(generation)
    }

    async fn patch_generation(
        &self,
        generation: &str,
        _shards: u32,
        diff: &Diff,
        _actor: &str,
        _progress: Progress<'_>,
    ) -> Result<(), StoreError> {
        self.count("patch_generation");
        let mut state = self.state.lock().unwrap();
        let set = state.generations.get_mut(generation).ok_or_else(|| {
            StoreError::service("BatchWriteItem", Fault::GaveUp("no such generation"))
        })?;
        for m in diff
            .added
            .iter()
            .chain(diff.changed.iter().map(|(_, new)| new))
        {
            set.insert(entry_key(m), m.clone());
        }
        for m in &diff.removed {
            set.remove(&entry_key(m));
        }
        Ok(())
    }

    async fn switch_generation(
        &self,
        read: &Head,
        generation: &str,
        entries: usize,
        apis: &ApiKinds,
        note: &ChangeNote,
    ) -> Result<Head, StoreError> {
        self.count("switch_generation");
        self.commit(|s| {
            s.check(read)?;
            if let Some(old) = &read.previous {
                s.generations.remove(old);
            }
            s.head.previous = Some(s.head.generation.clone());
            s.head.generation = generation.to_owned();
            s.head.entries = entries as u64;
            s.head.apis = apis.clone();
            s.bump(&note.actor, &note.summary);
            Ok(s.head.clone())
        })
    }

    async fn record_snapshot(&self, digest: &SnapshotDigest) -> Result<bool, StoreError> {
        self.count("record_snapshot");
        Ok(self.commit(|state| {
            if state.head.version != digest.version {
                return false;
            }
            state.head.snapshot = Some(digest.clone());
            true
        }))
    }

    async fn delete_generation_best_effort(&self, generation: &str, _shards: u32) {
        self.count("delete_generation");
        self.state.lock().unwrap().generations.remove(generation);
    }
}

/// An in-memory snapshot bucket: records what was published, or fails when told to.
#[derive(Debug, Default)]
pub(crate) struct MemorySnapshots {
    pub(crate) published: Mutex<Vec<(u64, usize)>>,
    pub(crate) down: AtomicBool,
}

impl SnapshotPublisher for MemorySnapshots {
    async fn publish(
        &self,
        version: u64,
        entries: &[Mapping],
        _apis: &ApiKinds,
    ) -> Result<Published, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::service(
                "PutObject",
                Fault::Answered {
                    code: "AccessDenied".into(),
                    message: Some("Access Denied".into()),
                    request_id: None,
                },
            ));
        }
        self.published
            .lock()
            .unwrap()
            .push((version, entries.len()));
        let body = serde_json::to_vec(entries).expect("entries serialize");
        Ok(Published::Written {
            version,
            sha256: super::s3::sha256_hex(&body),
        })
    }
}
