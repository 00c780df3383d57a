//! fail2ban's log lines for engine events, word for word.
//!
//! [`Event::log_line`] gives the level and message text fail2ban writes
//! (the part after `fail2ban.<module> [pid]: LEVEL`).  Local-time
//! formatting (`MyTime.time2str`, `%Y-%m-%d %H:%M:%S`) needs the time zone,
//! so the caller passes it in.

use crate::ignore::IgnoreSource;
use crate::jail::Event;
use crate::num::{py_float_repr, seconds2str};

/// A fail2ban log level (Python numeric values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// DEBUG (10).
    Debug = 10,
    /// MSG (18): fail2ban's level between DEBUG and INFO.
    Msg = 18,
    /// INFO (20).
    Info = 20,
    /// NOTICE (25).
    Notice = 25,
    /// WARNING (30).
    Warning = 30,
    /// ERROR (40).
    Error = 40,
}

/// The Python logger an event's line comes from (the `fail2ban.<name>`
/// column of the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logger {
    /// `fail2ban.filter`
    Filter,
    /// `fail2ban.actions`
    Actions,
    /// `fail2ban.observer`
    Observer,
}

impl Logger {
    /// The logger name as fail2ban prints it.
    pub fn name(self) -> &'static str {
        match self {
            Logger::Filter => "fail2ban.filter",
            Logger::Actions => "fail2ban.actions",
            Logger::Observer => "fail2ban.observer",
        }
    }
}

/// One rendered log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Source logger.
    pub logger: Logger,
    /// Level.
    pub level: LogLevel,
    /// Message text (what follows the level in fail2ban.log).
    pub text: String,
}

fn float_or_int(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        py_float_repr(x)
    }
}

impl Event {
    /// fail2ban's log line for this event in jail `jail`; `time2str`
    /// formats a Unix time as local `%Y-%m-%d %H:%M:%S`.  `None` for events
    /// fail2ban does not log (`StoreBan`).
    pub fn log_line(&self, jail: &str, time2str: &dyn Fn(f64) -> String) -> Option<LogLine> {
        use LogLevel::*;
        use Logger::*;
        let (logger, level, text) = match self {
            Event::Ignored { id, source } => {
                let by = match source {
                    IgnoreSource::SelfRule => "ignoreself rule",
                    IgnoreSource::Ip => "ip",
                    IgnoreSource::Dns => "dns",
                    IgnoreSource::Command => "command",
                };
                (Filter, Info, format!("[{jail}] Ignore {id} by {by}"))
            }
            Event::Found { id, time } => (
                Filter,
                Info,
                format!("[{jail}] Found {id} - {}", time2str(*time)),
            ),
            Event::Attempt { id, time } => (
                Filter,
                Info,
                format!("[{jail}] Attempt {id} - {}", time2str(*time)),
            ),
            Event::FoundBad {
                id,
                time,
                bancount,
                retry,
                ban,
            } => (
                Observer,
                Info,
                format!(
                    "[{jail}] Found {id}, bad - {}, {bancount} # -> {retry}{}",
                    time2str(*time),
                    if *ban { ", Ban" } else { "" }
                ),
            ),
            Event::BeforeLastBan {
                id,
                time,
                time_of_ban,
            } => (
                Observer,
                Debug,
                format!(
                    "[{jail}] Ignore failure {id} before last ban {} < {}, restored",
                    py_float_repr(*time),
                    float_or_int(*time_of_ban)
                ),
            ),
            Event::Ban { ticket, restored } => (
                Actions,
                Notice,
                format!(
                    "[{jail}] {}Ban {}",
                    if *restored { "Restore " } else { "" },
                    ticket.id
                ),
            ),
            Event::BadIp {
                id,
                bancount,
                last_ban,
                old,
                new,
            } => (
                Observer,
                Info,
                format!(
                    "[{jail}] IP {id} is bad: {bancount} # last {} - incr {} to {}",
                    time2str(*last_ban),
                    seconds2str(*old),
                    seconds2str(*new)
                ),
            ),
            Event::IncreaseBan {
                id,
                bancount,
                bantime,
                end,
            } => {
                let (bt, e) = match end {
                    Some(e) => (seconds2str(*bantime), time2str(*e)),
                    None => ("permanent".to_owned(), "infinite".to_owned()),
                };
                (
                    Observer,
                    Notice,
                    format!("[{jail}] Increase Ban {id} ({bancount} # {bt} -> {e})"),
                )
            }
            Event::StoreBan { .. } => return None,
            Event::ExpiredBan { id } => (
                Actions,
                Info,
                format!("[{jail}] Ignore {id}, expired bantime"),
            ),
            Event::AlreadyBanned { id, since } => {
                let level = if *since < 3.0 {
                    Debug
                } else if *since < 60.0 {
                    Notice
                } else {
                    Warning
                };
                (Actions, level, format!("[{jail}] {id} already banned"))
            }
            Event::Unban { ticket, .. } => {
                (Actions, Notice, format!("[{jail}] Unban {}", ticket.id))
            }
            Event::NotBanned { id } => (Actions, Msg, format!("{id} is not banned")),
            Event::Error { message } => (Observer, Error, message.clone()),
            Event::Warning { message } => (Filter, Warning, message.clone()),
        };
        Some(LogLine {
            logger,
            level,
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use f2b_core::addr::Addr;

    use super::*;
    use crate::num::Num;
    use crate::ticket::Ticket;

    fn t2s(t: f64) -> String {
        format!("T{t}")
    }

    fn line(e: Event) -> (LogLevel, String) {
        let l = e.log_line("sshd", &t2s).unwrap();
        (l.level, l.text)
    }

    #[test]
    fn wording_matches_fail2ban() {
        let id = Addr::parse("1.2.3.4").unwrap();
        let tk = Box::new(Ticket::new(id.clone(), 5.0, vec![]));
        assert_eq!(
            line(Event::Found {
                id: id.clone(),
                time: 5.0
            }),
            (LogLevel::Info, "[sshd] Found 1.2.3.4 - T5".into())
        );
        assert_eq!(
            line(Event::Ban {
                ticket: tk.clone(),
                restored: true
            }),
            (LogLevel::Notice, "[sshd] Restore Ban 1.2.3.4".into())
        );
        assert_eq!(
            line(Event::IncreaseBan {
                id: id.clone(),
                bancount: 2,
                bantime: Num::Int(1200),
                end: Some(7.0)
            }),
            (
                LogLevel::Notice,
                "[sshd] Increase Ban 1.2.3.4 (2 # 20m -> T7)".into()
            )
        );
        assert_eq!(
            line(Event::IncreaseBan {
                id: id.clone(),
                bancount: 3,
                bantime: Num::Int(-1),
                end: None
            })
            .1,
            "[sshd] Increase Ban 1.2.3.4 (3 # permanent -> infinite)"
        );
        assert_eq!(
            line(Event::FoundBad {
                id: id.clone(),
                time: 1.0,
                bancount: 2,
                retry: Num::Float(3.0),
                ban: false
            })
            .1,
            "[sshd] Found 1.2.3.4, bad - T1, 2 # -> 3.0"
        );
        assert_eq!(
            line(Event::FoundBad {
                id: id.clone(),
                time: 1.0,
                bancount: 4,
                retry: Num::Int(5),
                ban: true
            })
            .1,
            "[sshd] Found 1.2.3.4, bad - T1, 4 # -> 5, Ban"
        );
        assert_eq!(
            line(Event::AlreadyBanned {
                id: id.clone(),
                since: 1.0
            })
            .0,
            LogLevel::Debug
        );
        assert_eq!(
            line(Event::AlreadyBanned {
                id: id.clone(),
                since: 30.0
            })
            .0,
            LogLevel::Notice
        );
        assert_eq!(
            line(Event::AlreadyBanned {
                id: id.clone(),
                since: 90.0
            }),
            (LogLevel::Warning, "[sshd] 1.2.3.4 already banned".into())
        );
        assert_eq!(
            line(Event::Ignored {
                id: id.clone(),
                source: IgnoreSource::SelfRule
            })
            .1,
            "[sshd] Ignore 1.2.3.4 by ignoreself rule"
        );
        assert_eq!(
            line(Event::BadIp {
                id: id.clone(),
                bancount: 1,
                last_ban: 2.0,
                old: Num::Int(600),
                new: Num::Int(1200)
            })
            .1,
            "[sshd] IP 1.2.3.4 is bad: 1 # last T2 - incr 10m to 20m"
        );
        assert_eq!(
            line(Event::ExpiredBan { id: id.clone() }).1,
            "[sshd] Ignore 1.2.3.4, expired bantime"
        );
        assert_eq!(
            line(Event::NotBanned {
                id: "9.9.9.9".into()
            }),
            (LogLevel::Msg, "9.9.9.9 is not banned".into())
        );
        assert!(Event::StoreBan { ticket: tk }
            .log_line("sshd", &t2s)
            .is_none());
    }
}
