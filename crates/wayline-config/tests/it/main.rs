//! Integration tests for wayline-config: the fixture corpus, bad files, evaluation, no-panic.

mod bad;
mod eval;
mod fixtures;
mod props;

use std::path::PathBuf;

pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
