//! Integration tests on real journal files written by systemd-journal-remote.

mod nonotify;
mod util;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use f2b_journal::{iso_local, Journal, JournalMatch, JournalOptions, JournalSource, Start};
use f2b_tail::{LogEncoding, SubscriberId};
use util::*;

const T0: u64 = 1_700_000_000_000_000;

fn sshd_match() -> JournalMatch {
    JournalMatch::parse(&["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd"]).unwrap()
}

fn read_all(j: &mut Journal) -> Vec<(SubscriberId, String, f64)> {
    read_all_iso(j)
        .into_iter()
        .map(|(id, t, tm, _)| (id, t, tm))
        .collect()
}

fn read_all_iso(j: &mut Journal) -> Vec<(SubscriberId, String, f64, String)> {
    let mut out = Vec::new();
    loop {
        let r = j
            .read(1000, &mut |id, l| {
                out.push((id, l.text.to_owned(), l.time, iso_local(l.usec)))
            })
            .unwrap();
        if !r.more {
            break;
        }
    }
    out
}

fn open_file(p: &std::path::Path) -> Journal {
    Journal::open(&JournalSource::files(&[p]), JournalOptions::default()).unwrap()
}

/// fail2ban's sshd-journal sample as journal entries, interleaved with
/// entries of other units; the sshd match selects exactly the sample, and
/// each line equals the sample line and fail2ban's own formatting.
#[test]
fn sshd_sample_matches_and_formats_like_fail2ban() {
    let lines = sshd_sample_lines();
    assert!(lines.len() > 100, "sample too small");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.journal");
    let mut ents = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = T0 + (i as u64) * 1_000_000;
        ents.push(Ent::syslog(t, "sshd.service", l));
        ents.push(
            Ent::syslog(
                t + 1,
                "nginx.service",
                "srv nginx[7]: Failed password for root from 1.2.3.4",
            )
            .f("MESSAGE", "second value"),
        );
        // sshd words in another unit and comm: must not match
        ents.push(Ent::syslog(
            t + 2,
            "cron.service",
            &format!("srv cron[8]: {l}"),
        ));
    }
    write_journal(&path, &ents);

    let mut j = open_file(&path);
    j.subscribe(
        SubscriberId(1),
        sshd_match(),
        LogEncoding::Utf8,
        Start::Head,
    )
    .unwrap();
    let got = read_all(&mut j);
    let texts: Vec<&str> = got.iter().map(|(_, t, _)| t.as_str()).collect();
    let want: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(texts, want);
    for (i, (_, _, t)) in got.iter().enumerate() {
        assert_eq!(*t, 1_700_000_000.0 + i as f64);
    }

    // every entry (no match) against fail2ban's formatJournalEntry
    let mut all = open_file(&path);
    all.subscribe(
        SubscriberId(2),
        JournalMatch::all(),
        LogEncoding::Utf8,
        Start::Head,
    )
    .unwrap();
    let ours: Vec<(String, f64, String)> = read_all_iso(&mut all)
        .into_iter()
        .map(|(_, t, tm, iso)| (t, tm, iso))
        .collect();
    let theirs = oracle(std::slice::from_ref(&path));
    assert_eq!(ours.len(), ents.len());
    assert_eq!(ours, theirs);
}

/// Edge and hostile entries: our text and time equal fail2ban's for every
/// entry it can format; hostile ones are counted, never a panic.
#[test]
fn edge_entries_equal_oracle_and_hostile_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.journal");
    let big = "x".repeat(1024 * 1024);
    let t = T0;
    let ents = vec![
        Ent::new(t)
            .f("SYSLOG_IDENTIFIER", "kernel")
            .f("MESSAGE", "oops"),
        Ent::new(t + 1)
            .f("SYSLOG_IDENTIFIER", "kernel")
            .f("_SOURCE_MONOTONIC_TIMESTAMP", "123456789")
            .f("MESSAGE", "usb"),
        Ent::new(t + 2)
            .f("SYSLOG_IDENTIFIER", "app")
            .f("SYSLOG_PID", "0x1f")
            .f("MESSAGE", "hex pid"),
        Ent::new(t + 3)
            .f("SYSLOG_IDENTIFIER", "app")
            .f("SYSLOG_PID", "abc")
            .f("MESSAGE", "text pid"),
        Ent::new(t + 4)
            .f("SYSLOG_IDENTIFIER", "app")
            .f("SYSLOG_PID", "0")
            .f("_PID", "77")
            .f("MESSAGE", "zero pid"),
        Ent::new(t + 5).f("_COMM", "comm-only").f("MESSAGE", "c"),
        Ent::new(t + 6).f("_HOSTNAME", "h").f("MESSAGE", "no ident"),
        Ent::new(t + 7)
            .f("SYSLOG_IDENTIFIER", "multi")
            .f("MESSAGE", "one")
            .f("MESSAGE", "two"),
        Ent::new(t + 8)
            .f("SYSLOG_IDENTIFIER", "nl")
            .f("MESSAGE", "line1\nline2\r\n"),
        Ent::new(t + 9)
            .f("SYSLOG_IDENTIFIER", "bin")
            .f("MESSAGE", b"bad \xff\xfe bytes \x00 nul".as_slice()),
        Ent::new(t + 10)
            .f("SYSLOG_IDENTIFIER", "src")
            .f("_SOURCE_REALTIME_TIMESTAMP", "1600000000123456")
            .f("MESSAGE", "source time"),
        Ent::new(t + 11)
            .f("SYSLOG_IDENTIFIER", "ütf")
            .f("MESSAGE", "ünïcödé ✓"),
        Ent::new(t + 12)
            .f("SYSLOG_IDENTIFIER", "binfield")
            .f("BLOB", b"\x00\x01\x02\xff".as_slice())
            .f("MESSAGE", "with a binary field"),
    ];
    // hostile entries fail2ban would also read (1 MiB) or we skip (no MESSAGE)
    let hostile = vec![
        Ent::new(t + 13)
            .f("SYSLOG_IDENTIFIER", "big")
            .f("MESSAGE", &big),
        Ent::new(t + 14)
            .f("SYSLOG_IDENTIFIER", "nomsg")
            .f("OTHER", "x"),
    ];
    write_journal(&path, &ents);
    let theirs = oracle(std::slice::from_ref(&path));
    let mut j = open_file(&path);
    j.subscribe(
        SubscriberId(1),
        JournalMatch::all(),
        LogEncoding::Utf8,
        Start::Head,
    )
    .unwrap();
    let ours: Vec<(String, f64, String)> = read_all_iso(&mut j)
        .into_iter()
        .map(|(_, t, tm, iso)| (t, tm, iso))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(j.stats().lossy, 1);
    // a second jail with another encoding on the same reader
    let mut two = open_file(&path);
    two.subscribe(
        SubscriberId(1),
        JournalMatch::all(),
        LogEncoding::Utf8,
        Start::Head,
    )
    .unwrap();
    let bin = JournalMatch::parse(&["SYSLOG_IDENTIFIER=bin"]).unwrap();
    two.subscribe(SubscriberId(2), bin, LogEncoding::Latin1, Start::Head)
        .unwrap();
    let got = read_all(&mut two);
    assert_eq!(got.len(), ents.len() + 1);
    let latin: Vec<&str> = got
        .iter()
        .filter(|(id, _, _)| *id == SubscriberId(2))
        .map(|(_, t, _)| t.as_str())
        .collect();
    assert_eq!(latin, ["bin: bad \u{ff}\u{fe} bytes \0 nul"]);

    write_journal(&path, &hostile);
    let got = read_all(&mut j);
    assert_eq!(
        got.len(),
        1,
        "the 1 MiB entry is delivered truncated, the empty one skipped"
    );
    assert_eq!(
        got[0].1.len(),
        "big: ".len() + f2b_journal::DEFAULT_MAX_MESSAGE_BYTES
    );
    let st = j.stats();
    assert_eq!((st.truncated, st.no_message), (1, 1));
}

fn numbered(from: usize, to: usize, unit: &str) -> Vec<Ent> {
    (from..to)
        .map(|i| {
            Ent::syslog(
                T0 + i as u64 * 1000,
                unit,
                &format!("srv sshd[{}]: entry {i}", 100 + i),
            )
        })
        .collect()
}

fn entry_no(text: &str) -> usize {
    text.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Read half, save the cursor, reopen, append, resume: every entry exactly
/// once, through the time fallback too (which may only repeat nothing).
#[test]
fn cursor_resume_no_loss_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.journal");
    write_journal(&path, &numbered(0, 1000, "sshd.service"));
    let id = SubscriberId(7);
    let mut seen = Vec::new();
    let saved = {
        let mut j = open_file(&path);
        j.subscribe(id, sshd_match(), LogEncoding::Utf8, Start::Head)
            .unwrap();
        let r = j
            .read(500, &mut |_, l| seen.push(entry_no(l.text)))
            .unwrap();
        assert!(r.more);
        j.position(id).unwrap()
    };
    assert_eq!(seen.len(), 500);
    let cursor = saved.cursor.clone().expect("cursor");
    assert_eq!(saved.time, 1_700_000_000.0 + 499.0 * 0.001);
    write_journal(&path, &numbered(1000, 1200, "sshd.service"));
    let saved2 = {
        let mut j = open_file(&path);
        let start = Start::resume(Some(&cursor), Some(saved.time), 1_700_000_100.0, 600.0);
        assert!(matches!(start, Start::After { .. }));
        j.subscribe(id, sshd_match(), LogEncoding::Utf8, start)
            .unwrap();
        for (_, t, _) in read_all(&mut j) {
            seen.push(entry_no(&t));
        }
        j.position(id).unwrap()
    };
    assert_eq!(seen, (0..1200).collect::<Vec<_>>());
    // resuming at the end (EOF cursor) yields nothing new
    let mut j = open_file(&path);
    j.subscribe(
        id,
        sshd_match(),
        LogEncoding::Utf8,
        Start::After {
            cursor: saved2.cursor.unwrap(),
            time: saved2.time,
        },
    )
    .unwrap();
    assert!(read_all(&mut j).is_empty());
    // fail2ban's time position (no cursor): strictly after the stored time
    let mut j = open_file(&path);
    j.subscribe(
        id,
        sshd_match(),
        LogEncoding::Utf8,
        Start::resume(None, Some(saved.time), 1_700_000_100.0, 600.0),
    )
    .unwrap();
    let rest: Vec<usize> = read_all(&mut j)
        .iter()
        .map(|(_, t, _)| entry_no(t))
        .collect();
    assert_eq!(rest, (500..1200).collect::<Vec<_>>());
    // first start: now - findtime
    let mut j = open_file(&path);
    j.subscribe(
        id,
        sshd_match(),
        LogEncoding::Utf8,
        Start::resume(None, None, 1_700_000_001.0, 0.1),
    )
    .unwrap();
    let first = read_all(&mut j);
    assert_eq!(entry_no(&first[0].1), 900);
    assert_eq!(first.len(), 300);
}

/// Several jails on one reader: each sees its own entries; a jail added
/// mid-stream gets its history while the others lose and repeat nothing.
#[test]
fn shared_reader_several_jails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.journal");
    let mut ents = numbered(0, 300, "sshd.service");
    ents.extend((0..300).map(|i| {
        Ent::syslog(
            T0 + i as u64 * 1000 + 1,
            "nginx.service",
            &format!("srv nginx[1]: entry {i}"),
        )
    }));
    ents.sort_by_key(|e| e.realtime);
    write_journal(&path, &ents);
    let mut j = open_file(&path);
    let (a, b, c) = (SubscriberId(1), SubscriberId(2), SubscriberId(3));
    j.subscribe(a, sshd_match(), LogEncoding::Utf8, Start::Head)
        .unwrap();
    let mut got: HashMap<SubscriberId, Vec<usize>> = HashMap::new();
    j.read(301, &mut |id, l| {
        got.entry(id).or_default().push(entry_no(l.text))
    })
    .unwrap();
    let nginx = JournalMatch::parse(&["_SYSTEMD_UNIT=nginx.service"]).unwrap();
    j.subscribe(b, nginx, LogEncoding::Utf8, Start::Head)
        .unwrap();
    j.subscribe(
        c,
        sshd_match(),
        LogEncoding::Utf8,
        Start::Since(1_700_000_000.2),
    )
    .unwrap();
    for (id, t, _) in read_all(&mut j) {
        got.entry(id).or_default().push(entry_no(&t));
    }
    assert_eq!(got[&a], (0..300).collect::<Vec<_>>());
    assert_eq!(got[&b], (0..300).collect::<Vec<_>>());
    assert_eq!(got[&c], (200..300).collect::<Vec<_>>());
    assert!(j.unsubscribe(b).unwrap());
    write_journal(&path, &numbered(300, 310, "sshd.service"));
    let more = read_all(&mut j);
    assert_eq!(more.len(), 20, "a and c get the 10 new entries each");
}

/// A directory source follows a new journal file appearing (rotation) and
/// files being deleted (vacuum); descriptors do not grow.
#[test]
fn rotation_and_vacuum_followed() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("system.journal");
    write_journal(&first, &numbered(0, 50, "sshd.service"));
    let src = JournalSource::from_options([("journalpath", dir.path().to_str().unwrap())]).unwrap();
    let mut j = Journal::open(&src, JournalOptions::default()).unwrap();
    let id = SubscriberId(1);
    j.subscribe(id, sshd_match(), LogEncoding::Utf8, Start::Head)
        .unwrap();
    assert_eq!(read_all(&mut j).len(), 50);
    let fds0 = open_fds_under(dir.path());
    assert!(fds0 >= 1, "the journal file is open");
    let mut expect = 50;
    for round in 0..5usize {
        // journald-style rotation: archive the active file, start a new one
        let archived = dir
            .path()
            .join(format!("system@0000000000000000000000000000000{round}-0000000000000001-0000000000000001.journal"));
        let active = dir.path().join("system.journal");
        std::fs::rename(&active, &archived).unwrap();
        let lo = 50 + round * 20;
        write_journal(&active, &numbered(lo, lo + 20, "sshd.service"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < 20 && Instant::now() < deadline {
            j.wait(Some(Duration::from_millis(200))).unwrap();
            got.extend(read_all(&mut j).into_iter().map(|(_, t, _)| entry_no(&t)));
        }
        assert_eq!(got, (lo..lo + 20).collect::<Vec<_>>(), "round {round}");
        expect += 20;
        // vacuum: remove the archived file
        std::fs::remove_file(&archived).unwrap();
        j.wait(Some(Duration::from_millis(50))).unwrap();
        assert!(read_all(&mut j).is_empty());
    }
    assert_eq!(expect, 150);
    let fds1 = open_fds_under(dir.path());
    assert!(fds1 <= fds0, "fds grew from {fds0} to {fds1}");
}

/// Live follow: a running journal-remote appends; the reader wakes on the
/// inotify descriptor (poll), no polling loop. Reports latency p50/p90.
#[test]
fn live_follow_latency() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.journal");
    write_journal(&path, &numbered(0, 1, "sshd.service"));
    let src = JournalSource::from_options([("journalpath", dir.path().to_str().unwrap())]).unwrap();
    let mut j = Journal::open(&src, JournalOptions::default()).unwrap();
    let id = SubscriberId(1);
    j.subscribe(id, sshd_match(), LogEncoding::Utf8, Start::Tail)
        .unwrap();
    assert!(
        read_all(&mut j).is_empty(),
        "tail start delivers nothing old"
    );
    let mut w = LiveWriter::start(&path);
    let mut lat = Vec::new();
    for i in 1..=40usize {
        let e = Ent::syslog(
            now_usec(),
            "sshd.service",
            &format!("srv sshd[9]: entry {i}"),
        );
        let t0 = Instant::now();
        w.send(&e);
        let mut got = None;
        while got.is_none() && t0.elapsed() < Duration::from_secs(5) {
            let mut pfd = libc::pollfd {
                fd: j.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, 1000) };
            j.process().unwrap();
            j.read(100, &mut |_, l| got = Some(entry_no(l.text)))
                .unwrap();
        }
        assert_eq!(got, Some(i), "entry {i} delivered");
        lat.push(t0.elapsed());
    }
    lat.sort();
    let p50 = lat[lat.len() / 2];
    let p90 = lat[lat.len() * 9 / 10];
    eprintln!(
        "journal live follow latency: p50 {p50:?} p90 {p90:?} (n={})",
        lat.len()
    );
    assert!(p50 < Duration::from_millis(200), "p50 {p50:?}");
}

/// `journalfiles` with a glob, `journalflags` on the local journal, and an
/// invalid match rejected before anything is installed.
#[test]
fn options_open_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_journal(
        &dir.path().join("a.journal"),
        &numbered(0, 3, "sshd.service"),
    );
    write_journal(
        &dir.path().join("b.journal"),
        &numbered(3, 6, "sshd.service"),
    );
    let pat = format!("{}/*.journal", dir.path().display());
    let src = JournalSource::from_options([("journalfiles", pat.as_str())]).unwrap();
    let mut j = Journal::open(&src, JournalOptions::default()).unwrap();
    j.subscribe(
        SubscriberId(1),
        sshd_match(),
        LogEncoding::Utf8,
        Start::Head,
    )
    .unwrap();
    let got: Vec<usize> = read_all(&mut j)
        .iter()
        .map(|(_, t, _)| entry_no(t))
        .collect();
    assert_eq!(got, (0..6).collect::<Vec<_>>());
    assert!(JournalMatch::parse(&["sshd.service"]).is_err());
    // the machine's own journal opens (it may be empty)
    let local = JournalSource::from_options([("journalflags", "1")]).unwrap();
    let mut l = Journal::open(&local, JournalOptions::default()).unwrap();
    l.subscribe(
        SubscriberId(1),
        sshd_match(),
        LogEncoding::Utf8,
        Start::Tail,
    )
    .unwrap();
    l.read(10, &mut |_, _| {}).unwrap();
}

/// `recheck` (explicit, and the automatic one after quiet reads) re-seeks
/// past the last entry: with matches installed and two subscribers, every
/// entry of each is delivered exactly once across rechecks, and a
/// subscriber still catching up keeps its own start point.
#[test]
fn recheck_neither_repeats_nor_loses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rc.journal");
    let mut ents = numbered(0, 10, "sshd.service");
    ents.extend(numbered(10, 20, "cron.service"));
    write_journal(&path, &ents);
    let src = JournalSource::from_options([("journalpath", dir.path().to_str().unwrap())]).unwrap();
    let mut j = Journal::open(&src, JournalOptions::default()).unwrap();
    let cron = JournalMatch::parse(&["_SYSTEMD_UNIT=cron.service"]).unwrap();
    let sshd = JournalMatch::parse(&["_SYSTEMD_UNIT=sshd.service"]).unwrap();
    j.subscribe(SubscriberId(1), sshd, LogEncoding::Utf8, Start::Head)
        .unwrap();
    j.subscribe(SubscriberId(2), cron, LogEncoding::Utf8, Start::Head)
        .unwrap();
    let mut got: HashMap<SubscriberId, Vec<usize>> = HashMap::new();
    fn take(j: &mut Journal, got: &mut HashMap<SubscriberId, Vec<usize>>) {
        for (id, t, _) in read_all(j) {
            got.entry(id).or_default().push(entry_no(&t));
        }
    }
    take(&mut j, &mut got);
    // explicit rechecks at the end, twice in a row
    j.recheck().unwrap();
    j.recheck().unwrap();
    take(&mut j, &mut got);
    let mut w = LiveWriter::start(&path);
    let mut next = 20;
    for round in 0..6 {
        for _ in 0..3 {
            let unit = if next % 2 == 0 {
                "sshd.service"
            } else {
                "cron.service"
            };
            w.send(&numbered(next, next + 1, unit)[0]);
            next += 1;
        }
        // wait until journal-remote wrote them, reading (and rechecking) meanwhile
        let t0 = Instant::now();
        while got.values().map(Vec::len).sum::<usize>() < next
            && t0.elapsed() < Duration::from_secs(5)
        {
            take(&mut j, &mut got);
            if round % 2 == 0 {
                j.recheck().unwrap();
            }
            std::thread::sleep(Duration::from_millis(7));
        }
        // quiet reads past RECHECK_AFTER trigger the automatic recheck
        std::thread::sleep(f2b_journal::RECHECK_AFTER + Duration::from_millis(5));
        take(&mut j, &mut got);
        take(&mut j, &mut got);
    }
    let sshd: Vec<usize> = (0..10).chain((20..next).filter(|i| i % 2 == 0)).collect();
    let cron: Vec<usize> = (10..20).chain((20..next).filter(|i| i % 2 == 1)).collect();
    assert_eq!(got.get(&SubscriberId(1)), Some(&sshd));
    assert_eq!(got.get(&SubscriberId(2)), Some(&cron));
    // the position after rechecks is the last entry read
    let p = j.position(SubscriberId(1)).unwrap();
    assert!(p.cursor.is_some());
}
