//! Integration tests for wayline-config: the fixture corpus, bad files, evaluation, no-panic.

// Fixture names are ours and lower-case.
#![allow(clippy::case_sensitive_file_extension_comparisons)]

mod bad;
mod eval;
mod fixtures;
mod large;
mod props;
mod waypoint;

use std::path::PathBuf;

pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
