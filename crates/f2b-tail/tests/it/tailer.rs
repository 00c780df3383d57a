//! The registry: globs, sharing, start modes and checkpoints through the
//! tailer, each run with both backends; plus the inotify latency smoke test.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use f2b_tail::{
    ActiveBackend, Backend, Checkpoint, LogPathOptions, StartMode, SubscriberId, TailOptions,
    Tailer, TailerOptions,
};

use crate::util::{numbered, Writer};

const A: SubscriberId = SubscriberId(1);
const B: SubscriberId = SubscriberId(2);

fn tailer(backend: Backend) -> Tailer {
    let t = Tailer::new(TailerOptions {
        backend,
        poll_interval: Duration::from_millis(20),
        glob_interval: Duration::from_millis(if backend == Backend::Polling {
            50
        } else {
            5000
        }),
        tail: TailOptions {
            rotate_grace: Duration::ZERO,
            ..TailOptions::default()
        },
        ..TailerOptions::default()
    });
    let want = if backend == Backend::Polling {
        ActiveBackend::Polling
    } else {
        ActiveBackend::Inotify
    };
    assert_eq!(
        t.active_backend(),
        want,
        "inotify must be available on the test machine"
    );
    t
}

type Got = Vec<(SubscriberId, PathBuf, String)>;

/// Waits and reads until `got` has `n` entries or 5 s passed.
fn pump(t: &mut Tailer, got: &mut Got, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n && Instant::now() < deadline {
        t.wait(Duration::from_millis(100)).expect("wait");
        let r = t.read(&mut |s, l| got.push((s, l.file.to_path_buf(), l.text.to_owned())));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }
}

fn texts(got: &Got, sub: SubscriberId) -> Vec<String> {
    got.iter()
        .filter(|(s, _, _)| *s == sub)
        .map(|(_, _, t)| t.clone())
        .collect()
}

fn no_cp(_: &Path) -> Option<Checkpoint> {
    None
}

fn each_backend(test: impl Fn(Backend)) {
    for b in [Backend::Inotify, Backend::Polling] {
        test(b);
    }
}

#[test]
fn glob_picks_up_new_files() {
    each_backend(|backend| {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.log");
        Writer::new(&a).lines(1..=2);
        fs::write(dir.path().join("ignored.txt"), "x\n").expect("write");
        // Like Python's glob, `*` does not match a leading dot.
        fs::write(dir.path().join(".hidden.log"), "x\n").expect("write");
        let mut t = tailer(backend);
        let pattern = format!("{}/*.log", dir.path().display());
        let files = t
            .add_logpath(A, &pattern, LogPathOptions::default(), &mut no_cp)
            .expect("add");
        assert_eq!(files, std::slice::from_ref(&a));
        let mut got = Got::new();
        pump(&mut t, &mut got, 2);
        let b = dir.path().join("b.log");
        Writer::new(&b).lines(3..=4);
        pump(&mut t, &mut got, 4);
        assert_eq!(texts(&got, A), numbered(1..=4), "{backend:?}");
        assert_eq!(t.files(A), [a, b.clone()]);
        assert!(got.iter().any(|(_, f, _)| *f == b));
    });
}

#[test]
fn missing_literal_path_is_followed_once_created() {
    each_backend(|backend| {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("later.log");
        let mut t = tailer(backend);
        let files = t
            .add_logpath(
                A,
                &a.to_string_lossy(),
                LogPathOptions::default(),
                &mut no_cp,
            )
            .expect("add");
        assert!(files.is_empty());
        Writer::new(&a).lines(1..=3);
        let mut got = Got::new();
        pump(&mut t, &mut got, 3);
        assert_eq!(texts(&got, A), numbered(1..=3), "{backend:?}");
    });
}

#[test]
fn shared_file_is_read_once_and_fanned_out() {
    each_backend(|backend| {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("auth.log");
        let mut w = Writer::new(&a);
        w.lines(1..=2);
        let mut t = tailer(backend);
        t.add_logpath(
            A,
            &a.to_string_lossy(),
            LogPathOptions::default(),
            &mut no_cp,
        )
        .expect("add");
        // The second jail names it through a glob and a `..` detour.
        let other = format!(
            "{}/../{}/auth.l?g",
            dir.path().display(),
            dir.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        t.add_logpath(B, &other, LogPathOptions::default(), &mut no_cp)
            .expect("add");
        assert_eq!(t.followed_files(), 1);
        let mut got = Got::new();
        pump(&mut t, &mut got, 4);
        w.lines(3..=5);
        pump(&mut t, &mut got, 10);
        assert_eq!(texts(&got, A), numbered(1..=5), "{backend:?}");
        assert_eq!(texts(&got, B), numbered(1..=5), "{backend:?}");
        let cps = t.checkpoints();
        assert_eq!(cps.len(), 2);
        assert!(cps
            .iter()
            .all(|c| c.checkpoint.pos == fs::metadata(&a).map(|m| m.len()).unwrap_or(0)));
        t.remove_subscriber(A);
        assert_eq!(t.followed_files(), 1);
        assert!(t.files(A).is_empty());
        t.remove_subscriber(B);
        assert_eq!(t.followed_files(), 0);
    });
}

#[test]
fn tail_mode_and_checkpoint_lookup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    Writer::new(&a).lines(1..=3);
    Writer::new(&b).lines(1..=3);
    let mut t = tailer(Backend::Auto);
    let tail = LogPathOptions {
        start: StartMode::Tail,
        ..LogPathOptions::default()
    };
    t.add_logpath(A, &a.to_string_lossy(), tail, &mut no_cp)
        .expect("add");
    let mut asked = Vec::new();
    let mut lookup = |p: &Path| {
        asked.push(p.to_path_buf());
        Some(Checkpoint {
            pos: 7, // after "line 1\n"
            firstlinemd5: "0000000000000000000000000000000000000000".to_owned(),
        })
    };
    // Wrong digest: b.log restarts at 0.
    t.add_logpath(
        B,
        &b.to_string_lossy(),
        LogPathOptions::default(),
        &mut lookup,
    )
    .expect("add");
    assert_eq!(asked, std::slice::from_ref(&b));
    Writer::new(&a).lines(4..=4);
    let mut got = Got::new();
    pump(&mut t, &mut got, 4);
    assert_eq!(texts(&got, A), numbered(4..=4));
    assert_eq!(texts(&got, B), numbered(1..=3));
}

#[test]
fn rotation_through_tailer() {
    each_backend(|backend| {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.log");
        let mut w = Writer::new(&a);
        w.lines(1..=3);
        let mut t = tailer(backend);
        t.add_logpath(
            A,
            &a.to_string_lossy(),
            LogPathOptions::default(),
            &mut no_cp,
        )
        .expect("add");
        let mut got = Got::new();
        pump(&mut t, &mut got, 3);
        w.lines(4..=5);
        fs::rename(&a, dir.path().join("a.log.1")).expect("rename");
        w.reopen();
        w.lines(6..=7);
        pump(&mut t, &mut got, 7);
        fs::remove_file(&a).expect("rm");
        w.lines(8..=8);
        w.reopen();
        w.lines(9..=9);
        pump(&mut t, &mut got, 9);
        assert_eq!(texts(&got, A), numbered(1..=9), "{backend:?}");
    });
}

#[test]
fn invalid_glob_is_an_error() {
    let mut t = tailer(Backend::Polling);
    let err = t.add_logpath(A, "/var/log/[", LogPathOptions::default(), &mut no_cp);
    assert!(
        matches!(err, Err(f2b_tail::TailError::Pattern { .. })),
        "{err:?}"
    );
}

/// Not a timing assertion: prints the write -> delivery latency with inotify
/// and checks every line arrived.
#[test]
fn inotify_latency_smoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.log");
    fs::write(&a, "").expect("create");
    let mut t = tailer(Backend::Inotify);
    t.add_logpath(
        A,
        &a.to_string_lossy(),
        LogPathOptions::default(),
        &mut no_cp,
    )
    .expect("add");
    let written: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let n = 200u32;
    let w2 = Arc::clone(&written);
    let path = a.clone();
    let writer = std::thread::spawn(move || {
        let mut w = Writer::new(&path);
        for i in 1..=n {
            std::thread::sleep(Duration::from_millis(2));
            *w2.lock().expect("lock") = Some(Instant::now());
            w.lines(i..=i);
            // Wait until the reader took it, so each sample is one line.
            while w2.lock().expect("lock").is_some() {
                std::thread::yield_now();
            }
        }
    });
    let mut lat = Vec::new();
    let mut got = 0u32;
    let deadline = Instant::now() + Duration::from_secs(20);
    while got < n && Instant::now() < deadline {
        t.wait(Duration::from_millis(100)).expect("wait");
        t.read(&mut |_, _| {
            got += 1;
            if let Some(at) = written.lock().expect("lock").take() {
                lat.push(at.elapsed());
            }
        });
    }
    writer.join().expect("writer");
    assert_eq!(got, n);
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    eprintln!(
        "inotify write->line latency over {} lines: p50 {:?} p90 {:?} p99 {:?} max {:?}",
        lat.len(),
        p(0.5),
        p(0.9),
        p(0.99),
        p(1.0)
    );
}

#[test]
fn directory_created_later_is_watched_and_globbed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("nginx");
    let mut t = tailer(Backend::Inotify);
    let pattern = format!("{}/*.log", sub.display());
    let files = t
        .add_logpath(A, &pattern, LogPathOptions::default(), &mut no_cp)
        .expect("add");
    assert!(files.is_empty());
    fs::create_dir(&sub).expect("mkdir");
    // The directory watch is retried on the next poll tick; the file
    // created after that is found through the directory event.
    let mut got = Got::new();
    std::thread::sleep(Duration::from_millis(60));
    t.wait(Duration::from_millis(50)).expect("wait");
    t.read(&mut |_, _| {});
    Writer::new(&sub.join("access.log")).lines(1..=2);
    pump(&mut t, &mut got, 2);
    assert_eq!(texts(&got, A), numbered(1..=2));
}

#[test]
fn tailer_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Tailer>();
    assert_send::<f2b_tail::FileTail>();
}

#[test]
fn seek_to_time_through_tailer_only_before_first_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.log");
    fs::write(&a, "t=1 old\nt=5 new\nt=6 newer\n").expect("write");
    let mut t = tailer(Backend::Polling);
    t.add_logpath(
        A,
        &a.to_string_lossy(),
        LogPathOptions::default(),
        &mut no_cp,
    )
    .expect("add");
    assert_eq!(t.checkpoint_of(&a).map(|c| c.pos), Some(0));
    let mut time_of = |l: &str| l.strip_prefix("t=")?.split(' ').next()?.parse().ok();
    assert_eq!(
        t.seek_to_time(&a, 5.0, &mut time_of).expect("seek"),
        Some(8)
    );
    let mut got = Got::new();
    pump(&mut t, &mut got, 2);
    assert_eq!(texts(&got, A), ["t=5 new", "t=6 newer"]);
    // Already reading: a later seek (e.g. a second jail) does not move it.
    assert_eq!(t.seek_to_time(&a, 6.0, &mut time_of).expect("seek"), None);
}

#[test]
fn symlinked_log_gets_events_from_target_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("data")).expect("mkdir");
    fs::create_dir(dir.path().join("log")).expect("mkdir");
    let target = dir.path().join("data/auth.log");
    let link = dir.path().join("log/auth.log");
    fs::write(&target, "").expect("create");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    // A long poll interval: only inotify can deliver within the deadline.
    let mut t = Tailer::new(TailerOptions {
        backend: Backend::Inotify,
        poll_interval: Duration::from_secs(60),
        glob_interval: Duration::from_secs(60),
        ..TailerOptions::default()
    });
    t.add_logpath(
        A,
        &link.to_string_lossy(),
        LogPathOptions::default(),
        &mut no_cp,
    )
    .expect("add");
    t.add_logpath(
        B,
        &target.to_string_lossy(),
        LogPathOptions::default(),
        &mut no_cp,
    )
    .expect("add");
    assert_eq!(t.followed_files(), 1);
    t.read(&mut |_, _| {});
    Writer::new(&target).lines(1..=1);
    let mut got = Got::new();
    let start = Instant::now();
    while got.len() < 2 && start.elapsed() < Duration::from_secs(5) {
        t.wait(Duration::from_secs(5)).expect("wait");
        t.read(&mut |s, l| got.push((s, l.file.to_path_buf(), l.text.to_owned())));
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(texts(&got, A), numbered(1..=1));
    assert_eq!(texts(&got, B), numbered(1..=1));
    // Each jail sees the file under its own name.
    assert!(got.iter().any(|(s, f, _)| *s == A && *f == link));
    assert!(got.iter().any(|(s, f, _)| *s == B && *f == target));
    assert_eq!(t.checkpoint_of(&link), t.checkpoint_of(&target));
}

#[test]
fn non_regular_files_are_never_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let looped = dir.path().join("loop.log");
    // A symlink loop cannot be opened, even by root.
    std::os::unix::fs::symlink(&looped, &looped).expect("symlink");
    // Opening a FIFO would block the tailer until a writer appears.
    let fifo = dir.path().join("fifo.log");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).expect("cstring");
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let mut t = tailer(Backend::Polling);
    let files = t
        .add_logpath(
            A,
            &looped.to_string_lossy(),
            LogPathOptions::default(),
            &mut no_cp,
        )
        .expect("add");
    assert!(files.is_empty());
    let pattern = format!("{}/*.log", dir.path().display());
    let files = t
        .add_logpath(B, &pattern, LogPathOptions::default(), &mut no_cp)
        .expect("add");
    assert!(files.is_empty());
    let mut events = 0;
    for _ in 0..3 {
        t.wait(Duration::from_millis(60)).expect("wait");
        events += t.read(&mut |_, _| {}).events.len();
    }
    assert_eq!(events, 0);
    assert_eq!(t.followed_files(), 0);
}

#[test]
fn shared_file_decoded_per_subscriber_encoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.log");
    fs::write(&a, b"user J\xfcrgen\n").expect("write");
    let mut t = tailer(Backend::Polling);
    let latin1 = LogPathOptions {
        encoding: f2b_tail::LogEncoding::Latin1,
        ..LogPathOptions::default()
    };
    t.add_logpath(
        A,
        &a.to_string_lossy(),
        LogPathOptions::default(),
        &mut no_cp,
    )
    .expect("add");
    t.add_logpath(B, &a.to_string_lossy(), latin1, &mut no_cp)
        .expect("add");
    let mut got = Got::new();
    pump(&mut t, &mut got, 2);
    assert_eq!(texts(&got, A), ["user J\u{fffd}rgen"]);
    assert_eq!(texts(&got, B), ["user J\u{fc}rgen"]);
}

/// A tailer that only inotify can drive within a test's deadlines (the stat
/// safety net is one minute away).
fn inotify_only() -> Tailer {
    let t = Tailer::new(TailerOptions {
        backend: Backend::Inotify,
        poll_interval: Duration::from_secs(60),
        glob_interval: Duration::from_secs(60),
        ..TailerOptions::default()
    });
    assert_eq!(
        t.active_backend(),
        ActiveBackend::Inotify,
        "inotify must be available on the test machine"
    );
    t
}

/// Appends one line in two writes (text, then the newline), as `writeln!`
/// on an unbuffered `File` does.
fn append_split(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("write");
    f.write_all(b"\n").expect("write");
}

/// Blocks on the inotify descriptor like a caller with its own event loop
/// (the server's reader thread), at most `ms` milliseconds.
fn poll_fd(fd: std::os::fd::RawFd, ms: i32) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

#[test]
fn files_added_after_the_first_read_in_the_same_directory_lose_nothing() {
    // The server's start sequence: jail 1 adds its file and the reader reads
    // it; jails 2 and 3 add files of the same directory; then all three are
    // appended to. Only `wait(ZERO)` + `read` after the descriptor became
    // readable, as the server's reader does.
    for appended_before_second_add in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let files: Vec<PathBuf> = ["ip", "self", "cmd"]
            .iter()
            .map(|n| dir.path().join(format!("{n}.log")))
            .collect();
        for f in &files {
            fs::write(f, "").expect("create");
        }
        let subs = [SubscriberId(1), SubscriberId(2), SubscriberId(3)];
        let mut t = inotify_only();
        let fd = t.watcher().as_raw_fd().expect("inotify fd");
        let mut got = Got::new();
        let collect = |t: &mut Tailer, got: &mut Got| {
            t.wait(Duration::ZERO).expect("wait");
            let r = t.read(&mut |s, l| got.push((s, l.file.to_path_buf(), l.text.to_owned())));
            assert!(r.errors.is_empty(), "{:?}", r.errors);
        };
        let opts = LogPathOptions::default();
        t.add_logpath(subs[0], &files[0].to_string_lossy(), opts, &mut no_cp)
            .expect("add");
        t.mark_all_dirty();
        collect(&mut t, &mut got);
        if appended_before_second_add {
            append_split(&files[0], "ip 1");
        }
        for i in 1..3 {
            t.add_logpath(subs[i], &files[i].to_string_lossy(), opts, &mut no_cp)
                .expect("add");
            t.mark_all_dirty();
        }
        if !appended_before_second_add {
            append_split(&files[0], "ip 1");
        }
        append_split(&files[0], "ip 2");
        append_split(&files[1], "self 1");
        append_split(&files[2], "cmd 1");
        append_split(&files[2], "cmd 2");
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.len() < 5 && Instant::now() < deadline {
            poll_fd(fd, 100);
            collect(&mut t, &mut got);
        }
        assert_eq!(texts(&got, subs[0]), ["ip 1", "ip 2"], "{got:?}");
        assert_eq!(texts(&got, subs[1]), ["self 1"], "{got:?}");
        assert_eq!(texts(&got, subs[2]), ["cmd 1", "cmd 2"], "{got:?}");
    }
}

#[test]
fn reader_thread_polling_without_the_lock_loses_nothing() {
    // The server's threading: a reader thread sleeps on the inotify
    // descriptor without holding the tailer, then locks it for `wait(ZERO)`
    // and `read`; another thread adds log paths (and marks everything dirty)
    // while it runs, and writers append at once. Several rounds, because
    // the interleavings differ from run to run.
    for round in 0..10 {
        let dir = tempfile::tempdir().expect("tempdir");
        let files: Vec<PathBuf> = (0..3)
            .map(|i| dir.path().join(format!("j{i}.log")))
            .collect();
        for f in &files {
            fs::write(f, "").expect("create");
        }
        let t = Arc::new(Mutex::new(inotify_only()));
        let fd = t.lock().expect("lock").watcher().as_raw_fd().expect("fd");
        let add = |i: usize| {
            let mut t = t.lock().expect("lock");
            t.add_logpath(
                SubscriberId(i as u64),
                &files[i].to_string_lossy(),
                LogPathOptions::default(),
                &mut no_cp,
            )
            .expect("add");
            t.mark_all_dirty();
        };
        add(0);
        let got: Arc<Mutex<Got>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (t, got, stop) = (Arc::clone(&t), Arc::clone(&got), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    poll_fd(fd, 20);
                    let ready = t.lock().expect("lock").wait(Duration::ZERO).expect("wait");
                    if ready {
                        let mut t = t.lock().expect("lock");
                        t.read(&mut |s, l| {
                            got.lock().expect("lock").push((
                                s,
                                l.file.to_path_buf(),
                                l.text.to_owned(),
                            ))
                        });
                    }
                }
            })
        };
        add(1);
        add(2);
        for (i, f) in files.iter().enumerate() {
            append_split(f, &format!("{i} a"));
            append_split(f, &format!("{i} b"));
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while got.lock().expect("lock").len() < 6 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        reader.join().expect("reader");
        let got = got.lock().expect("lock");
        for i in 0..3 {
            assert_eq!(
                texts(&got, SubscriberId(i)),
                [format!("{i} a"), format!("{i} b")],
                "round {round}: {got:?}"
            );
        }
    }
}

#[test]
fn directory_followed_under_two_names_keeps_its_events() {
    // `log` is a symlink to `data`: inotify hands out one watch descriptor
    // for both names. Events must reach files followed under either name,
    // and dropping one name must not remove the watch the other still uses.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = fs::canonicalize(dir.path()).expect("canonical");
    let data = root.join("data");
    fs::create_dir(&data).expect("mkdir");
    let log = root.join("log");
    std::os::unix::fs::symlink(&data, &log).expect("symlink");
    let b = data.join("b.log");
    fs::write(&b, "").expect("create");
    fs::write(data.join("a.log"), "").expect("create");
    let mut t = inotify_only();
    let opts = LogPathOptions::default();
    t.add_logpath(B, &b.to_string_lossy(), opts, &mut no_cp)
        .expect("add");
    // Watches `log` (the same directory as `data`) after `data`.
    t.add_logpath(A, &log.join("a.log").to_string_lossy(), opts, &mut no_cp)
        .expect("add");
    t.read(&mut |_, _| {});
    let mut got = Got::new();
    let mut writer = Writer::new(&b);
    let mut expect_line = |t: &mut Tailer, got: &mut Got, n: u32| {
        writer.lines(n..=n);
        let start = Instant::now();
        while texts(got, B).len() < n as usize && start.elapsed() < Duration::from_secs(2) {
            t.wait(Duration::from_millis(500)).expect("wait");
            t.read(&mut |s, l| got.push((s, l.file.to_path_buf(), l.text.to_owned())));
        }
        assert_eq!(
            texts(got, B),
            numbered(1..=n),
            "no inotify event for line {n}"
        );
    };
    expect_line(&mut t, &mut got, 1);
    t.remove_subscriber(A);
    expect_line(&mut t, &mut got, 2);
}

/// Descriptors of this process that point into `dir`.
fn fds_into(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.starts_with(dir))
        .count()
}

#[test]
fn open_file_cap_parks_least_recently_read_files_and_loses_nothing() {
    each_backend(|backend| {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..40 {
            std::fs::write(
                dir.path().join(format!("f{i:02}.log")),
                format!("f{i} old\n"),
            )
            .expect("write");
        }
        let mut t = Tailer::new(TailerOptions {
            backend,
            poll_interval: Duration::from_millis(20),
            glob_interval: Duration::from_secs(3600),
            max_open_files: 4,
            ..TailerOptions::default()
        });
        let glob = dir.path().join("*.log");
        let added = t
            .add_logpath(
                A,
                &glob.to_string_lossy(),
                LogPathOptions::default(),
                &mut no_cp,
            )
            .expect("add");
        assert_eq!(added.len(), 40);
        assert!(t.open_descriptors() <= 4, "{}", t.open_descriptors());
        assert!(
            fds_into(dir.path()) <= 4,
            "{} descriptors",
            fds_into(dir.path())
        );
        let mut got = Got::new();
        pump(&mut t, &mut got, 40);
        // Every parked file resumes exactly where it stopped: incomplete
        // lines completed later, appends, and one file rotated meanwhile.
        for i in 0..40 {
            let p = dir.path().join(format!("f{i:02}.log"));
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .expect("open");
            std::io::Write::write_all(&mut f, format!("f{i} new").as_bytes()).expect("append");
        }
        // Read the incomplete lines (nothing is delivered yet).
        t.mark_all_dirty();
        let r = t.read(&mut |s, l| got.push((s, l.file.to_path_buf(), l.text.to_owned())));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(got.len(), 40);
        std::fs::rename(dir.path().join("f07.log"), dir.path().join("f07.old")).expect("mv");
        std::fs::write(dir.path().join("f07.log"), "f7 rotated\n").expect("create");
        for i in 0..40 {
            let p = dir.path().join(format!("f{i:02}.log"));
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .expect("open");
            std::io::Write::write_all(&mut f, b" done\n").expect("append");
        }
        pump(&mut t, &mut got, 40 + 40 + 1);
        assert!(t.open_descriptors() <= 4, "{}", t.open_descriptors());
        assert!(
            fds_into(dir.path()) <= 4,
            "{} descriptors",
            fds_into(dir.path())
        );
        for i in 0..40 {
            let p = dir.path().join(format!("f{i:02}.log"));
            let mine: Vec<String> = got
                .iter()
                .filter(|(s, f, _)| *s == A && *f == p)
                .map(|(_, _, l)| l.clone())
                .collect();
            let parked_at_rotation = !mine.iter().any(|l| l == "f7 new");
            let want: Vec<String> = if i != 7 {
                vec![format!("f{i} old"), format!("f{i} new done")]
            } else if parked_at_rotation {
                // Renamed away while parked: the end of its incomplete line
                // is out of reach (dropped); the new file is read from 0.
                vec!["f7 old".into(), "f7 rotated".into(), " done".into()]
            } else {
                // Still open: drained, its incomplete line flushed.
                vec![
                    "f7 old".into(),
                    "f7 new".into(),
                    "f7 rotated".into(),
                    " done".into(),
                ]
            };
            assert_eq!(mine, want, "file {i} ({backend:?})");
        }
        // Checkpoints of parked files are their positions.
        let cps = t.checkpoints();
        assert_eq!(cps.len(), 40);
        for cp in cps {
            let len = std::fs::metadata(&cp.path).expect("stat").len();
            assert_eq!(cp.checkpoint.pos, len, "{}", cp.path.display());
        }
    });
}

#[test]
fn read_budget_splits_a_burst_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("burst.log");
    let want: Vec<String> = (0..20_000)
        .map(|i| format!("line {i:06} of a burst"))
        .collect();
    std::fs::write(&path, want.join("\n") + "\n").expect("write");
    let mut t = Tailer::new(TailerOptions {
        backend: Backend::Inotify,
        max_read_bytes: 64 * 1024,
        ..TailerOptions::default()
    });
    t.add_logpath(
        A,
        &path.to_string_lossy(),
        LogPathOptions::default(),
        &mut no_cp,
    )
    .expect("add");
    let mut got: Vec<String> = Vec::new();
    let mut reads = 0;
    while t.wait(Duration::ZERO).expect("wait") && got.len() < want.len() {
        let before = got.len();
        let r = t.read(&mut |_, l| got.push(l.text.to_owned()));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        // One read: at most the budget plus one 64 KiB chunk.
        assert!(
            (got.len() - before) * 25 <= 128 * 1024,
            "{}",
            got.len() - before
        );
        reads += 1;
        assert!(reads < 1000, "no progress");
    }
    assert!(reads >= 4, "{reads} reads");
    assert_eq!(got, want);
    let cp = t.checkpoints();
    assert_eq!(
        cp[0].checkpoint.pos,
        std::fs::metadata(&path).expect("stat").len()
    );
}
