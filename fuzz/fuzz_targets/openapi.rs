//! The OpenAPI reader: arbitrary text (YAML or JSON, within the size bound) read as an OpenAPI
//! or Swagger document and mapped onto an API and stage. It must never panic, and whatever it
//! maps must be what the mappings accept: route entries only, each one an Allow, and each
//! round-tripping through the mappings file format as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::admin::from_openapi::{derive, ReadAs, ScopeLists};
use scopegate::admin::openapi::read;
use scopegate::mapping::file;
use scopegate::mapping::{Mapping, Stage};
use scopegate::policy::{ApiArn, ApiKind, Effect};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = read(text) else {
        return;
    };
    let api = ApiArn::parse("arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5").unwrap();
    let stage = Stage::new("dev").unwrap();
    // Both readings of a requirement listing several scopes, chosen by the input.
    let lists = if data.len().is_multiple_of(2) {
        ScopeLists::All
    } else {
        ScopeLists::Any
    };
    let kind = match data.first().map(|b| b % 3) {
        Some(0) => Some(ApiKind::Rest),
        Some(1) => Some(ApiKind::Http),
        _ => None,
    };
    let read = ReadAs {
        scope_lists: lists,
        kind,
    };
    let Ok(derived) = derive(&doc, &api, &stage, read) else {
        return;
    };
    for m in &derived.entries {
        assert!(m.resource.is_route(), "{m}");
        assert_eq!(m.effect, Effect::Allow, "{m}");
        if lists == ScopeLists::Any {
            assert!(m.scopes.scopes().len() <= 1, "{m}");
        }
    }
    let bytes = serde_json::to_vec(&derived.entries).unwrap();
    if let Ok(back) = file::parse(&bytes, "fuzz") {
        let back: Vec<Mapping> = back;
        assert_eq!(back, derived.entries);
    }
});
