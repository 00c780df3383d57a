//! Loading and resolving the stock Debian tree with all 91 jails enabled
//! (what `fail2ban-client -d` does; Python takes ~170 ms).
//! Needs the installed `/etc/fail2ban` (Debian's fail2ban package).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use f2b_config::{load, FsSource, LoadOptions};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        let dst = to.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &dst);
        } else {
            std::fs::copy(&p, &dst).expect("copy");
        }
    }
}

fn bench(c: &mut Criterion) {
    let stock = Path::new("/etc/fail2ban");
    assert!(
        stock.join("jail.conf").exists(),
        "install Debian's fail2ban package for this bench"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("fail2ban");
    copy_tree(stock, &dir);
    let jail_conf = std::fs::read_to_string(dir.join("jail.conf")).expect("jail.conf");
    let local: String = jail_conf
        .lines()
        .filter_map(|l| l.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .filter(|n| *n != "INCLUDES" && *n != "DEFAULT")
        .map(|n| format!("[{n}]\nenabled = true\n\n"))
        .collect();
    std::fs::write(dir.join("jail.local"), local).expect("jail.local");
    let src = FsSource::new(&dir);
    let opts = LoadOptions {
        allow_no_files: true,
        ignore_wrong: true,
        ..Default::default()
    };
    let cfg = load(&src, &opts).expect("load");
    assert_eq!(cfg.jails.len(), 91);
    // Loading and resolving is measured; freeing the result afterwards (~1.5 ms of
    // small frees) is not: `iter_with_large_drop` drops the outputs outside the timing.
    c.bench_function("load_stock_tree", |b| {
        b.iter_with_large_drop(|| {
            let cfg = load(&src, &opts).expect("load");
            assert!(cfg.stream.len() > 1000);
            cfg
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
