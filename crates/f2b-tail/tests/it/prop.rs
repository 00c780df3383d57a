//! Model-based property test: random interleavings of writes, the three
//! rotation kinds and reads; the delivered lines must be exactly the written
//! ones, in order, minus what the model says is unrecoverable.
//!
//! Unrecoverable, by nature of the rotation and not of the tailer: lines
//! copied away by copytruncate before the tailer read them, and whole file
//! generations that were created and rotated away between two reads (the
//! tailer never saw them). With inotify the server reads within microseconds
//! of each write, so in practice both windows are tiny.

use std::fs::{self, OpenOptions};
use std::time::Duration;

use f2b_tail::{
    Backend, FileTail, LogPathOptions, Start, SubscriberId, TailOptions, Tailer, TailerOptions,
};
use proptest::prelude::*;

use crate::util::{numbers, Writer};

#[derive(Debug, Clone)]
enum Op {
    /// Append this many complete lines.
    Write(u8),
    /// Append one line in two pieces with a read in between.
    WriteSplit(u8),
    /// logrotate `create`: rename away, the writer reopens.
    Rename,
    /// logrotate `copytruncate`.
    CopyTruncate,
    /// Delete; the next write recreates.
    Delete,
    /// Close the descriptor, keep the position (`FileTail::park`).
    Park,
    Read,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..6).prop_map(Op::Write),
        1 => (1u8..40).prop_map(Op::WriteSplit),
        1 => Just(Op::Rename),
        1 => Just(Op::CopyTruncate),
        1 => Just(Op::Delete),
        1 => Just(Op::Park),
        4 => Just(Op::Read),
    ]
}

/// One inode's worth of lines as the model sees it.
#[derive(Debug, Default)]
struct Gen {
    lines: Vec<u32>,
}

struct Model {
    gens: Vec<Gen>,
    /// Generation at the path (None: deleted and not yet recreated).
    at_path: Option<usize>,
    /// Generation the tailer follows, and how many of its lines it has.
    tailer: Option<(usize, usize)>,
    /// The tailer closed its descriptor: a generation rotated away now
    /// cannot be drained any more.
    parked: bool,
    lost: Vec<u32>,
}

impl Model {
    fn path_gen(&mut self) -> usize {
        match self.at_path {
            Some(g) => g,
            None => {
                self.gens.push(Gen::default());
                let g = self.gens.len() - 1;
                self.at_path = Some(g);
                g
            }
        }
    }

    fn rotate_away(&mut self) {
        if let Some(g) = self.at_path.take() {
            match self.tailer {
                Some((t, n)) if t == g && self.parked => {
                    self.lost.extend(self.gens[g].lines[n..].iter().copied());
                    self.tailer = None;
                }
                Some((t, _)) if t == g => {}
                _ => self.lost.extend(self.gens[g].lines.iter().copied()),
            }
        }
    }

    fn truncate(&mut self) {
        if let Some(g) = self.at_path {
            let seen = match self.tailer {
                Some((t, n)) if t == g => n,
                _ => 0,
            };
            self.lost.extend(self.gens[g].lines[seen..].iter().copied());
            self.gens[g].lines.clear();
            if let Some((t, n)) = self.tailer.as_mut() {
                if *t == g {
                    *n = 0;
                }
            }
        }
    }

    fn read(&mut self) {
        // The tailer drains its file, then follows whatever is at the path.
        self.parked = false;
        self.tailer = self.at_path.map(|g| (g, self.gens[g].lines.len()));
    }
}

/// The reader under test: a bare `FileTail`, or the same file through a
/// polling `Tailer` (registry, fan-out) driven by `mark_all_dirty` + `read`.
enum Subject {
    File(Box<FileTail>),
    Tailer(Box<Tailer>),
}

impl Subject {
    /// Parks a bare `FileTail` (the tailer parks only beyond its cap);
    /// returns whether it is parked.
    fn park(&mut self) -> bool {
        match self {
            Subject::File(t) => t.park(),
            Subject::Tailer(_) => false,
        }
    }

    fn read(&mut self, got: &mut Vec<String>) {
        match self {
            Subject::File(t) => {
                t.read_lines(&mut |l| got.push(l.text.to_owned()))
                    .expect("read_lines");
            }
            Subject::Tailer(t) => {
                t.mark_all_dirty();
                let r = t.read(&mut |_, l| got.push(l.text.to_owned()));
                assert!(r.errors.is_empty(), "{:?}", r.errors);
            }
        }
    }
}

fn run(ops: &[Op], grace: bool, via_tailer: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut w = Writer::new(&path);
    fs::write(&path, "").expect("create");
    let opts = TailOptions {
        rotate_grace: if grace {
            Duration::from_secs(60)
        } else {
            Duration::ZERO
        },
        ..TailOptions::default()
    };
    let mut tail = if via_tailer {
        let mut t = Tailer::new(TailerOptions {
            backend: Backend::Polling,
            glob_interval: Duration::from_secs(3600),
            tail: opts,
            ..TailerOptions::default()
        });
        let added = t
            .add_logpath(
                SubscriberId(7),
                &path.to_string_lossy(),
                LogPathOptions::default(),
                &mut |_| None,
            )
            .expect("add");
        assert_eq!(added.len(), 1);
        Subject::Tailer(Box::new(t))
    } else {
        Subject::File(Box::new(
            FileTail::open(&path, Start::Head, opts).expect("open"),
        ))
    };
    let mut model = Model {
        gens: vec![Gen::default()],
        at_path: Some(0),
        tailer: Some((0, 0)),
        parked: false,
        lost: Vec::new(),
    };
    let mut next = 1u32;
    let mut got: Vec<String> = Vec::new();
    let mut rotations = 0;
    for op in ops {
        match op {
            Op::Write(n) => {
                let g = model.path_gen();
                for _ in 0..*n {
                    w.lines(next..=next);
                    model.gens[g].lines.push(next);
                    next += 1;
                }
            }
            Op::WriteSplit(cut) => {
                let g = model.path_gen();
                let line = format!("line {next}\n");
                let cut = usize::from(*cut).min(line.len() - 1);
                w.raw(&line.as_bytes()[..cut]);
                tail.read(&mut got);
                model.read();
                w.raw(&line.as_bytes()[cut..]);
                model.gens[g].lines.push(next);
                next += 1;
            }
            Op::Rename => {
                if path.exists() {
                    rotations += 1;
                    fs::rename(&path, dir.path().join(format!("a.log.{rotations}")))
                        .expect("rename");
                    w.close();
                    model.rotate_away();
                }
            }
            Op::CopyTruncate => {
                if path.exists() {
                    rotations += 1;
                    fs::copy(&path, dir.path().join(format!("a.log.{rotations}"))).expect("copy");
                    OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .expect("open")
                        .set_len(0)
                        .expect("truncate");
                    model.truncate();
                }
            }
            Op::Delete => {
                if path.exists() {
                    fs::remove_file(&path).expect("rm");
                    w.close();
                    model.rotate_away();
                }
            }
            Op::Park => {
                if tail.park() {
                    model.parked = true;
                }
            }
            Op::Read => {
                tail.read(&mut got);
                model.read();
            }
        }
    }
    tail.read(&mut got);
    let want: Vec<u32> = (1..next).filter(|n| !model.lost.contains(n)).collect();
    prop_assert_eq!(numbers(&got), want);
    Ok(())
}

proptest! {
    // PROPTEST_CASES overrides the default of 200 for longer local runs.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
    ))]

    #[test]
    fn delivered_equals_written(
        ops in prop::collection::vec(op(), 1..60),
        grace: bool,
        via_tailer: bool,
    ) {
        run(&ops, grace, via_tailer)?;
    }
}

/// Without copytruncate and with a read between rotations nothing at all
/// may be lost: the model's loss set must stay empty.
#[test]
fn no_loss_when_each_rotation_is_followed_by_a_read() {
    let mut ops = Vec::new();
    for i in 0..60u8 {
        ops.push(Op::Write(i % 4 + 1));
        ops.push(match i % 3 {
            0 => Op::Rename,
            1 => Op::Delete,
            _ => Op::WriteSplit(i % 9),
        });
        ops.push(Op::Write(2));
        ops.push(Op::Read);
    }
    for (grace, via_tailer) in [(false, false), (true, false), (false, true), (true, true)] {
        run(&ops, grace, via_tailer).expect("exact");
    }
}
