//! Errors of the actions crate.

/// An error while rendering or running an action command.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Property values reference themselves (directly or in a cycle).
    #[error("properties contain self referencing definitions and cannot be resolved, fail tag: {tag}, found: {found}, value: {value}")]
    Recursion {
        /// The property being substituted.
        tag: String,
        /// The tag found inside its value.
        found: String,
        /// The value at the time of failure.
        value: String,
    },
    /// Substitution of a command did not settle within the depth limit.
    #[error("unexpected too long replacement interpolation, possible self referencing definitions in query: {query}")]
    TooDeep {
        /// The query at the time of failure.
        query: String,
    },
    /// The shell (or the command prefix) could not be spawned.
    #[error("action {jail}/{action}: cannot execute {program}: {source}")]
    Spawn {
        /// Jail name.
        jail: String,
        /// Action name.
        action: String,
        /// Program that failed to start.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An operation (start, stop, flush, reload) failed for some family.
    #[error("Error {operation} action {jail}/{action}: {reason}")]
    Operation {
        /// `starting`, `stopping`, `flushing`, `reloading`.
        operation: &'static str,
        /// Jail name.
        jail: String,
        /// Action name.
        action: String,
        /// Why (`Script error` or a substitution error).
        reason: String,
    },
    /// A ticket command (ban, unban, prolong) failed.
    #[error("Error {what} {ip}")]
    Ticket {
        /// `banning`, `unbanning`, `prolonging`.
        what: &'static str,
        /// The ticket id.
        ip: String,
    },
    /// No such action in the jail.
    #[error("action {action} not found in jail {jail}")]
    NoAction {
        /// Jail name.
        jail: String,
        /// Action name.
        action: String,
    },
    /// An action with this name already exists in the jail.
    #[error("Action {action} already exists")]
    Duplicate {
        /// Action name.
        action: String,
    },
    /// A property value could not be parsed (e.g. `timeout`).
    #[error("invalid value {value:?} for action property {property}")]
    InvalidProperty {
        /// Property name.
        property: String,
        /// Offending value.
        value: String,
    },
}
