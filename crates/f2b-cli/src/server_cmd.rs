//! The `server_cmd` tool (not yet built).

/// Runs the tool with its arguments (program name excluded); returns the exit code.
pub fn main(_args: &[String]) -> i32 {
    eprintln!("f2b: server_cmd is not implemented yet");
    2
}
