//! Returning memory the daemon no longer uses, when it goes quiet (after start-up, after a
//! burst of log lines).
//!
//! Two kinds of pages stay counted in the daemon's resident set after a busy phase:
//!
//! - **free heap**: returned with glibc's `malloc_trim`;
//! - **clean file pages**: the code and read-only data of the binary and its libraries that
//!   the configuration reader, the regex compilers, the database's schema code and so on
//!   touched once at start-up. They are mapped into the process until the kernel reclaims
//!   them under memory pressure, and the kernel maps 16 pages around every page faulted in
//!   (`fault_around_bytes`), so a start touches ~6 MiB of a 9 MiB binary.
//!
//! The second kind is released with `madvise(MADV_DONTNEED)` on every file-backed mapping
//! that is not writable and holds no private (copy-on-write) page: for such a mapping the
//! call only drops the page-table entries; the pages stay in the page cache (shared with
//! every other process mapping the file) and the next access maps them again from there (a
//! minor fault, ~1 µs, no I/O while the page cache holds them). What is resident afterwards is
//! the working set of the quiet daemon. This is what Android's app compaction does to
//! cached apps' file pages.
//!
//! Mappings that are writable (data, shared database files) or hold copy-on-write pages
//! (relocated read-only data: `Anonymous:` above zero in `smaps`) are never touched: for
//! those `MADV_DONTNEED` would throw away content that exists nowhere else.

use std::time::Duration;

/// When memory goes back after a busy phase (the start, a burst of lines): the wait
/// before each trim, the first counted from the end of the phase. Half a second returns
/// what the phase itself left; the two later rounds what its stragglers left (ban actions
/// still running, the jails' first reads, the database's first checkpoint).
pub const QUIET_SCHEDULE: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(2),
];

/// One mapping that may be released: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// The mappings of an `smaps` text whose page-table entries can be dropped without losing
/// content: backed by a file (path starts with `/`), not writable, no anonymous
/// (copy-on-write) page, not locked.
pub fn releasable(smaps: &str) -> Vec<Span> {
    let mut out = Vec::new();
    // The mapping being read: its span, whether it qualifies so far, and whether its
    // `Rss` was above zero (nothing to release otherwise).
    let mut cur: Option<(Span, bool, bool)> = None;
    let finish = |cur: &mut Option<(Span, bool, bool)>, out: &mut Vec<Span>| {
        if let Some((span, ok, resident)) = cur.take() {
            if ok && resident {
                out.push(span);
            }
        }
    };
    for line in smaps.lines() {
        let mut it = line.split_ascii_whitespace();
        let Some(first) = it.next() else { continue };
        if let Some(field) = first.strip_suffix(':') {
            let Some((_, ok, resident)) = cur.as_mut() else {
                continue;
            };
            let kib: u64 = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match field {
                "Rss" => *resident = kib > 0,
                // (`Private_Dirty` of a file page without `Anonymous` is the page cache's
                // own dirty state, e.g. a binary just written by the linker: its content is
                // the file's and reads back.)
                "Anonymous" | "Locked" | "Swap" if kib > 0 => *ok = false,
                // Locked or I/O mappings, whatever their other fields say.
                "VmFlags"
                    if line
                        .split_ascii_whitespace()
                        .any(|f| matches!(f, "lo" | "io" | "pf")) =>
                {
                    *ok = false
                }
                _ => {}
            }
            continue;
        }
        // A mapping's header: `start-end perms offset dev inode [path]`.
        finish(&mut cur, &mut out);
        let Some((a, b)) = first.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        let perms = it.next().unwrap_or("");
        let path = it.nth(3).unwrap_or("");
        let ok = perms.len() == 4
            && perms.as_bytes()[1] != b'w'
            && perms.as_bytes()[3] == b'p'
            && path.starts_with('/')
            && start < end;
        cur = Some((Span { start, end }, ok, false));
    }
    finish(&mut cur, &mut out);
    out
}

/// Drops the page-table entries of the clean, read-only file mappings of this process
/// (see the module text); returns the bytes of the spans released. Errors (no `/proc`,
/// a mapping gone meanwhile) only mean less is released.
pub fn release_file_pages() -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released = 0;
    for s in releasable(&smaps) {
        // SAFETY: the span is a private, non-writable, file-backed mapping without
        // copy-on-write pages (checked just above from the kernel's own accounting): after
        // MADV_DONTNEED its pages read back from the file, byte for byte what they were.
        // Nothing in this process makes such a mapping writable (the dynamic loader only
        // ever turns relocated data read-only, never the reverse).
        let r = unsafe {
            nix::libc::madvise(
                s.start as *mut nix::libc::c_void,
                s.end - s.start,
                nix::libc::MADV_DONTNEED,
            )
        };
        if r == 0 {
            released += s.end - s.start;
        }
    }
    released
}

/// Everything this module can return: free heap, then the clean file pages.
pub fn trim_memory() {
    crate::daemon::trim_heap();
    release_file_pages();
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d4a0000000-55d4a0100000 r--p 00000000 08:01 1234 /usr/bin/f2b
Size:               1024 kB
Rss:                 512 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd mr mw me dw
55d4a0100000-55d4a0200000 r-xp 00100000 08:01 1234 /usr/bin/f2b
Size:               1024 kB
Rss:                 900 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me dw
55d4a0200000-55d4a0210000 r--p 00200000 08:01 1234 /usr/bin/f2b
Rss:                  64 kB
Anonymous:            64 kB
VmFlags: rd mr mw me dw ac
55d4a0210000-55d4a0220000 rw-p 00210000 08:01 1234 /usr/bin/f2b
Rss:                  64 kB
Anonymous:            16 kB
55d4a1000000-55d4a1100000 rw-p 00000000 00:00 0 [heap]
Rss:                 128 kB
Anonymous:           128 kB
7f0000000000-7f0000010000 rw-s 00000000 08:01 99 /var/lib/fail2ban/db.sqlite3-shm
Rss:                  32 kB
Anonymous:             0 kB
7f0000100000-7f0000200000 r-xp 00028000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 800 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd ex mr mw me sd
7f0000200000-7f0000210000 r-xp 00000000 08:01 78 /usr/lib/locked.so
Rss:                  64 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me lo
7f0000300000-7f0000310000 r--p 00000000 08:01 79 /usr/lib/cold.so
Rss:                   0 kB
Anonymous:             0 kB
7fff00000000-7fff00002000 r-xp 00000000 00:00 0 [vdso]
Rss:                   8 kB
Anonymous:             0 kB
";

    #[test]
    fn only_clean_read_only_file_mappings() {
        let got = releasable(SMAPS);
        assert_eq!(
            got,
            vec![
                Span {
                    start: 0x55d4a0000000,
                    end: 0x55d4a0100000
                },
                Span {
                    start: 0x55d4a0100000,
                    end: 0x55d4a0200000
                },
                Span {
                    start: 0x7f0000100000,
                    end: 0x7f0000200000
                },
            ]
        );
    }

    fn status_kib(field: &str) -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_ascii_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    #[test]
    fn release_lowers_file_rss_and_code_still_runs() {
        // Touch some code and read-only data first.
        let before_text: String = (0..1000).map(|i| format!("{i:x}")).collect();
        let before = status_kib("RssFile:");
        let released = release_file_pages();
        let after = status_kib("RssFile:");
        assert!(released > 0, "nothing released");
        assert!(after < before, "RssFile {before} -> {after} kB");
        // Code and read-only data map back on use, unchanged.
        let again: String = (0..1000).map(|i| format!("{i:x}")).collect();
        assert_eq!(before_text, again);
        assert_eq!(f2b_core::duration::str2sec("1d12h30m").unwrap(), 131400.0);
    }
}
