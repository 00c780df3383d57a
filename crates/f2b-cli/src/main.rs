//! `f2b`: the one binary. Invoked as `fail2ban-client`, `fail2ban-server` or
//! `fail2ban-regex` (symlink or hard link) it behaves as that tool; otherwise the
//! first argument picks the tool (`f2b client|server|regex|config ...`), and with
//! no tool name `f2b` behaves as the client (`f2b -c DIR -d`, `f2b --str2sec 1h`).

mod client;
mod client_online;
mod config_cmd;
mod import_cmd;
mod regex_cmd;
mod server_cmd;

use std::path::Path;

/// Which tool a command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Client,
    Server,
    Regex,
    Config,
    ImportDb,
}

/// Picks the tool from the program name, then from the first argument.
/// Returns the tool and how many leading arguments (after argv[0]) it consumed.
fn pick_tool(argv0: &str, first: Option<&str>) -> (Tool, usize) {
    let name = Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(argv0);
    match name {
        "fail2ban-client" => return (Tool::Client, 0),
        "fail2ban-server" => return (Tool::Server, 0),
        "fail2ban-regex" => return (Tool::Regex, 0),
        _ => {}
    }
    match first {
        Some("client") => (Tool::Client, 1),
        Some("server") => (Tool::Server, 1),
        Some("regex") => (Tool::Regex, 1),
        Some("config") => (Tool::Config, 1),
        Some("import-db") => (Tool::ImportDb, 1),
        _ => (Tool::Client, 0),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv0 = argv.first().map(String::as_str).unwrap_or("f2b");
    let (tool, skip) = pick_tool(argv0, argv.get(1).map(String::as_str));
    let args = &argv[(1 + skip).min(argv.len())..];
    if matches!(tool, Tool::Regex | Tool::Config) {
        // Output tools end quietly when their reader goes away (`| head`), as
        // Unix filters do, instead of failing (Rust ignores SIGPIPE).
        // SAFETY: restoring a signal's default disposition, before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let code = match tool {
        Tool::Client => client::main(args),
        Tool::Server => server_cmd::main(args),
        Tool::Regex => regex_cmd::main(args),
        Tool::Config => config_cmd::main(args),
        Tool::ImportDb => import_cmd::main(args),
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_from_program_name_wins() {
        assert_eq!(
            pick_tool("/usr/bin/fail2ban-regex", Some("client")),
            (Tool::Regex, 0)
        );
        assert_eq!(pick_tool("fail2ban-server", None), (Tool::Server, 0));
    }

    #[test]
    fn tool_from_first_argument() {
        assert_eq!(pick_tool("f2b", Some("regex")), (Tool::Regex, 1));
        assert_eq!(pick_tool("./f2b", Some("-d")), (Tool::Client, 0));
        assert_eq!(pick_tool("f2b", None), (Tool::Client, 0));
    }
}
