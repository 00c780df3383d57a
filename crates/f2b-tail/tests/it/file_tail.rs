//! One path: start modes, checkpoints, partial, huge, binary and
//! undecodable lines, unreadable and vanishing files.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use f2b_tail::{
    Checkpoint, FileTail, LogEncoding, Rotation, Start, TailError, TailEvent, TailOptions,
};

use crate::util::{numbered, open, opts, read, Writer};

#[test]
fn head_reads_existing_tail_skips_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.lines(1..=3);
    let mut head = open(&path, Start::Head);
    let mut tail = open(&path, Start::Tail);
    assert_eq!(read(&mut head), numbered(1..=3));
    assert_eq!(read(&mut tail), Vec::<String>::new());
    w.lines(4..=5);
    assert_eq!(read(&mut head), numbered(4..=5));
    assert_eq!(read(&mut tail), numbered(4..=5));
    assert_eq!(read(&mut head), Vec::<String>::new());
}

#[test]
fn tail_start_mid_line_delivers_that_line_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    fs::write(&path, "old\nbeing writ").expect("write");
    let mut tail = open(&path, Start::Tail);
    assert!(read(&mut tail).is_empty());
    Writer::new(&path).raw(b"ten\nnew\n");
    assert_eq!(read(&mut tail), ["being written", "new"]);
}

#[test]
fn partial_line_is_held_until_newline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.raw(b"first\nsec");
    let mut t = open(&path, Start::Head);
    assert_eq!(read(&mut t), ["first"]);
    assert_eq!(t.checkpoint().map(|c| c.pos), Some(6));
    w.raw(b"ond");
    assert!(read(&mut t).is_empty());
    w.raw(b"\r\nthird\n");
    assert_eq!(read(&mut t), ["second", "third"]);
    assert_eq!(t.checkpoint().map(|c| c.pos), Some(20));
}

#[test]
fn checkpoint_matches_fail2ban_and_resumes_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    let mut got = Vec::new();
    let mut cp: Option<Checkpoint> = None;
    // Stop and restart after every batch, at uneven points, some mid-line.
    let mut next = 1;
    for batch in [3u32, 1, 7, 2, 5] {
        w.lines(next..=next + batch - 1);
        next += batch;
        w.raw(b"partial ");
        let start = cp.clone().map(Start::At).unwrap_or(Start::Head);
        let mut t = open(&path, start);
        got.extend(read(&mut t));
        cp = t.checkpoint();
        w.raw(b"done\n");
        got.retain(|l| l != "partial done");
    }
    let want: Vec<String> = numbered(1..=next - 1);
    assert_eq!(got, want);
    let size = fs::metadata(&path).expect("stat").len();
    let cp = cp.expect("checkpoint");
    // The last checkpoint points before the unfinished "partial " line.
    assert_eq!(cp.pos, size - "partial done\n".len() as u64);
    // sha1("line 1\n"), fail2ban's `firstlinemd5` on Python 3.
    assert_eq!(cp.firstlinemd5, sha1_hex(b"line 1\n"));
}

fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn checkpoint_of_other_file_restarts_at_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    fs::write(&path, "new first\nsecond\n").expect("write");
    let stale = Checkpoint {
        pos: 7,
        firstlinemd5: sha1_hex(b"old first\n"),
    };
    let mut t = open(&path, Start::At(stale));
    assert_eq!(read(&mut t), ["new first", "second"]);
    // Same first line but the file is shorter than the position: rotated.
    let short = Checkpoint {
        pos: 1000,
        firstlinemd5: sha1_hex(b"new first\n"),
    };
    let mut t = open(&path, Start::At(short));
    assert_eq!(read(&mut t), ["new first", "second"]);
    let good = Checkpoint {
        pos: 10,
        firstlinemd5: sha1_hex(b"new first\n"),
    };
    let mut t = open(&path, Start::At(good));
    assert_eq!(read(&mut t), ["second"]);
}

#[test]
fn ten_mib_line_is_cut_counted_and_not_buffered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.raw(b"before\n");
    let mut t = open(&path, Start::Head);
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..10 {
        w.raw(&chunk);
        // Reading in the middle of the huge line must not grow memory.
        let mut n = 0;
        t.read_lines(&mut |_| n += 1).expect("read");
        assert!(n <= 1);
    }
    w.raw(b"\nafter\n");
    let mut lines = Vec::new();
    let report = t
        .read_lines(&mut |l| lines.push((l.text.len(), l.truncated)))
        .expect("read");
    assert_eq!(lines, [(64 * 1024, true), (5, false)]);
    assert!(report.events.contains(&TailEvent::OverlongLine {
        offset_after: 7 + 10 * 1024 * 1024 + 1,
        len: 10 * 1024 * 1024,
    }));
    assert_eq!(t.stats().overlong, 1);
    assert_eq!(
        t.checkpoint().map(|c| c.pos),
        fs::metadata(&path).ok().map(|m| m.len())
    );
}

#[test]
fn configurable_line_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    fs::write(&path, "0123456789\nabc\n").expect("write");
    let o = TailOptions {
        max_line_bytes: 4,
        ..opts()
    };
    let mut t = FileTail::open(&path, Start::Head, o).expect("open");
    assert_eq!(read(&mut t), ["0123", "abc"]);
}

#[test]
fn binary_garbage_never_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    // Deterministic pseudo-random bytes (xorshift), including NUL, 0xFF,
    // lone UTF-8 continuation bytes and CRs.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes = Vec::with_capacity(1 << 20);
    for _ in 0..(1 << 20) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push((x >> 24) as u8);
    }
    bytes.push(b'\n');
    fs::write(&path, &bytes).expect("write");
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    for enc in [
        LogEncoding::Utf8,
        LogEncoding::Latin1,
        LogEncoding::from_name("cp1251").expect("enc"),
    ] {
        let o = TailOptions {
            encoding: enc,
            ..opts()
        };
        let mut t = FileTail::open(&path, Start::Head, o).expect("open");
        let mut n = 0u64;
        let report = t.read_lines(&mut |l| {
            assert!(!l.text.contains('\n'));
            n += 1;
        });
        let report = report.expect("read");
        assert_eq!(n, newlines, "{enc:?}");
        if enc == LogEncoding::Utf8 {
            // Reported once per file, counted per line.
            let warned = report
                .events
                .iter()
                .filter(|e| matches!(e, TailEvent::DecodeError { .. }))
                .count();
            assert_eq!(warned, 1);
            assert!(t.stats().decode_errors > 1);
        }
    }
}

#[test]
fn latin1_and_utf8_decoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    fs::write(&path, b"user J\xfcrgen from 1.2.3.4\n").expect("write");
    let o = TailOptions {
        encoding: LogEncoding::from_name("latin-1").expect("enc"),
        ..opts()
    };
    let mut t = FileTail::open(&path, Start::Head, o).expect("open");
    assert_eq!(read(&mut t), ["user J\u{fc}rgen from 1.2.3.4"]);
    let mut t = open(&path, Start::Head);
    assert_eq!(read(&mut t), ["user J\u{fffd}rgen from 1.2.3.4"]);
}

#[test]
fn vanishing_file_is_reported_and_followed_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.lines(1..=2);
    let mut t = open(&path, Start::Head);
    assert_eq!(read(&mut t), numbered(1..=2));
    w.lines(3..=3);
    w.close();
    fs::remove_file(&path).expect("rm");
    let mut lines = Vec::new();
    let r = t
        .read_lines(&mut |l| lines.push(l.text.to_owned()))
        .expect("read");
    assert_eq!(lines, numbered(3..=3));
    assert!(r.events.contains(&TailEvent::Rotated {
        rotation: Rotation::Removed
    }));
    assert!(!t.is_open());
    assert_eq!(t.checkpoint(), None);
    // Missing: reported once, then silent.
    let r1 = t.read_lines(&mut |_| {}).expect("read");
    let r2 = t.read_lines(&mut |_| {}).expect("read");
    assert!(matches!(
        r1.events.as_slice(),
        [TailEvent::Unavailable {
            kind: std::io::ErrorKind::NotFound,
            ..
        }]
    ));
    assert!(r2.events.is_empty());
    w.lines(4..=5);
    assert_eq!(read(&mut t), numbered(4..=5));
    assert!(t.is_open());
}

#[test]
fn unreadable_path_is_reported_and_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.lines(1..=1);
    w.close();
    let mut t = open(&path, Start::Head);
    assert_eq!(read(&mut t), numbered(1..=1));
    // Replace the log by something that cannot be opened. chmod 000 does not
    // stop root, so as root a symlink loop (ELOOP) stands in for it.
    fs::remove_file(&path).expect("rm");
    let root = unsafe_free_is_root();
    if root {
        std::os::unix::fs::symlink(&path, &path).expect("symlink loop");
    } else {
        fs::write(&path, "line 2\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    let r = t.read_lines(&mut |_| {}).expect("read");
    let unavailable = r
        .events
        .iter()
        .filter(|e| matches!(e, TailEvent::Unavailable { .. }))
        .count()
        + t.read_lines(&mut |_| {}).expect("read").events.len();
    assert_eq!(unavailable, 1, "{:?}", r.events);
    assert!(!t.is_open());
    // Opening an unreadable path fails with a structured error.
    match FileTail::open(&path, Start::Head, opts()) {
        Err(TailError::Open { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected open error, got {other:?}"),
    }
    // Fixed: reading resumes from the new file's start.
    fs::remove_file(&path).expect("rm");
    w.lines(2..=3);
    assert_eq!(read(&mut t), numbered(2..=3));
}

fn unsafe_free_is_root() -> bool {
    // The owner of a freshly created file is the effective uid.
    let f = tempfile::NamedTempFile::new().expect("tmp");
    std::os::unix::fs::MetadataExt::uid(&f.as_file().metadata().expect("stat")) == 0
}

fn time_of(line: &str) -> Option<f64> {
    line.strip_prefix("t=")?.split(' ').next()?.parse().ok()
}

#[test]
fn seek_to_time_finds_first_line_at_or_after_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut content = String::new();
    for i in 0..1000u32 {
        content.push_str(&format!("t={} {}\n", i * 2, "x".repeat((i % 7) as usize)));
        if i % 10 == 3 {
            content.push_str("continuation without a time stamp\n");
        }
    }
    fs::write(&path, &content).expect("write");
    for (target, want) in [
        (0.0, "t=0 "),
        (-5.0, "t=0 "),
        (501.0, "t=502 "),
        (500.0, "t=500 "),
    ] {
        let mut t = open(&path, Start::Head);
        t.seek_to_time(target, &mut time_of).expect("seek");
        let lines = read(&mut t);
        // Everything from the first line at or after the target, nothing skipped.
        let at = content.find(want).expect("present");
        let rest: Vec<&str> = content[at..].lines().collect();
        assert_eq!(lines, rest, "target {target}");
    }
    let mut t = open(&path, Start::Head);
    let pos = t.seek_to_time(1e9, &mut time_of).expect("seek");
    assert_eq!(pos, content.len() as u64);
    assert!(read(&mut t).is_empty());
}

#[test]
fn fifo_in_place_of_the_log_does_not_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.lines(1..=1);
    w.close();
    let mut t = open(&path, Start::Head);
    assert_eq!(read(&mut t), numbered(1..=1));
    fs::remove_file(&path).expect("rm");
    let c = std::ffi::CString::new(path.to_string_lossy().as_bytes()).expect("cstring");
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let r = t.read_lines(&mut |_| {}).expect("read");
    let r2 = t.read_lines(&mut |_| {}).expect("read");
    let unavailable: Vec<_> = r
        .events
        .iter()
        .chain(r2.events.iter())
        .filter(|e| {
            matches!(
                e,
                TailEvent::Unavailable {
                    kind: std::io::ErrorKind::InvalidInput,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(unavailable.len(), 1, "{:?} {:?}", r.events, r2.events);
    assert!(!t.is_open());
}
