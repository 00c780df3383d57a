//! `f2b config`: the configuration tree embedded in the binary.
//!
//! * `f2b config list` prints the relative path of every embedded file.
//! * `f2b config show FILE` prints one embedded file.
//! * `f2b config export [--force] DIR` writes the tree below DIR (refusing
//!   to overwrite existing files unless `--force`), so an administrator can
//!   start from it and add `.local` overrides.

use std::path::Path;

const USAGE: &str = "usage: f2b config list | show FILE | export [--force] DIR";

/// Runs the tool with its arguments (program name excluded); returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["list"] => {
            for (path, _) in f2b_embedded::files() {
                println!("{path}");
            }
            0
        }
        ["show", file] => match f2b_embedded::get(file) {
            Some(text) => {
                print!("{text}");
                0
            }
            None => {
                eprintln!("f2b config: no embedded file {file:?} (see `f2b config list`)");
                1
            }
        },
        ["export", rest @ ..] => export(rest),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    }
}

fn export(args: &[&str]) -> i32 {
    let (force, dir) = match args {
        ["--force", dir] | [dir, "--force"] => (true, *dir),
        [dir] if !dir.starts_with('-') => (false, *dir),
        _ => {
            eprintln!("{USAGE}");
            return 2;
        }
    };
    match f2b_embedded::export(Path::new(dir), force) {
        Ok(written) => {
            println!("f2b config: wrote {} files to {dir}", written.len());
            0
        }
        Err(e) => {
            eprintln!("f2b config: export to {dir} failed: {e}");
            1
        }
    }
}
