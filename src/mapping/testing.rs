//! Helpers for unit tests across the crate: one way to write a mapping entry.

use super::entry::Mapping;

/// The API every test entry belongs to.
pub(crate) const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

/// An entry of [`API`]'s `dev` stage.
pub(crate) fn entry(scope: &str, method: &str, resource: &str, effect: &str) -> Mapping {
    serde_json::from_str(&format!(
        r#"{{"api":"{API}","stage":"dev","method":"{method}","resource":"{resource}","scope":"{scope}","effect":"{effect}"}}"#
    ))
    .expect("a valid test entry")
}
