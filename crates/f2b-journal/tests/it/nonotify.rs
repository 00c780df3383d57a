//! Reading without waiting for the inotify notification (what a timer-driven
//! read sees, e.g. behind journald's 250 ms change coalescing).

use std::time::{Duration, Instant};

use f2b_journal::{Journal, JournalMatch, JournalOptions, JournalSource, Start};
use f2b_tail::{LogEncoding, SubscriberId};

use crate::util::*;

#[test]
fn appended_entries_visible_to_read_without_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.journal");
    write_journal(
        &path,
        &[Ent::syslog(
            now_usec(),
            "sshd.service",
            "srv sshd[1]: entry 0",
        )],
    );
    let src = JournalSource::from_options([("journalpath", dir.path().to_str().unwrap())]).unwrap();
    let mut j = Journal::open(&src, JournalOptions::default()).unwrap();
    j.subscribe(
        SubscriberId(1),
        JournalMatch::all(),
        LogEncoding::Utf8,
        Start::Tail,
    )
    .unwrap();
    j.read(10, &mut |_, _| {}).unwrap();
    let mut w = LiveWriter::start(&path);
    let mut lat = Vec::new();
    for i in 1..=20 {
        let t0 = Instant::now();
        w.send(&Ent::syslog(
            now_usec(),
            "sshd.service",
            &format!("srv sshd[1]: entry {i}"),
        ));
        let mut got = 0;
        while got == 0 && t0.elapsed() < Duration::from_secs(3) {
            j.read(10, &mut |_, _| got += 1).unwrap();
            std::thread::sleep(Duration::from_micros(50));
        }
        assert_eq!(got, 1, "entry {i} seen without process()");
        lat.push(t0.elapsed());
    }
    lat.sort();
    eprintln!("read without notification: p50 {:?}", lat[lat.len() / 2]);
}
