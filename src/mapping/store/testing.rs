//! Helpers for the store's unit tests.

use crate::mapping::entry::Mapping;

/// An entry of the test API's `dev` stage: `GET /<resource>` for `scope`.
pub(crate) fn m(scope: &str, resource: &str, effect: &str) -> Mapping {
    serde_json::from_str(&format!(
        r#"{{"api":"arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5","stage":"dev","method":"GET","resource":"{resource}","scope":"{scope}","effect":"{effect}"}}"#
    ))
    .expect("a valid test entry")
}
