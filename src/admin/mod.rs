//! The `scopegate` CLI's commands, as library functions over opened resources, so the binary
//! only parses flags and maps results to exit codes.

pub mod invoke;
pub mod local;
pub mod mappings;
pub mod migrate;
pub mod retry;
