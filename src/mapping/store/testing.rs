//! Helpers for the store's unit tests.

use crate::mapping::entry::Mapping;
use crate::mapping::testing::entry;

/// `GET /<resource>` for `scope`, on the test API's `dev` stage.
pub(crate) fn m(scope: &str, resource: &str, effect: &str) -> Mapping {
    entry(scope, "GET", resource, effect)
}
