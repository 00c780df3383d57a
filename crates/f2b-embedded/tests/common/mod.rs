//! Helpers shared by the oracle tests: the exported tree and the Python
//! scripts under tests/py.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Python interpreter that has fail2ban's modules (Debian package).
pub const PYTHON: &str = "/usr/bin/python3";

/// Fails with a clear message when the Python fail2ban oracle is missing.
pub fn require_oracle() {
    let ok = Command::new(PYTHON)
        .args([
            "-c",
            "import fail2ban.client.actionreader, fail2ban.server.filter",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the Python fail2ban oracle is missing: install Debian's fail2ban package (apt-get install -y fail2ban) \
         so that {PYTHON} can import fail2ban"
    );
}

/// Path of a helper script in tests/py.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("py")
        .join(name)
}

/// Exports the embedded tree into a fresh temporary directory.
pub fn exported() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    f2b_embedded::export(dir.path(), false).expect("export embedded tree");
    dir
}

/// Runs a command, returning its output (panics with context if it cannot start).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Names of the files in `dir` of the embedded tree ending in `.conf`, without the extension.
pub fn conf_names(dir: &str) -> Vec<String> {
    let prefix = format!("{dir}/");
    f2b_embedded::files()
        .iter()
        .filter_map(|(p, _)| p.strip_prefix(&prefix))
        .filter_map(|n| n.strip_suffix(".conf"))
        .filter(|n| !n.contains('/'))
        .map(str::to_string)
        .collect()
}
