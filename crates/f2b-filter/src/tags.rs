//! Tag expansion for filter regexes (`<HOST>`, `<ADDR>`, `<F-USER>`...), as
//! fail2ban's `Regex._resolveHostTag`.

use crate::UseDns;
use std::collections::HashMap;
use std::sync::OnceLock;

/// IPv4 address regex (fail2ban `IPAddr.IP_4_RE`).
pub const IP4_RE: &str = r"(?:\d{1,3}\.){3}\d{1,3}";
/// IPv6 address regex. fail2ban's ends in `(?:[0-9a-fA-F]{1,4}|(?<=:):)`; the
/// repeated group before it always ends in `:`, so the look-behind always
/// holds and is dropped here: same language and groups, but linear-time.
pub const IP6_RE: &str = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)";
/// fail2ban's text of [`IP6_RE`].
const PY_IP6_RE: &str = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)";

/// An expanded regex as fail2ban shows it (`get <jail> failregex`,
/// `fail2ban-regex`): with fail2ban's text of the IPv6 pattern.
pub fn as_fail2ban_prints(expanded: &str) -> String {
    expanded.replace(IP6_RE, PY_IP6_RE)
}

fn r_ip4() -> String {
    format!("(?:::f{{4,6}}:)?(?P<ip4>{IP4_RE})")
}
fn r_ip6() -> String {
    format!("(?P<ip6>{IP6_RE})")
}
const R_DNS: &str = r"(?P<dns>[\w\-.^_]*\w)";
const R_CIDR: &str = r"(?P<cidr>\d+)";
fn r_addr() -> String {
    format!(r"\[?(?:{}|{})\]?", r_ip4(), r_ip6())
}
fn r_host() -> String {
    format!("(?:{}|{})", r_addr(), R_DNS)
}
fn r_subnet() -> String {
    format!(r"\[?(?:{}|{})(?:/{})?\]?", r_ip4(), r_ip6(), R_CIDR)
}

fn tag_table() -> &'static HashMap<&'static str, String> {
    static T: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m = HashMap::new();
        for (k, v) in [
            ("IP4", r_ip4()),
            ("IP6", r_ip6()),
            ("ADDR", r_addr()),
            ("CIDR", R_CIDR.to_string()),
            ("SUBNET", r_subnet()),
            ("DNS", R_DNS.to_string()),
        ] {
            m.insert(k, v.clone());
        }
        m.insert("F-IP4/", r_ip4());
        m.insert("F-IP6/", r_ip6());
        m.insert("F-ADDR/", r_addr());
        m.insert("F-CIDR/", R_CIDR.to_string());
        m.insert("F-SUBNET/", r_subnet());
        m.insert("F-DNS/", R_DNS.to_string());
        m.insert("F-ID/", r"(?P<fid>\S+)".to_string());
        m.insert("F-PORT/", r"(?P<fport>\w+)".to_string());
        m
    })
}

/// Maps an `F-NAME` tag to its group name (`id` -> `fid`, `port` -> `fport`).
pub fn map_tag_to_opt(tag: &str) -> String {
    let t = tag.to_lowercase();
    match t.as_str() {
        "id" => "fid".into(),
        "port" => "fport".into(),
        _ => t,
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Expands fail2ban tags in a filter regex.
pub fn resolve_host_tag(regex: &str, use_dns: UseDns) -> String {
    let table = tag_table();
    let mut out = String::with_capacity(regex.len() + 64);
    let mut open: HashMap<String, bool> = HashMap::new();
    let mut nl = 0usize;
    let mut rest = regex;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let cand = &rest[i..];
        // FTAG_CRE: </?[\w\-]+/?>
        let b: Vec<(usize, char)> = cand.char_indices().collect();
        let mut j = 1;
        if b.get(j).map(|c| c.1) == Some('/') {
            j += 1;
        }
        let name_start = j;
        while b.get(j).is_some_and(|c| is_word(c.1) || c.1 == '-') {
            j += 1;
        }
        let mut ok = j > name_start;
        if ok && b.get(j).map(|c| c.1) == Some('/') {
            j += 1;
        }
        if ok && b.get(j).map(|c| c.1) != Some('>') {
            ok = false;
        }
        if !ok {
            out.push('<');
            rest = &cand[1..];
            continue;
        }
        let end = b[j].0 + 1;
        let tag = &cand[..end];
        let tn = &tag[1..tag.len() - 1];
        out.push_str(&subst(tn, tag, table, &mut open, &mut nl, use_dns));
        rest = &cand[end..];
    }
    out.push_str(rest);
    out
}

fn subst(
    tn: &str,
    tag: &str,
    table: &HashMap<&'static str, String>,
    open: &mut HashMap<String, bool>,
    nl: &mut usize,
    use_dns: UseDns,
) -> String {
    if tn == "HOST" {
        return if use_dns != UseDns::No {
            r_host()
        } else {
            r_addr()
        };
    }
    if tn == "SKIPLINES" {
        let n = *nl;
        *nl += 1;
        return format!(r"\n(?P<skiplines{n}>(?:(?:.*\n)*?))");
    }
    if let Some(v) = table.get(tn) {
        return v.clone();
    }
    // FCUSTNAME_CRE: ^(/?)F-([A-Z0-9_\-]+)$
    let (close, body) = match tn.strip_prefix('/') {
        Some(b) => (true, b),
        None => (false, tn),
    };
    if let Some(name) = body.strip_prefix("F-") {
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            if close {
                if open.get(name).copied().unwrap_or(false) {
                    return ")".into();
                }
                return tag.to_string();
            }
            open.insert(name.to_string(), true);
            return format!("(?P<{}>", map_tag_to_opt(name));
        }
    }
    tag.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_tags() {
        let r = resolve_host_tag("^<F-USER>.*</F-USER> from <HOST>$", UseDns::Warn);
        assert!(r.starts_with("^(?P<user>.*) from (?:"));
        assert!(r.contains("(?P<dns>"));
        let r = resolve_host_tag("<HOST>", UseDns::No);
        assert!(!r.contains("dns"));
        assert_eq!(resolve_host_tag("</F-X> <foo>", UseDns::No), "</F-X> <foo>");
        assert_eq!(resolve_host_tag("<F-ID/>", UseDns::No), r"(?P<fid>\S+)");
        assert_eq!(
            resolve_host_tag("a<SKIPLINES>b<SKIPLINES>", UseDns::No),
            r"a\n(?P<skiplines0>(?:(?:.*\n)*?))b\n(?P<skiplines1>(?:(?:.*\n)*?))"
        );
    }
}
