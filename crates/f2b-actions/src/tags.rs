//! Tag substitution with fail2ban's semantics.
//!
//! Two kinds of substitution happen before an action command runs:
//!
//! 1. **Static** ([`substitute_properties`], [`replace_tag`]): the action's own
//!    properties (`actionban`, `iptables`, `blocktype?family=inet6`, ...) are
//!    interpolated into each other recursively, with a depth limit, honouring
//!    family-conditional keys. These values come from the configuration and are
//!    trusted.
//! 2. **Dynamic** ([`replace_dynamic_tags`]): ticket values (`<ip>`, `<matches>`,
//!    `<F-USER>`, ...) are substituted in a single, non-recursive pass. These
//!    values may come from log lines and are untrusted: any value that contains
//!    a character the shell could interpret is never pasted into the script.
//!    It is passed as a separate argv entry and referenced as a shell variable
//!    (`$f2bV_matches`), exactly like fail2ban's `replaceDynamicTags` +
//!    `Utils.buildShellCmd`.

use std::collections::{BTreeMap, HashSet};

use crate::error::ActionError;

/// fail2ban's `MAX_TAG_REPLACE_COUNT`.
pub const MAX_TAG_REPLACE_COUNT: usize = 25;

/// Tags whose property values are escaped with [`escape_tag`] during static
/// substitution (fail2ban's `CommandAction._escapedTags`).
pub const ESCAPED_TAGS: [&str; 3] = ["matches", "ipmatches", "ipjailmatches"];

/// A match of fail2ban's `TAG_CRE` (`<([^ <>]+)>`) inside a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagMatch {
    /// Byte offset of `<`.
    pub start: usize,
    /// Byte offset just after `>`.
    pub end: usize,
}

impl TagMatch {
    /// The tag name between the angle brackets.
    pub fn name<'a>(&self, s: &'a str) -> &'a str {
        &s[self.start + 1..self.end - 1]
    }
}

/// Finds the leftmost match of `<([^ <>]+)>` at or after `from`.
pub(crate) fn find_tag(s: &str, from: usize) -> Option<TagMatch> {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < b.len() && b[j] != b'>' && b[j] != b'<' && b[j] != b' ' {
            j += 1;
        }
        if j < b.len() && b[j] == b'>' && j > i + 1 {
            return Some(TagMatch {
                start: i,
                end: j + 1,
            });
        }
        // No match starting at i; the regex engine retries at i+1.
        i += 1;
    }
    None
}

/// Replaces every match of `<([^ <>]+)>` in one left-to-right pass.
/// `f` returns the replacement for a tag name, or `None` to keep the text.
pub(crate) fn sub_tags(s: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut pos = 0;
    while let Some(m) = find_tag(s, pos) {
        out.push_str(&s[last..m.start]);
        match f(m.name(s)) {
            Some(r) => out.push_str(&r),
            None => out.push_str(&s[m.start..m.end]),
        }
        last = m.end;
        pos = m.end;
    }
    out.push_str(&s[last..]);
    out
}

/// Characters fail2ban's `CommandAction.ESCAPE_CRE` treats as dangerous.
fn is_py_escape_char(c: char) -> bool {
    matches!(
        c,
        '\\' | '#'
            | '&'
            | ';'
            | '`'
            | '|'
            | '*'
            | '?'
            | '~'
            | '<'
            | '>'
            | '^'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '$'
            | '\''
            | '"'
            | '\n'
            | '\r'
    )
}

/// Whether a dynamic value must be passed as a shell variable instead of being
/// pasted into the script. fail2ban's set plus, as hardening beyond fail2ban,
/// every other ASCII control character (tab, NUL, ESC, DEL, ...).
pub fn needs_shell_var(value: &str) -> bool {
    value
        .chars()
        .any(|c| is_py_escape_char(c) || c.is_ascii_control())
}

/// fail2ban's `CommandAction.escapeTag`: backslash-escapes the dangerous
/// characters, newline and carriage return become `\n` and `\r`.
pub fn escape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if is_py_escape_char(c) {
            out.push('\\');
            match c {
                '\n' => out.push('n'),
                '\r' => out.push('r'),
                c => out.push(c),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Built-in tags available everywhere (fail2ban's `ADD_REPL_TAGS`).
#[derive(Debug, Clone, Default)]
pub struct BuiltinTags {
    /// `<fq-hostname>`: fully qualified host name.
    pub fq_hostname: String,
    /// `<sh-hostname>`: short host name.
    pub sh_hostname: String,
}

impl BuiltinTags {
    /// Looks up `br`, `sp`, `fq-hostname`, `sh-hostname`.
    pub fn get(&self, tag: &str) -> Option<String> {
        match tag {
            "br" => Some("\n".to_owned()),
            "sp" => Some(" ".to_owned()),
            "fq-hostname" => Some(self.fq_hostname.clone()),
            "sh-hostname" => Some(self.sh_hostname.clone()),
            _ => None,
        }
    }
}

fn cond_get<'a>(
    tags: &'a BTreeMap<String, String>,
    tag: &str,
    conditional: &str,
) -> Option<&'a String> {
    if !conditional.is_empty() {
        let mut k = String::with_capacity(tag.len() + 1 + conditional.len());
        k.push_str(tag);
        k.push('?');
        k.push_str(conditional);
        if let Some(v) = tags.get(&k) {
            return Some(v);
        }
    }
    tags.get(tag)
}

/// fail2ban's `substituteRecursiveTags`: interpolates property values into
/// each other (`b = <a>_3` becomes `3_3`), honouring `tag?family=...` keys when
/// `conditional` is `family=inet4|inet6`. Tags in `ignore` are neither replaced
/// nor substituted into. Unknown tags are left as they are. Self references
/// and chains deeper than [`MAX_TAG_REPLACE_COUNT`] are errors.
pub fn substitute_properties(
    input: &BTreeMap<String, String>,
    conditional: &str,
    ignore: &[&str],
) -> Result<BTreeMap<String, String>, ActionError> {
    let mut tags = input.clone();
    let keys: Vec<String> = tags.keys().cloned().collect();
    let mut done: HashSet<String> = HashSet::new();
    let mut rep_counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    loop {
        let mut rep_flag = false;
        for tag in &keys {
            if ignore.contains(&tag.as_str()) || done.contains(tag) {
                continue;
            }
            let orgval = tags.get(tag).cloned().unwrap_or_default();
            let mut value = orgval.clone();
            let mut rplc = rep_counts.get(tag).cloned().unwrap_or_default();
            let mut pos = 0;
            while let Some(m) = find_tag(&value, pos) {
                let rtag = m.name(&value).to_owned();
                if ignore.contains(&rtag.as_str()) {
                    pos = m.end;
                    continue;
                }
                if &rtag == tag || rplc.get(&rtag).copied().unwrap_or(1) > MAX_TAG_REPLACE_COUNT {
                    return Err(ActionError::Recursion {
                        tag: tag.clone(),
                        found: rtag,
                        value,
                    });
                }
                let Some(repl) = cond_get(&tags, &rtag, conditional).cloned() else {
                    pos = m.end;
                    continue;
                };
                value = value.replace(&format!("<{rtag}>"), &repl);
                *rplc.entry(rtag).or_insert(0) += 1;
                pos = m.start;
            }
            if orgval != value {
                if find_tag(&value, 0).is_some() {
                    rep_counts.insert(tag.clone(), rplc);
                    rep_flag = true;
                }
                tags.insert(tag.clone(), value.clone());
            }
            if !value.contains('<') {
                done.insert(tag.clone());
            }
        }
        if !rep_flag {
            break;
        }
    }
    Ok(tags)
}

/// fail2ban's `CommandAction.replaceTag` for an already substituted property
/// map (see [`substitute_properties`]): replaces tags in `query` repeatedly
/// until nothing changes, with a depth limit. Values of [`ESCAPED_TAGS`] are
/// escaped with [`escape_tag`].
pub fn replace_tag(
    query: &str,
    subst: &BTreeMap<String, String>,
    conditional: &str,
    builtins: &BuiltinTags,
) -> Result<String, ActionError> {
    if !query.contains('<') {
        return Ok(query.to_owned());
    }
    let mut query = query.to_owned();
    let mut count = MAX_TAG_REPLACE_COUNT + 1;
    loop {
        let value = sub_tags(&query, |tag| match cond_get(subst, tag, conditional) {
            Some(v) if ESCAPED_TAGS.contains(&tag) => Some(escape_tag(v)),
            Some(v) => Some(v.clone()),
            None => builtins.get(tag),
        });
        if value == query || !value.contains('<') {
            return Ok(value);
        }
        query = value;
        count -= 1;
        if count == 0 {
            return Err(ActionError::TooDeep { query });
        }
    }
}

/// fail2ban's `mapTag2Opt`: `<F-ID>` is ticket data `fid`, `<F-PORT>` is
/// `fport`, every other name is lower-cased.
pub fn map_tag_to_opt(tag: &str) -> String {
    let t = tag.to_lowercase();
    match t.as_str() {
        "id" => "fid".to_owned(),
        "port" => "fport".to_owned(),
        _ => t,
    }
}

/// A command ready for `sh -c`: the script and the values of its
/// `$f2bV_*` variables, passed as positional parameters `$0`, `$1`, ...
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenderedCommand {
    /// The shell script (first argument after `sh -c`).
    pub script: String,
    /// Untrusted values referenced by the script, in positional order.
    pub args: Vec<String>,
}

impl RenderedCommand {
    /// A command without variables.
    pub fn plain(script: impl Into<String>) -> Self {
        RenderedCommand {
            script: script.into(),
            args: Vec::new(),
        }
    }

    /// True when there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.script.is_empty()
    }
}

/// Finds the leftmost `<F-([A-Z0-9_\-]+)>` at or after `from`.
fn find_ftag(s: &str, from: usize) -> Option<TagMatch> {
    let b = s.as_bytes();
    let mut i = from;
    while i + 3 < b.len() {
        if &b[i..i + 3] == b"<F-" {
            let mut j = i + 3;
            while j < b.len()
                && (b[j].is_ascii_uppercase()
                    || b[j].is_ascii_digit()
                    || b[j] == b'_'
                    || b[j] == b'-')
            {
                j += 1;
            }
            if j > i + 3 && j < b.len() && b[j] == b'>' {
                return Some(TagMatch {
                    start: i,
                    end: j + 1,
                });
            }
        }
        i += 1;
    }
    None
}

/// fail2ban's `CommandAction.replaceDynamicTags` + `Utils.buildShellCmd`.
///
/// `info` resolves ticket tags (`ip`, `matches`, ...); `fdata` holds the
/// filter captures addressed by `<F-NAME>` (missing ones become empty).
/// Every substituted value containing a shell-significant character is moved
/// into a positional argument and referenced as `$f2bV_<tag>`; the script
/// then starts with `f2bV_tag=$0 ... \n`. Substitution is a single pass:
/// values are never re-scanned for tags.
pub fn replace_dynamic_tags(
    cmd: &str,
    mut info: impl FnMut(&str) -> Option<String>,
    fdata: Option<&crate::info::TicketData>,
    builtins: &BuiltinTags,
) -> RenderedCommand {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut escape_val = |tag: &str, value: String| -> String {
        if needs_shell_var(&value) {
            let name: String = format!(
                "f2bV_{}",
                tag.chars()
                    .map(|c| if c.is_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    })
                    .collect::<String>()
            );
            // argv cannot carry NUL; replace it (fail2ban would fail the command).
            let value = if value.contains('\0') {
                value.replace('\0', "\u{FFFD}")
            } else {
                value
            };
            let r = format!("${name}");
            match vars.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => vars.push((name, value)),
            }
            r
        } else {
            value
        }
    };
    let mut real = sub_tags(cmd, |tag| match info(tag) {
        Some(v) => Some(escape_val(tag, v)),
        None => builtins.get(tag),
    });
    if real.contains('<') {
        let empty = crate::info::TicketData::new();
        let data = fdata.unwrap_or(&empty);
        let mut out = String::with_capacity(real.len());
        let mut last = 0;
        let mut pos = 0;
        while let Some(m) = find_ftag(&real, pos) {
            out.push_str(&real[last..m.start]);
            let key = map_tag_to_opt(&real[m.start + 3..m.end - 1]);
            if let Some(v) = data.get(&key) {
                out.push_str(&escape_val(&format!("F_{key}"), v.to_owned()));
            }
            last = m.end;
            pos = m.end;
        }
        out.push_str(&real[last..]);
        real = out;
    }
    if vars.is_empty() {
        return RenderedCommand::plain(real);
    }
    let mut stat = String::new();
    let mut args = Vec::with_capacity(vars.len());
    for (i, (name, value)) in vars.into_iter().enumerate() {
        // fail2ban writes `$10`, which sh reads as `${1}0`; braces are correct.
        if i < 10 {
            stat.push_str(&format!("{name}=${i} "));
        } else {
            stat.push_str(&format!("{name}=${{{i}}} "));
        }
        args.push(value);
    }
    stat.push('\n');
    stat.push_str(&real);
    RenderedCommand { script: stat, args }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The hand-written scanners agree with fail2ban's regexes.
        #[test]
        fn scanners_match_the_regexes(s in "[<> aF\\-Z0-9_*]{0,40}") {
            let tag = regex::Regex::new(r"<([^ <>]+)>").unwrap();
            let ours = sub_tags(&s, |t| Some(format!("[{t}]")));
            let theirs = tag.replace_all(&s, "[$1]").into_owned();
            prop_assert_eq!(ours, theirs);
            let ftag = regex::Regex::new(r"<F-([A-Z0-9_\-]+)>").unwrap();
            let mut found = Vec::new();
            let mut pos = 0;
            while let Some(m) = find_ftag(&s, pos) {
                found.push((m.start, m.end));
                pos = m.end;
            }
            let expect: Vec<(usize, usize)> = ftag.find_iter(&s).map(|m| (m.start(), m.end())).collect();
            prop_assert_eq!(found, expect);
        }

        /// A value with a shell-significant character never appears in the
        /// script; one without appears verbatim.
        #[test]
        fn values_are_variables_or_inert(v in "\\PC{0,20}") {
            let data = crate::info::TicketData::from([("user".to_owned(), v.clone())]);
            let r = replace_dynamic_tags("x <F-USER> y", |_| None, Some(&data), &BuiltinTags::default());
            if needs_shell_var(&v) {
                prop_assert_eq!(r.script, "f2bV_F_user=$0 \nx $f2bV_F_user y");
                prop_assert_eq!(r.args, vec![v.replace('\0', "\u{FFFD}")]);
            } else {
                prop_assert_eq!(r.script, format!("x {v} y"));
                prop_assert!(r.args.is_empty());
            }
        }
    }

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn find_tag_follows_regex_semantics() {
        assert_eq!(
            find_tag("a <b> c", 0).map(|m| (m.start, m.end)),
            Some((2, 5))
        );
        assert_eq!(
            find_tag("<a <b>", 0).map(|m| (m.start, m.end)),
            Some((3, 6))
        );
        assert_eq!(find_tag("<>", 0), None);
        assert_eq!(find_tag("<a b>", 0), None);
        assert_eq!(
            find_tag("<<x>>", 0).map(|m| m.name("<<x>>").to_owned()),
            Some("x".into())
        );
    }

    #[test]
    fn recursive_and_conditional() {
        let p = props(&[
            ("iptables", "iptables <lockingopt>"),
            ("iptables?family=inet6", "ip6tables <lockingopt>"),
            ("lockingopt", "-w"),
            ("actionban", "<iptables> -I f2b-x 1 -s <ip> -j <blocktype>"),
            ("blocktype", "REJECT"),
            ("blocktype?family=inet6", "REJECT6"),
        ]);
        let b = BuiltinTags::default();
        let s4 = substitute_properties(&p, "family=inet4", &ESCAPED_TAGS).unwrap();
        assert_eq!(
            replace_tag("<actionban>", &s4, "family=inet4", &b).unwrap(),
            "iptables -w -I f2b-x 1 -s <ip> -j REJECT"
        );
        let s6 = substitute_properties(&p, "family=inet6", &ESCAPED_TAGS).unwrap();
        assert_eq!(
            replace_tag("<actionban>", &s6, "family=inet6", &b).unwrap(),
            "ip6tables -w -I f2b-x 1 -s <ip> -j REJECT6"
        );
    }

    #[test]
    fn self_reference_is_an_error() {
        let p = props(&[("a", "x<a>")]);
        assert!(substitute_properties(&p, "", &[]).is_err());
        let p = props(&[("a", "<b>"), ("b", "<a>")]);
        assert!(substitute_properties(&p, "", &[]).is_err());
    }

    #[test]
    fn dynamic_values_become_variables() {
        let b = BuiltinTags::default();
        let r = replace_dynamic_tags(
            "echo <ip> <matches><br><F-USER><F-NOPE>",
            |t| match t {
                "ip" => Some("1.2.3.4".into()),
                "matches" => Some("a;b".into()),
                _ => None,
            },
            Some(&crate::info::TicketData::from([(
                "user".to_owned(),
                "$(id)".to_owned(),
            )])),
            &b,
        );
        assert_eq!(
            r.script,
            "f2bV_matches=$0 f2bV_F_user=$1 \necho 1.2.3.4 $f2bV_matches\n$f2bV_F_user"
        );
        assert_eq!(r.args, vec!["a;b".to_string(), "$(id)".to_string()]);
    }

    #[test]
    fn escape_tag_matches_fail2ban() {
        assert_eq!(escape_tag("a$b\nc'd"), "a\\$b\\nc\\'d");
    }
}
