//! Diagnostics: what fail2ban would log while reading the configuration,
//! with the file, line and jail they concern.

use std::fmt;

/// Severity, with fail2ban's (Python logging) level names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `INFO`
    Info,
    /// `NOTICE` (fail2ban's level 25)
    Notice,
    /// `WARNING`
    Warning,
    /// `ERROR`
    Error,
}

impl Level {
    /// Python's level name.
    pub fn name(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Notice => "NOTICE",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// One diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Severity.
    pub level: Level,
    /// fail2ban's logger name (`fail2ban.jailreader`, ...).
    pub logger: &'static str,
    /// The message, worded as fail2ban words it.
    pub message: String,
    /// The file concerned, if known.
    pub file: Option<String>,
    /// The 1-based line concerned, if known.
    pub line: Option<u32>,
    /// The jail concerned, if any.
    pub jail: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(
        level: Level,
        logger: &'static str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            level,
            logger,
            message: message.into(),
            file: None,
            line: None,
            jail: None,
        }
    }

    pub(crate) fn at(mut self, origin: Option<&crate::ini::Origin>) -> Diagnostic {
        if let Some(o) = origin {
            self.file = Some(o.file.to_string());
            self.line = Some(o.line);
        }
        self
    }

    pub(crate) fn jail(mut self, jail: &str) -> Diagnostic {
        self.jail = Some(jail.to_owned());
        self
    }

    /// `file:line: ` prefix (empty when unknown).
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            _ => String::new(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = self.location();
        if loc.is_empty() {
            write!(f, "{}: {}", self.level.name(), self.message)
        } else {
            write!(f, "{}: {} ({loc})", self.level.name(), self.message)
        }
    }
}
