//! Each rotation kind, with exact line sequences: nothing lost, nothing twice.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::time::Duration;

use f2b_tail::{FileTail, Line, Rotation, Start, TailEvent, TailOptions};

use crate::util::{numbered, open, read, Writer};

fn rename(path: &Path, to: &str) {
    fs::rename(path, path.with_file_name(to)).expect("rename");
}

#[test]
fn rename_create_reads_old_remainder_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.lines(1..=5);
    let mut t = open(&path, Start::Head);
    assert_eq!(read(&mut t), numbered(1..=5));
    w.lines(6..=7);
    rename(&path, "a.log.1");
    // The daemon has not reopened yet: these go to the renamed file.
    w.lines(8..=8);
    w.reopen();
    w.lines(9..=10);
    let mut got = Vec::new();
    let r = t
        .read_lines(&mut |l| got.push(l.text.to_owned()))
        .expect("read");
    assert_eq!(got, numbered(6..=10));
    assert!(r.events.contains(&TailEvent::Rotated {
        rotation: Rotation::NewFile
    }));
    w.lines(11..=12);
    assert_eq!(read(&mut t), numbered(11..=12));
}

#[test]
fn rename_rotation_keeps_draining_old_file_during_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.lines(1..=2);
    let o = TailOptions {
        rotate_grace: Duration::from_millis(300),
        ..TailOptions::default()
    };
    let mut t = FileTail::open(&path, Start::Head, o).expect("open");
    assert_eq!(read(&mut t), numbered(1..=2));
    rename(&path, "a.log.1");
    let mut new = Writer::new(&path);
    new.lines(3..=3);
    assert_eq!(read(&mut t), numbered(3..=3));
    assert!(t.has_retired());
    // A late line into the old file, and an unterminated one.
    w.raw(b"line 4\nline 5");
    let mut got: Vec<(String, bool)> = Vec::new();
    let mut collect = |l: &Line<'_>| got.push((l.text.to_owned(), l.rotated));
    t.read_lines(&mut collect).expect("read");
    assert_eq!(got, [("line 4".to_owned(), true)]);
    std::thread::sleep(Duration::from_millis(350));
    got.clear();
    let mut collect = |l: &Line<'_>| got.push((l.text.to_owned(), l.rotated));
    let r = t.read_lines(&mut collect).expect("read");
    // After the grace period the partial last line is delivered as is.
    assert_eq!(got, [("line 5".to_owned(), true)]);
    assert!(r.events.contains(&TailEvent::PartialLineFlushed { len: 6 }));
    assert!(!t.has_retired());
}

#[test]
fn copytruncate_detected_by_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.lines(1..=50);
    let mut t = open(&path, Start::Head);
    assert_eq!(read(&mut t), numbered(1..=50));
    fs::copy(&path, path.with_file_name("a.log.1")).expect("copy");
    OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    w.lines(51..=53);
    let mut got = Vec::new();
    let r = t
        .read_lines(&mut |l| got.push(l.text.to_owned()))
        .expect("read");
    assert_eq!(got, numbered(51..=53));
    assert!(r.events.contains(&TailEvent::Rotated {
        rotation: Rotation::Truncated
    }));
    assert_eq!(
        t.checkpoint().map(|c| c.pos),
        fs::metadata(&path).ok().map(|m| m.len())
    );
}

#[test]
fn copytruncate_then_regrown_past_old_position_detected_by_first_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.lines(1..=3);
    let mut t = open(&path, Start::Head);
    assert_eq!(read(&mut t), numbered(1..=3));
    OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    w.lines(4..=40);
    let mut got = Vec::new();
    let r = t
        .read_lines(&mut |l| got.push(l.text.to_owned()))
        .expect("read");
    assert_eq!(got, numbered(4..=40));
    assert!(r.events.contains(&TailEvent::Rotated {
        rotation: Rotation::FirstLineChanged
    }));
}

#[test]
fn delete_recreate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.lines(1..=3);
    let mut t = open(&path, Start::Head);
    assert_eq!(read(&mut t), numbered(1..=3));
    w.lines(4..=5);
    fs::remove_file(&path).expect("rm");
    w.lines(6..=6); // still into the deleted file
    w.reopen();
    w.lines(7..=9);
    assert_eq!(read(&mut t), numbered(4..=9));
    w.lines(10..=10);
    assert_eq!(read(&mut t), numbered(10..=10));
}

#[test]
fn partial_line_of_rotated_file_is_flushed_not_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    w.raw(b"line 1\nline 2 cut");
    let mut t = open(&path, Start::Head); // grace 0
    assert_eq!(read(&mut t), numbered(1..=1));
    rename(&path, "a.log.1");
    w.reopen();
    w.lines(3..=3);
    assert_eq!(read(&mut t), ["line 2 cut", "line 3"]);
}

#[test]
fn several_rotations_in_a_row_each_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    let mut t = {
        w.lines(1..=1);
        open(&path, Start::Head)
    };
    let mut got = read(&mut t);
    let mut n = 1;
    for round in 0..30u32 {
        w.lines(n + 1..=n + 3);
        n += 3;
        match round % 3 {
            0 => {
                rename(&path, &format!("a.log.{round}"));
                w.reopen();
            }
            1 => {
                got.extend(read(&mut t)); // copytruncate needs a read before
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .expect("open")
                    .set_len(0)
                    .expect("truncate");
            }
            _ => {
                fs::remove_file(&path).expect("rm");
                w.reopen();
            }
        }
        w.lines(n + 1..=n + 2);
        n += 2;
        got.extend(read(&mut t));
    }
    assert_eq!(got, numbered(1..=n));
}
