//! Hostile text captured from log lines must never be interpreted by the
//! shell. Every command in PATH an injection could call (`reboot`, `id`,
//! `rm`, `touch`, `sh`, ...) is replaced, via the executor's command prefix,
//! by a script that only creates a marker file; the corpus is rendered into
//! real actions in several quoting contexts and run with `/bin/sh`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use f2b_actions::{ActionEnv, BanTicket, CommandAction, Executor};
use proptest::prelude::*;

struct Trap {
    _dir: common::TempDir,
    bin: PathBuf,
    marker: PathBuf,
    work: PathBuf,
}

fn trap() -> Trap {
    let dir = common::TempDir::new("inj");
    let bin = dir.path().join("bin");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let marker = dir.path().join("PWNED");
    for name in [
        "reboot", "id", "rm", "touch", "whoami", "sh", "bash", "curl", "wget", "nc", "cat", "ls",
        "uname", "sleep", "echo", "kill", "halt", "poweroff",
    ] {
        let p = bin.join(name);
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"{name} $*\" >> '{}'\n",
            marker.display()
        );
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Trap {
        _dir: dir,
        bin,
        marker,
        work,
    }
}

impl Trap {
    fn executor(&self) -> Executor {
        // PATH holds only the trap bin dir, then the directory of printf.
        Executor::new().with_prefix(vec![
            "/usr/bin/env".into(),
            format!("PATH={}:/usr/bin", self.bin.display()),
        ])
    }

    fn assert_clean(&self, what: &str) {
        if self.marker.exists() {
            panic!(
                "shell injection executed for {what:?}: {}",
                std::fs::read_to_string(&self.marker).unwrap_or_default()
            );
        }
    }
}

fn corpus() -> Vec<String> {
    let mut v: Vec<String> = [
        "$(reboot)",
        "`id`",
        "x;rm -rf /",
        "'; touch /tmp/pwned #",
        "\"; touch /tmp/pwned #",
        "x\ntouch pwned",
        "x\rtouch pwned",
        "a|id",
        "a||id",
        "a&&id",
        "a&id",
        "$((1+1))$(id)",
        "${IFS}id",
        "<(id)",
        ">(id)",
        "a>pwned-file",
        "a<pwned-file",
        "\\$(id)",
        "x\\",
        "x'$(id)'",
        "x\"$(id)\"",
        "`\n`id`",
        "$(id",
        "\tid",
        "a\0$(id)",
        "{id,}",
        "~root/$(id)",
        "*",
        "-rf",
        "id",
        "<F-USER>",
        "<matches>",
        "<br>id",
        "$f2bV_matches",
        "ＩＤ＄（id）",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Long, but each argv string stays below the kernel's 128 KiB limit.
    v.push(format!("{}$(id)", "A".repeat(40_000)));
    v
}

/// Contexts in which actions place captured values. Each writes into its own
/// file in `work`.
fn action_props(work: &Path) -> Vec<(String, String)> {
    let w = work.display();
    vec![
        (
            "actionban".into(),
            [
                format!("printf '%s\\n' <matches> >> {w}/unquoted"),
                format!("printf '%s' \"<matches>\" > {w}/dq-matches"),
                format!("printf '%s' \"<F-USER>\" > {w}/dq-user"),
                format!("printf '%s' \"<ip>\" > {w}/dq-ip"),
                format!("printf '%s' \"<ipmatches>\" > {w}/dq-ipmatches"),
                format!("printf '%s' \"<ipjailmatches>\" > {w}/dq-ipjailmatches"),
                format!("printf '%s' '<F-USER>' > {w}/sq-user"),
                format!("printf %b \"Lines: <matches>\\n\" > {w}/printf-b"),
                format!("X=\"$(printf '%s' \"<F-USER>\")\"; printf '%s' \"$X\" > {w}/subst"),
                format!("printf '%s' `printf '%s' <F-USER>` > {w}/backtick"),
                format!("printf '%s' <F-USER><F-OTHER> > {w}/concat"),
            ]
            .join("\n"),
        ),
        (
            "actionunban".into(),
            format!("printf '%s' \"<F-USER>\" > {w}/unban"),
        ),
    ]
}

fn hostile_ticket(v: &str) -> BanTicket {
    let mut t = BanTicket::new(v, 1.0);
    t.matches = vec![v.to_owned(), format!("second {v}")];
    t.data = f2b_actions::TicketData::from([
        ("user".to_owned(), v.to_owned()),
        ("other".to_owned(), v.to_owned()),
    ]);
    t.ip_merged = Some(f2b_actions::MergedInfo {
        matches: vec![v.to_owned()],
        failures: 1,
    });
    t
}

fn action(tr: &Trap) -> CommandAction {
    let env = Arc::new(ActionEnv {
        executor: tr.executor(),
        ..(*common::env_with(Executor::new(), 1.0)).clone()
    });
    CommandAction::new("j", "inj", action_props(&tr.work), env).unwrap()
}

fn file(tr: &Trap, name: &str) -> Vec<u8> {
    std::fs::read(tr.work.join(name)).unwrap_or_default()
}

#[tokio::test(flavor = "current_thread")]
async fn the_trap_works() {
    // Guard against a test that cannot fail: an unescaped value does run.
    let tr = trap();
    let ex = tr.executor();
    ex.run(
        &f2b_actions::RenderedCommand::plain("echo $(id)"),
        std::time::Duration::from_secs(5),
        "j",
        "a",
    )
    .await
    .unwrap();
    assert!(
        tr.marker.exists(),
        "the trap did not catch a deliberate injection"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn injection_corpus_never_executes() {
    let tr = trap();
    let mut a = action(&tr);
    for v in corpus() {
        let t = hostile_ticket(&v);
        a.ban(&t)
            .await
            .unwrap_or_else(|e| panic!("ban failed for {v:?}: {e}"));
        tr.assert_clean(&v);
        let expect = v.replace('\0', "\u{FFFD}").into_bytes();
        assert_eq!(
            file(&tr, "dq-user"),
            expect,
            "double-quoted <F-USER> for {v:?}"
        );
        assert_eq!(file(&tr, "dq-ip"), expect, "double-quoted <ip> for {v:?}");
        assert_eq!(
            file(&tr, "dq-ipmatches"),
            expect,
            "double-quoted <ipmatches> for {v:?}"
        );
        let subst = file(&tr, "subst");
        // $(...) strips trailing newlines, nothing else.
        assert_eq!(
            subst,
            String::from_utf8_lossy(&expect)
                .trim_end_matches('\n')
                .as_bytes(),
            "command substitution for {v:?}"
        );
        let mut m = expect.clone();
        m.extend_from_slice(b"\nsecond ");
        m.extend_from_slice(&expect);
        assert_eq!(
            file(&tr, "dq-matches"),
            m,
            "double-quoted <matches> for {v:?}"
        );
        a.unban(&t).await.unwrap();
        tr.assert_clean(&v);
        assert_eq!(file(&tr, "unban"), expect);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn arbitrary_captures_arrive_verbatim(v in "(\\PC|[\\x00-\\x1f$`'\"\\\\;|&<>(){}\\[\\]*?~#^])*") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let tr = trap();
        let mut a = action(&tr);
        rt.block_on(async {
            let t = hostile_ticket(&v);
            a.ban(&t).await.unwrap();
        });
        tr.assert_clean(&v);
        let expect = v.replace('\0', "\u{FFFD}").into_bytes();
        prop_assert_eq!(file(&tr, "dq-user"), expect);
    }
}
