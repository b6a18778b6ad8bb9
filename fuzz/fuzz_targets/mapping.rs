//! Mapping documents (files, the S3 snapshot, the seed), single entries and DynamoDB entry
//! items, on arbitrary bytes: no panic, and whatever parses round-trips and indexes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::mapping::store::decode_entry;
use scopegate::mapping::{file, Mapping, Snapshot};
use scopegate::policy::ApiKind;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = file::parse_document(data, "fuzz") {
        for m in &doc.mappings {
            let json = serde_json::to_string(m).expect("an entry serializes");
            let back: Mapping = serde_json::from_str(&json).expect("an entry reads back");
            assert_eq!(&back, m);
            for kind in [ApiKind::Rest, ApiKind::Http] {
                for r in m.policy_resources("dev", kind) {
                    assert!(r.starts_with(m.api.as_str()));
                }
            }
        }
        let snapshot = Snapshot::from_document(doc);
        let scopes: Vec<&str> = snapshot.scopes().collect();
        if let Some(first) = snapshot.entries().first() {
            let _ = snapshot.policy_for(scopes.iter().copied(), first.api.as_str(), "dev");
        }
    }
    let _ = serde_json::from_slice::<Mapping>(data);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(item) = serde_dynamo::aws_sdk_dynamodb_1::to_item(value) {
            if let Ok(m) = decode_entry(item, "g1", 8) {
                let _ = m.resource_arn();
            }
        }
    }
});
