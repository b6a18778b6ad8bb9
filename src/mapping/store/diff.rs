//! The difference between two sets of entries, by target: what an import or a merge plans,
//! what the operator confirms, and what the history records.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::layout::entry_key;
use super::records::{Edit, MAX_HISTORY_CHANGES};
use crate::mapping::api_kinds::ApiKinds;
use crate::mapping::entry::Mapping;
use crate::policy::{ApiArn, ApiKind};

/// A change of one API's declared kind ([`ApiKinds`]): `None` is undeclared (REST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindChange {
    /// The API.
    pub api: ApiArn,
    /// Its declaration before.
    pub before: Option<ApiKind>,
    /// Its declaration after.
    pub after: Option<ApiKind>,
}

impl std::fmt::Display for KindChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |k: Option<ApiKind>| k.map_or("undeclared (rest)", ApiKind::as_str);
        write!(
            f,
            "kind {}: {} -> {}",
            self.api,
            name(self.before),
            name(self.after)
        )
    }
}

/// The difference between two sets of entries, by target, and between their API kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// Entries only in the new set.
    pub added: Vec<Mapping>,
    /// Entries only in the old set.
    pub removed: Vec<Mapping>,
    /// Targets whose effect changes: (old, new).
    pub changed: Vec<(Mapping, Mapping)>,
    /// Entries in both, unchanged.
    pub unchanged: usize,
    /// The API kinds declared otherwise afterwards.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<KindChange>,
}

impl Diff {
    /// `old` -> `new`, matched by [`entry_key`].
    pub fn between(old: &[Mapping], new: &[Mapping]) -> Diff {
        let old_by_key: HashMap<String, &Mapping> = old.iter().map(|m| (entry_key(m), m)).collect();
        let mut seen = HashSet::with_capacity(new.len());
        let mut diff = Diff::default();
        for m in new {
            let key = entry_key(m);
            match old_by_key.get(&key) {
                Some(o) if *o == m => diff.unchanged += 1,
                Some(o) => diff.changed.push(((*o).clone(), m.clone())),
                None => diff.added.push(m.clone()),
            }
            seen.insert(key);
        }
        for m in old {
            if !seen.contains(&entry_key(m)) {
                diff.removed.push(m.clone());
            }
        }
        diff
    }

    /// This diff with the change of API kinds from `before` to `after`.
    #[must_use]
    pub fn with_kinds(mut self, before: &ApiKinds, after: &ApiKinds) -> Diff {
        self.kinds = after
            .changes_from(before)
            .into_iter()
            .map(|(api, before, after)| KindChange {
                api: api.clone(),
                before,
                after,
            })
            .collect();
        self
    }

    /// Whether both make the same changes (the count of entries left alone may differ: an
    /// entry someone else added meanwhile does not change a merge's plan).
    pub fn same_changes(&self, other: &Diff) -> bool {
        self.added == other.added
            && self.removed == other.removed
            && self.changed == other.changed
            && self.kinds == other.kinds
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.kinds.is_empty()
    }

    /// The edits that apply it to the old set, one per target (a changed effect is one
    /// [`Edit::Change`], so no transaction touches an item twice).
    pub fn edits(&self) -> Vec<Edit> {
        let mut out = Vec::with_capacity(self.edit_count());
        out.extend(self.removed.iter().cloned().map(Edit::Remove));
        out.extend(self.changed.iter().map(|(old, new)| Edit::Change {
            old: old.clone(),
            new: new.clone(),
        }));
        out.extend(self.added.iter().cloned().map(Edit::Add));
        out
    }

    /// Number of edits ([`edits`](Diff::edits)) it takes: one per target.
    pub fn edit_count(&self) -> usize {
        self.added.len() + self.removed.len() + self.changed.len()
    }

    /// `+3 -1 ~2 (=10 unchanged)`, and `, 1 API kind` when kinds change.
    pub fn summary(&self) -> String {
        let kinds = match self.kinds.len() {
            0 => String::new(),
            1 => ", 1 API kind".to_owned(),
            n => format!(", {n} API kinds"),
        };
        format!(
            "+{} -{} ~{} (={} unchanged){kinds}",
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.unchanged
        )
    }

    /// The kind changes, then the changed entries, as text, for the history (at most
    /// [`MAX_HISTORY_CHANGES`]).
    pub fn lines(&self) -> Vec<String> {
        self.kinds
            .iter()
            .map(ToString::to_string)
            .chain(self.edits().iter().map(ToString::to_string))
            .take(MAX_HISTORY_CHANGES)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::store::testing::m;

    #[test]
    fn diffs_by_target() {
        let old = vec![
            m("a", "x", "Allow"),
            m("b", "y", "Allow"),
            m("c", "z", "Allow"),
        ];
        let new = vec![
            m("a", "x", "Allow"),
            m("b", "y", "Deny"),
            m("d", "w", "Allow"),
        ];
        let d = Diff::between(&old, &new);
        assert_eq!(d.added, vec![m("d", "w", "Allow")]);
        assert_eq!(d.removed, vec![m("c", "z", "Allow")]);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.unchanged, 1);
        // One edit per target: a changed effect is one write of its item, never a remove and
        // an add of the same item (DynamoDB refuses a transaction that touches one item twice).
        assert_eq!(d.edit_count(), 3);
        let edits = d.edits();
        assert_eq!(edits.len(), 3);
        let keys: std::collections::BTreeSet<String> =
            edits.iter().map(|e| entry_key(e.mapping())).collect();
        assert_eq!(keys.len(), 3, "no item twice: {edits:?}");
        assert!(edits.contains(&Edit::Change {
            old: m("b", "y", "Allow"),
            new: m("b", "y", "Deny")
        }));
        assert_eq!(d.summary(), "+1 -1 ~1 (=1 unchanged)");
        assert!(Diff::between(&old, &old).is_empty());
        let mut more = new.clone();
        more.push(m("e", "v", "Allow"));
        let grown = Diff::between(&[old.clone(), vec![m("e", "v", "Allow")]].concat(), &more);
        assert!(
            grown.same_changes(&d) && grown != d,
            "only the unchanged count differs"
        );
    }
}
