//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use f2b_actions::{ActionEnv, Executor, StaticJailInfo};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "f2b-actions-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An environment with a fixed clock and a given executor.
pub fn env_with(executor: Executor, now: f64) -> Arc<ActionEnv> {
    Arc::new(ActionEnv {
        executor,
        jail_info: Arc::new(StaticJailInfo {
            bantime: 600,
            ..Default::default()
        }),
        clock: Arc::new(move || now),
        ..ActionEnv::default()
    })
}

/// Fails loudly when the Python oracle is not installed.
pub fn require_python_fail2ban() {
    let ok = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import fail2ban.server.action"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the compatibility oracle is missing: /usr/bin/python3 with the Debian fail2ban package \
         (apt-get install -y fail2ban) is required for this test"
    );
}

/// A copy of /etc/fail2ban under `dir` with `jail_local` as jail.local.
pub fn config_copy(dir: &Path, jail_local: &str) -> PathBuf {
    assert!(
        Path::new("/etc/fail2ban/jail.conf").exists(),
        "/etc/fail2ban (Debian fail2ban package) is required for this test"
    );
    let st = std::process::Command::new("cp")
        .args(["-a", "/etc/fail2ban"])
        .arg(dir)
        .status()
        .expect("cp");
    assert!(st.success(), "copying /etc/fail2ban failed");
    let conf = dir.join("fail2ban");
    // Drop local overrides of the host so the stock files are used.
    let _ = std::fs::remove_dir_all(conf.join("jail.d"));
    std::fs::create_dir_all(conf.join("jail.d")).expect("jail.d");
    std::fs::write(conf.join("jail.local"), jail_local).expect("jail.local");
    conf
}
