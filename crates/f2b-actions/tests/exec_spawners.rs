//! Both ways of starting a command (`clone` with a pidfd, and tokio's
//! `Command` on kernels without `CLONE_PIDFD`) behave alike. One test: the
//! switch to `Command` is process-wide.

use std::time::{Duration, Instant};

use f2b_actions::exec::{use_command_spawner, Executor};
use f2b_actions::tags::RenderedCommand;

async fn run(ex: &Executor, script: &str, secs: u64) -> f2b_actions::exec::ExecOutcome {
    ex.run(
        &RenderedCommand::plain(script),
        Duration::from_secs(secs),
        "j",
        "a",
    )
    .await
    .unwrap()
}

/// Zombie children of this process.
fn zombies() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|s| {
            let f: Vec<&str> = s
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            f.first() == Some(&"Z") && f.get(1) == Some(&me.as_str())
        })
        .collect()
}

async fn scenarios(which: &str) {
    let ex = Executor::new();
    // Exit code, both streams, stdin at EOF.
    let o = run(&ex, "cat; echo out; echo err >&2; exit 3", 5).await;
    assert_eq!((o.code, o.signal), (Some(3), None), "{which}");
    assert_eq!(
        (o.stdout.as_slice(), o.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..]),
        "{which}"
    );
    // Output past 64 KiB is read (the command is not blocked) and dropped.
    let o = run(&ex, "head -c 200000 /dev/zero; echo e >&2", 5).await;
    assert!(o.success(), "{which}: {o:?}");
    assert_eq!(
        (o.stdout.len(), o.stderr.as_slice()),
        (65536, &b"e\n"[..]),
        "{which}"
    );
    // A signal.
    // Output before and after the first 20 ms (the clone path watches the
    // pipes only from then on).
    let o = run(&ex, "echo a; sleep 0.1; echo b >&2; echo c", 5).await;
    assert_eq!(
        (o.code, o.stdout.as_slice(), o.stderr.as_slice()),
        (Some(0), &b"a\nc\n"[..], &b"b\n"[..]),
        "{which}"
    );
    // A background grandchild keeps stdout open: the shell's end is the
    // command's end, and the unfinished stream is not reported.
    let o = run(&ex, "echo a; echo e >&2; (sleep 2; echo b) &", 5).await;
    assert_eq!(
        (o.code, o.stdout.as_slice(), o.stderr.as_slice()),
        (Some(0), &b""[..], &b""[..]),
        "{which}: {o:?}"
    );
    assert!(
        o.elapsed < std::time::Duration::from_secs(1),
        "{which}: {o:?}"
    );
    let o = run(&ex, "kill -USR1 $$", 5).await;
    assert_eq!((o.code, o.signal), (None, Some(libc::SIGUSR1)), "{which}");
    // SIGPIPE is at its default in the child (Rust ignores it in the daemon).
    let o = run(
        &ex,
        "yes | head -c 1 >/dev/null; grep SigIgn /proc/self/status",
        5,
    )
    .await;
    let ign = String::from_utf8_lossy(&o.stdout);
    let mask = u64::from_str_radix(ign.split_whitespace().nth(1).unwrap_or("x"), 16).unwrap();
    assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{which}: {ign}");
    // Its own process group.
    let o = run(&ex, "ps -o pgid= -p $$; echo $$", 5).await;
    let v: Vec<&str> = std::str::from_utf8(&o.stdout)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(v.first(), v.get(1), "{which}: {v:?}");
    // A program that cannot be started is an error, not a child.
    let bad = Executor::new().with_shell("/nonexistent/sh");
    let e = bad
        .run(
            &RenderedCommand::plain("true"),
            Duration::from_secs(5),
            "j",
            "a",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/sh"), "{which}: {e}");
    // A prefix without a slash is looked up in $PATH.
    let pre = Executor::new().with_prefix(vec!["env".into()]);
    assert_eq!(
        run(&pre, "echo $0", 5).await.stdout,
        b"/bin/sh\n",
        "{which}"
    );
    // The timeout kills the group.
    let t0 = Instant::now();
    let o = run(&ex, "sleep 30 & sleep 30", 1).await;
    assert!(
        o.timed_out && t0.elapsed() < Duration::from_secs(3),
        "{which}: {o:?}"
    );
    // A dropped command leaves no zombie once the next one ran.
    let fut = Box::pin(run(&ex, "sleep 30", 30));
    let _ = tokio::time::timeout(Duration::from_millis(100), fut).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    run(&ex, "true", 5).await;
    assert!(zombies().is_empty(), "{which}: {:?}", zombies());
}

#[tokio::test(flavor = "current_thread")]
async fn clone_and_command_spawners_behave_alike() {
    scenarios("clone").await;
    use_command_spawner();
    scenarios("Command").await;
}
