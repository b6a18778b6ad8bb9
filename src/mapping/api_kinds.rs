//! [`ApiKinds`]: which APIs of a mapping set are HTTP APIs and which are REST APIs.
//!
//! The kind decides rules that the entries alone cannot: a REST API answers `x/` as `x`
//! (so a route's Allow carries its slash twin), an HTTP API routes `x/` apart (so a template
//! is kept off `x/{id}/` by a Deny), `ANY` routes are beaten by a method's own route, and
//! `$default` is an HTTP API's catch-all. Reading the kind from the event would let the
//! caller's payload choose the rules: an HTTP API may call its authorizer with payload 1.0,
//! which looks like a REST event. So the kind is declared with the mappings, once per API,
//! and an event that cannot come from an API of its declared kind is refused (see
//! `Authorizer`).
//!
//! An API declared nowhere is a REST API, as every entry written before declarations
//! existed was read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::{ApiArn, ApiKind};

/// The declared kind of each API of a mapping set; an API not declared is REST. Written in
/// a mapping document as `"apis": {"arn:aws:execute-api:REGION:ACCOUNT:ID": "http"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKinds(BTreeMap<ApiArn, ApiKind>);

impl ApiKinds {
    /// No declarations: every API is REST.
    pub fn new() -> ApiKinds {
        ApiKinds::default()
    }

    /// The kind of `api` (`arn:aws:execute-api:REGION:ACCOUNT:ID`): as declared, else REST.
    pub fn kind_of(&self, api: &str) -> ApiKind {
        self.0.get(api).copied().unwrap_or(ApiKind::Rest)
    }

    /// Declares `api` to be of `kind`, returning the kind it was declared before, if any.
    pub fn declare(&mut self, api: ApiArn, kind: ApiKind) -> Option<ApiKind> {
        self.0.insert(api, kind)
    }

    /// `api`'s declaration, if it has one.
    pub fn declared(&self, api: &str) -> Option<ApiKind> {
        self.0.get(api).copied()
    }

    /// Every declaration, by API.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&ApiArn, ApiKind)> + '_ {
        self.0.iter().map(|(a, &k)| (a, k))
    }

    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// These declarations with `other`'s over them: what a merging import leaves.
    pub fn merged(&self, other: &ApiKinds) -> ApiKinds {
        let mut out = self.clone();
        out.0.extend(other.0.iter().map(|(a, &k)| (a.clone(), k)));
        out
    }

    /// What differs from `before` to `self`, as `(api, before, after)`: for plans and the
    /// history.
    pub fn changes_from<'a>(
        &'a self,
        before: &'a ApiKinds,
    ) -> Vec<(&'a ApiArn, Option<ApiKind>, Option<ApiKind>)> {
        let mut out: Vec<_> = before
            .0
            .iter()
            .filter(|(a, _)| !self.0.contains_key(a.as_str()))
            .map(|(a, &k)| (a, Some(k), None))
            .collect();
        out.extend(
            self.0
                .iter()
                .filter(|(a, &k)| before.declared(a.as_str()) != Some(k))
                .map(|(a, &k)| (a, before.declared(a.as_str()), Some(k))),
        );
        out.sort_by(|x, y| x.0.cmp(y.0));
        out
    }
}

impl FromIterator<(ApiArn, ApiKind)> for ApiKinds {
    fn from_iter<I: IntoIterator<Item = (ApiArn, ApiKind)>>(iter: I) -> ApiKinds {
        ApiKinds(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";
    const B: &str = "arn:aws:execute-api:us-east-1:123456789012:b1b2c3d4e5";

    fn arn(s: &str) -> ApiArn {
        ApiArn::parse(s).unwrap()
    }

    #[test]
    fn an_api_declared_nowhere_is_rest() {
        let mut k = ApiKinds::new();
        assert_eq!(k.kind_of(A), ApiKind::Rest);
        assert_eq!(k.declare(arn(A), ApiKind::Http), None);
        assert_eq!(k.kind_of(A), ApiKind::Http);
        assert_eq!(k.kind_of(B), ApiKind::Rest);
        assert_eq!(k.declared(B), None);
    }

    #[test]
    fn reads_and_writes_the_document_form_and_refuses_bad_arns_and_kinds() {
        let k: ApiKinds =
            serde_json::from_str(&format!(r#"{{"{A}":"http","{B}":"rest"}}"#)).unwrap();
        assert_eq!(k.kind_of(A), ApiKind::Http);
        assert_eq!(k.declared(B), Some(ApiKind::Rest));
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            format!(r#"{{"{A}":"http","{B}":"rest"}}"#)
        );
        for bad in [
            format!(r#"{{"{A}":"HTTP"}}"#),
            format!(r#"{{"{A}":"websocket"}}"#),
            format!(r#"{{"{A}/dev":"http"}}"#),
            r#"{"orders":"http"}"#.to_owned(),
        ] {
            assert!(serde_json::from_str::<ApiKinds>(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn merges_and_diffs() {
        let before: ApiKinds = [(arn(A), ApiKind::Http), (arn(B), ApiKind::Http)]
            .into_iter()
            .collect();
        let after: ApiKinds = [(arn(B), ApiKind::Rest)].into_iter().collect();
        let merged = before.merged(&after);
        assert_eq!(merged.kind_of(A), ApiKind::Http);
        assert_eq!(merged.kind_of(B), ApiKind::Rest);
        let changes = after.changes_from(&before);
        assert_eq!(
            changes
                .iter()
                .map(|(a, b, c)| (a.as_str(), *b, *c))
                .collect::<Vec<_>>(),
            vec![
                (A, Some(ApiKind::Http), None),
                (B, Some(ApiKind::Http), Some(ApiKind::Rest))
            ]
        );
        assert!(before.changes_from(&before).is_empty());
    }
}
