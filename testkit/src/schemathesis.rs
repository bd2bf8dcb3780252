//! An outside API fuzzer: PyPI's schemathesis (not written by this project), and
//! openapi-spec-validator beside it in the same venv (`setup_schemathesis` in
//! scripts/lib/setup.sh installs both, pinned).

use std::path::PathBuf;

/// The `schemathesis` command: `FIREGRID_SCHEMATHESIS` (scripts/test sets it). Under
/// scripts/test (`FIREGRID_TEST` set) its absence fails the test; a bare `cargo test` skips,
/// saying so.
///
/// # Panics
/// If it is unset and `FIREGRID_TEST` is set.
pub fn schemathesis() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FIREGRID_SCHEMATHESIS") {
        return Some(PathBuf::from(p));
    }
    assert!(
        !crate::strict(),
        "FIREGRID_SCHEMATHESIS is not set: scripts/test sets it to the schemathesis of a venv \
         (setup_schemathesis in scripts/lib/setup.sh); without it the API fuzz test cannot run"
    );
    eprintln!(
        "SKIPPED: the API fuzz test needs FIREGRID_SCHEMATHESIS (run scripts/test, or \
         `source scripts/lib/setup.sh && setup_schemathesis` and export it)"
    );
    None
}

/// `openapi-spec-validator`, beside `schemathesis` in its venv.
pub fn spec_validator(schemathesis: &std::path::Path) -> PathBuf {
    schemathesis.with_file_name("openapi-spec-validator")
}
