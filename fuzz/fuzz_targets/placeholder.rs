//! `${claim:NAME}` segments and bound values (issue 21 §2) on arbitrary text: no panic, and
//! whatever is accepted keeps the rules a policy relies on. The input is a resource path,
//! a NUL, then a claim's value as JSON.
//! - An accepted resource is its own canonical form, each placeholder names a valid claim,
//!   and filling it writes exactly the value into exactly that segment.
//! - An accepted bound value is one unreserved segment: 1 to 128 of `A-Z a-z 0-9 . _ ~ -`,
//!   not `.` or `..` (so no IAM wildcard, no `/`, no escape).
//! - A binding key reads back as the name and the value's reading.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::claim::{binding_key, bound_value, read_binding_key, ClaimName};
use scopegate::mapping::{placeholder, ResourcePath};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (resource, value) = text.split_once('\0').unwrap_or((text, "\"acme\""));
    let value: Option<Value> = serde_json::from_str(value).ok();
    let bound = bound_value(value.as_ref());
    if let Ok(v) = bound {
        assert!((1..=128).contains(&v.len()), "{v:?}");
        assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)),
            "{v:?}"
        );
        assert!(v != "." && v != "..");
    }
    let Ok(path) = ResourcePath::new(resource) else {
        return;
    };
    assert_eq!(ResourcePath::new(path.as_str()).as_ref(), Ok(&path));
    let segments: Vec<&str> = path.segments().collect();
    for (k, name) in path.bound_claims() {
        let claim = ClaimName::new(name).expect("a placeholder names a valid claim");
        assert_eq!(placeholder(segments[k]), Some(name));
        assert!(!name.contains(['{', '}', '*', '?']), "{name:?}");
        let key = binding_key(&claim, value.as_ref());
        assert_eq!(read_binding_key(&key), Some((name, bound)));
    }
    let Ok(v) = bound else {
        return;
    };
    let filled = path.bound_pattern(|_| Some(v));
    let wide = path.policy_pattern();
    let filled: Vec<&str> = filled.split('/').collect();
    let wide: Vec<&str> = wide.split('/').collect();
    if !path.is_root() {
        assert_eq!(filled.len(), segments.len(), "{path}");
        assert_eq!(wide.len(), segments.len(), "{path}");
    }
    for (k, seg) in segments.iter().enumerate() {
        if placeholder(seg).is_some() {
            assert_eq!(filled[k], v);
            assert_eq!(wide[k], "*");
        } else {
            assert_eq!(filled[k], wide[k]);
        }
    }
});
