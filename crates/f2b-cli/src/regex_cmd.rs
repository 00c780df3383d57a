//! `f2b regex` / `fail2ban-regex`: test filter regexes against a log.
//!
//! Output layout follows fail2ban-regex 1.0.2 (Results, per-regex hit
//! counts, date template hits, `Lines:` summary, missed/ignored lists);
//! `-o/--out` prints failure information only; `--json` (ours) prints a
//! machine-readable report.

use f2b_core::value::{repr_float, Value};
use f2b_filter::{Failure, Filter, FilterSpec, TupleLine, UseDns};
use std::io::Write;
use std::path::Path;

#[path = "regex_journal.rs"]
mod regex_journal;
use regex_journal::Input;

const USAGE: &str = "Usage: fail2ban-regex [OPTIONS] <LOG> <REGEX> [IGNOREREGEX]

LOG: a string, a file name, REGEX: a string, a filter name (with options,
e.g. `sshd[mode=aggressive]`) or a filter file.

Options:
  -c, --config=DIR      set alternate config directory (/etc/fail2ban)
  -d, --datepattern=P   set custom pattern used to match date/times
  --timezone, --TZ=TZ   set time-zone used by convert time format
  -e, --encoding=ENC    file encoding: UTF-8 (default), latin-1, ascii,
                        cp1252, iso-8859-15 (invalid bytes replaced)
  -r, --raw             raw hosts, don't resolve dns
  --usedns=MODE         yes|warn|no|raw
  -L, --maxlines=N      maxlines for multi-line regex
  -m, --journalmatch=M  journalctl style matches (systemd-journal only)
  -l, --log-level=L     log level (accepted, ignored)
  -v, --verbose         increase verbosity
  --verbosity=N         set verbosity (0..4)
  --VD, --verbose-date  verbose date patterns/regex in output
  --no-check-all        disable check for all regex's
  -o, --out=TOKEN       print failure information only (row, id, ip, msg,
                        host, ip4, ip6, dns, matches, or a <tag> template)
  -i                    same as --print-all-ignored --print-no-missed
  --print-no-missed, --print-no-ignored, --print-all-matched,
  --print-all-missed, --print-all-ignored
  --json                machine-readable JSON report (f2b extension)
";

#[derive(Debug, Default)]
struct Opts {
    config: String,
    datepattern: Option<String>,
    timezone: Option<String>,
    raw: bool,
    usedns: Option<String>,
    maxlines: usize,
    verbose: u32,
    verbose_date: bool,
    check_all: bool,
    out: Option<String>,
    print_no_missed: bool,
    print_no_ignored: bool,
    print_all_matched: bool,
    print_all_missed: bool,
    print_all_ignored: bool,
    json: bool,
    journalmatch: Option<String>,
    encoding: Option<String>,
    args: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        config: "/etc/fail2ban".into(),
        check_all: true,
        ..Default::default()
    };
    let mut i = 0;
    let mut rest_positional = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if rest_positional || !a.starts_with('-') || a == "-" {
            o.args.push(a.clone());
            continue;
        }
        if a == "--" {
            rest_positional = true;
            continue;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if a.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        // short options with attached value: -oVALUE
        let (name, inline) = if !name.starts_with("--") && name.len() > 2 && inline.is_none() {
            (name[..2].to_string(), Some(name[2..].to_string()))
        } else {
            (name, inline)
        };
        let val = |i: &mut usize| -> Result<String, String> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            let v = args
                .get(*i)
                .cloned()
                .ok_or_else(|| format!("{name} option requires an argument"))?;
            *i += 1;
            Ok(v)
        };
        match name.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "-c" | "--config" => o.config = val(&mut i)?,
            "-d" | "--datepattern" => o.datepattern = Some(val(&mut i)?),
            "--timezone" | "--TZ" => o.timezone = Some(val(&mut i)?),
            "-e" | "--encoding" => o.encoding = Some(val(&mut i)?),
            "-r" | "--raw" => o.raw = true,
            "--usedns" => o.usedns = Some(val(&mut i)?),
            "-L" | "--maxlines" => {
                o.maxlines = val(&mut i)?
                    .parse()
                    .map_err(|_| "invalid integer value for --maxlines".to_string())?
            }
            "-m" | "--journalmatch" => o.journalmatch = Some(val(&mut i)?),
            "-l" | "--log-level" => {
                val(&mut i)?;
            }
            "-v" | "--verbose" => o.verbose += 1,
            "-vv" => o.verbose += 2,
            "--verbosity" => {
                o.verbose = val(&mut i)?
                    .parse()
                    .map_err(|_| "invalid integer value for --verbosity".to_string())?
            }
            "--VD" | "--verbose-date" => o.verbose_date = true,
            "-D" | "--debuggex" | "-t" | "--log-traceback" | "--full-traceback" => {}
            "--no-check-all" => o.check_all = false,
            "-o" | "--out" => o.out = Some(val(&mut i)?),
            "-i" => {
                o.print_all_ignored = true;
                o.print_no_missed = true;
            }
            "--print-no-missed" => o.print_no_missed = true,
            "--print-no-ignored" => o.print_no_ignored = true,
            "--print-all-matched" => o.print_all_matched = true,
            "--print-all-missed" => o.print_all_missed = true,
            "--print-all-ignored" => o.print_all_ignored = true,
            "--json" => o.json = true,
            "-V" | "--version" => {
                println!("1.0.2");
                std::process::exit(0);
            }
            other => return Err(format!("no such option: {other}")),
        }
    }
    Ok(o)
}

fn shortstr(s: &str, l: usize) -> String {
    if s.chars().count() > l {
        let t: String = s.chars().take(l - 3).collect();
        format!("{t}...")
    } else {
        s.to_string()
    }
}

fn pprint_list(out: &mut Vec<String>, l: &[String], header: Option<&str>) {
    if l.is_empty() {
        return;
    }
    let mut s = String::new();
    if let Some(h) = header {
        s.push_str(&format!("|- {h}\n"));
    }
    s.push_str("|  ");
    s.push_str(&l.join("\n|  "));
    s.push_str("\n`-");
    out.push(s);
}

struct RegexStat {
    regex: String,
    hits: u64,
    ips: Vec<(String, f64, bool)>,
}

/// Where a REGEX argument leads: a filter (file) or a literal regex.
enum RegexSource {
    /// The filter, its failregexes and its `journalmatch` lines (words).
    Filter(FilterSpec, Vec<String>, Vec<Vec<String>>),
    Literal(String),
}

fn looks_like_filter(v: &str) -> bool {
    // ^/{0,3}[\w/_\-.]+(?:\[.*\])?$
    let body = v.trim_start_matches('/');
    if v.len() - body.len() > 3 {
        return false;
    }
    let (name, opts) = match body.find('[') {
        Some(p) => (&body[..p], Some(&body[p..])),
        None => (body, None),
    };
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "/_-.".contains(c))
        && opts.is_none_or(|o| o.ends_with(']'))
}

fn read_regex(
    o: &Opts,
    value: &str,
    kind: &str,
    header: &mut Vec<String>,
) -> Result<RegexSource, String> {
    if kind == "fail" && looks_like_filter(value) {
        let name = value.split('[').next().unwrap_or(value);
        let tail: String = name.chars().rev().take(6).collect();
        let tries: Vec<String> = if tail.contains('.') {
            vec![name.to_string()]
        } else {
            vec![
                name.to_string(),
                format!("{name}.conf"),
                format!("{name}.local"),
            ]
        };
        let base = Path::new(&o.config);
        let found = tries.iter().find_map(|t| {
            let p = if t.contains('/') {
                Path::new(t).to_path_buf()
            } else if base.file_name().is_some_and(|n| n == "filter.d") {
                base.join(t)
            } else {
                base.join("filter.d").join(t)
            };
            p.is_file().then_some(p)
        });
        if let Some(path) = found {
            let is_name = !name.contains('/') && !tail.contains('.');
            let (conf_dir, spec) = if is_name {
                let stem = Path::new(name)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or(name)
                    .to_string();
                header.push(format!(
                    "Use {:>11} filter file : {}, basedir: {}",
                    "failregex", stem, o.config
                ));
                (o.config.clone(), value.to_string())
            } else {
                let abs = std::fs::canonicalize(&path).unwrap_or(path.clone());
                header.push(format!("Use {:>11} file : {}", "failregex", name));
                let opts = value.find('[').map(|p| &value[p..]).unwrap_or("");
                (o.config.clone(), format!("{}{}", abs.display(), opts))
            };
            if let Some(p) = value.find('[') {
                header.push(format!("Use   filter options : {}", &value[p..]));
            }
            let log = o.args.first().map_or("", String::as_str);
            let overrides = regex_journal::filter_overrides(log);
            let r = f2b_config::read_filter_dir(Path::new(&conf_dir), &spec, &overrides).map_err(
                |e| format!("Wrong config file: {e}\nERROR: failed to load filter {value}"),
            )?;
            let journalmatch = r.journalmatch_words();
            let spec = FilterSpec {
                prefregex: r.prefregex,
                failregex: r.failregex.clone(),
                ignoreregex: r.ignoreregex,
                maxlines: r.maxlines.unwrap_or(0) as usize,
                datepattern: r.datepattern,
                ..Default::default()
            };
            return Ok(RegexSource::Filter(spec, r.failregex, journalmatch));
        }
    }
    header.push(format!(
        "Use {:>11} line : {}",
        format!("{kind}regex"),
        shortstr(value, 53)
    ));
    Ok(RegexSource::Literal(value.to_string()))
}

/// `-e/--encoding`: the log file encodings `f2b regex` decodes (Python's
/// codec names and aliases); invalid bytes become U+FFFD like Python's
/// `decode(enc, 'replace')` that fail2ban's `FileContainer` falls back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Latin1,
    Ascii,
    Cp1252,
    Latin9,
}

/// Windows-1252 at 0x80..=0x9F (`None`: undefined, decoded as U+FFFD).
const CP1252_HIGH: [Option<char>; 32] = [
    Some('\u{20ac}'),
    None,
    Some('\u{201a}'),
    Some('\u{192}'),
    Some('\u{201e}'),
    Some('\u{2026}'),
    Some('\u{2020}'),
    Some('\u{2021}'),
    Some('\u{2c6}'),
    Some('\u{2030}'),
    Some('\u{160}'),
    Some('\u{2039}'),
    Some('\u{152}'),
    None,
    Some('\u{17d}'),
    None,
    None,
    Some('\u{2018}'),
    Some('\u{2019}'),
    Some('\u{201c}'),
    Some('\u{201d}'),
    Some('\u{2022}'),
    Some('\u{2013}'),
    Some('\u{2014}'),
    Some('\u{2dc}'),
    Some('\u{2122}'),
    Some('\u{161}'),
    Some('\u{203a}'),
    Some('\u{153}'),
    None,
    Some('\u{17e}'),
    Some('\u{178}'),
];

impl Encoding {
    /// Python-style lookup: case-insensitive, `_`/` ` same as `-`.
    fn lookup(name: &str) -> Result<Encoding, String> {
        let n = name.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        Ok(match n.as_str() {
            "utf-8" | "utf8" | "u8" | "utf" | "cp65001" => Encoding::Utf8,
            "latin-1" | "latin1" | "latin" | "l1" | "iso-8859-1" | "iso8859-1" | "8859"
            | "cp819" | "iso-ir-100" => Encoding::Latin1,
            "ascii" | "us-ascii" | "646" | "us" => Encoding::Ascii,
            "cp1252" | "windows-1252" => Encoding::Cp1252,
            "iso-8859-15" | "iso8859-15" | "latin-9" | "latin9" | "l9" => Encoding::Latin9,
            _ => {
                return Err(format!(
                    "unknown encoding: {name} (f2b regex reads UTF-8, latin-1, ascii, cp1252, iso-8859-15)"
                ))
            }
        })
    }

    /// Decodes one line.
    fn decode(self, buf: Vec<u8>) -> String {
        // ASCII text reads the same in all of them: no copy
        if buf.is_ascii() {
            return String::from_utf8(buf).unwrap_or_default();
        }
        match self {
            // valid UTF-8 (the usual case) is taken as is, without the copy
            // `from_utf8_lossy(..).into_owned()` makes
            Encoding::Utf8 => match String::from_utf8(buf) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            },
            Encoding::Latin1 => buf.iter().map(|&b| char::from(b)).collect(),
            Encoding::Ascii => buf
                .iter()
                .map(|&b| {
                    if b.is_ascii() {
                        char::from(b)
                    } else {
                        '\u{fffd}'
                    }
                })
                .collect(),
            Encoding::Cp1252 => buf
                .iter()
                .map(|&b| match b {
                    0x80..=0x9f => CP1252_HIGH[usize::from(b - 0x80)].unwrap_or('\u{fffd}'),
                    b => char::from(b),
                })
                .collect(),
            Encoding::Latin9 => buf
                .iter()
                .map(|&b| match b {
                    0xa4 => '\u{20ac}',
                    0xa6 => '\u{160}',
                    0xa8 => '\u{161}',
                    0xb4 => '\u{17d}',
                    0xb8 => '\u{17e}',
                    0xbc => '\u{152}',
                    0xbd => '\u{153}',
                    0xbe => '\u{178}',
                    b => char::from(b),
                })
                .collect(),
        }
    }
}

/// The input lines, one at a time; a file's are read into one reused buffer.
enum Lines {
    File(FileLines),
    Items(Box<dyn Iterator<Item = Input>>, Option<Input>),
}

/// A file's lines, read in blocks into one reused buffer; a line is used
/// where it is in the block.
struct FileLines {
    rd: std::io::Take<std::fs::File>,
    /// `block[pos..filled]` is read and not yet handed out.
    block: Vec<u8>,
    pos: usize,
    filled: usize,
    eof: bool,
    /// A line decoded from another encoding or from invalid UTF-8.
    text: String,
    enc: Encoding,
    /// `block[pos..valid_to]` is valid UTF-8 and ends after a newline (or
    /// is empty): checked once for many lines, not line by line.
    valid_to: usize,
    /// `block[pos..ascii_to]` is all ASCII (within `valid_to`).
    ascii_to: usize,
}

impl FileLines {
    /// The next line (with its newline) and whether it is known to be all
    /// ASCII.
    fn next(&mut self) -> Option<(&str, bool)> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.block[self.pos..self.filled]) {
                let (a, b) = (self.pos, self.pos + i + 1);
                self.pos = b;
                if matches!(self.enc, Encoding::Utf8) {
                    if b > self.valid_to {
                        // the complete lines read, at once (up to an
                        // invalid byte: its line is checked below); all
                        // ASCII (most logs) is valid
                        let end = memchr::memrchr(b'\n', &self.block[a..self.filled])
                            .map_or(b, |j| a + j + 1);
                        let ascii = self.block[a..end].is_ascii();
                        let ok = if ascii {
                            end
                        } else {
                            match std::str::from_utf8(&self.block[a..end]) {
                                Ok(_) => end,
                                Err(e) => {
                                    memchr::memrchr(b'\n', &self.block[a..a + e.valid_up_to()])
                                        .map_or(a, |j| a + j + 1)
                                }
                            }
                        };
                        self.valid_to = ok;
                        self.ascii_to = if ascii { ok } else { a };
                    }
                    if b <= self.valid_to {
                        // SAFETY: `block[a..valid_to]` is valid UTF-8 and
                        // `b` follows a newline in it (a character boundary)
                        let s = unsafe { std::str::from_utf8_unchecked(&self.block[a..b]) };
                        return Some((s, b <= self.ascii_to));
                    }
                }
                let line = &self.block[a..b];
                // ASCII and valid UTF-8 (read as UTF-8) are used in place
                let ascii = line.is_ascii();
                if matches!(self.enc, Encoding::Utf8) || ascii {
                    if let Ok(s) = std::str::from_utf8(line) {
                        return Some((s, ascii));
                    }
                }
                self.text = self.enc.decode(line.to_vec());
                return Some((&self.text, ascii));
            }
            // fail2ban's FileContainer waits for the line end: a last line
            // without newline is not (yet) processed
            if self.eof {
                return None;
            }
            // the partial line to the front, room for more
            self.block.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.pos = 0;
            // (the partial line moved holds no newline: never checked)
            self.valid_to = 0;
            self.ascii_to = 0;
            if self.filled == self.block.len() {
                self.block.resize(self.block.len() * 2, 0);
            }
            match std::io::Read::read(&mut self.rd, &mut self.block[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.eof = true,
            }
        }
    }
}

/// One input line, borrowed from [`Lines`].
enum Item<'a> {
    Text(&'a str),
    /// A line of a log file (with its newline; no other newline in it),
    /// and whether it is known to be all ASCII.
    Read(&'a str, bool),
    Timed {
        line: &'a str,
        tuple: TupleLine,
        time: f64,
    },
}

impl Lines {
    fn items(it: impl Iterator<Item = Input> + 'static) -> Lines {
        Lines::Items(Box::new(it), None)
    }

    fn next(&mut self) -> Option<Item<'_>> {
        match self {
            Lines::File(f) => f.next().map(|(l, a)| Item::Read(l, a)),
            Lines::Items(it, cur) => {
                *cur = it.next();
                match cur.as_mut()? {
                    Input::Text(s) => Some(Item::Text(s)),
                    Input::Timed { line, tuple, time } => Some(Item::Timed {
                        line,
                        tuple: std::mem::take(tuple),
                        time: *time,
                    }),
                }
            }
        }
    }
}

/// Python's `str(dict)` of fields, in their order.
fn dict_repr(fields: Vec<(&str, Value)>) -> String {
    Value::Dict(
        fields
            .into_iter()
            .map(|(k, v)| (Value::Str(k.to_string()), v))
            .collect(),
    )
    .repr()
}

fn py_str(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::None => "None".into(),
        Value::Float(f) => repr_float(*f),
        other => other.repr(),
    }
}

fn time_str(f: &Failure) -> String {
    match f.time {
        Some(t) if f.time_is_int => format!("{}", t as i64),
        Some(t) => repr_float(t),
        None => "None".into(),
    }
}

/// A ticket's time: the failure time, or "now" when none was found
/// (fail2ban's `Ticket(time=None)`).
fn ticket_time_str(f: &Failure, now: f64) -> String {
    if f.time.is_none() {
        repr_float(now)
    } else {
        time_str(f)
    }
}

/// `-o <tag template>`: replaces `<ip>`, `<fid>`, `<time>`, `<matches>`,
/// `<msg>`, `<F-NAME>` and ticket fields.
fn format_out(tpl: &str, f: &Failure, now: f64) -> Vec<String> {
    let fields = f.fields();
    let matches = f.matches();
    let id =
        f.id.as_ref()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "None".into());
    let mut multi = false;
    let mut s = String::new();
    let mut rest = tpl;
    while let Some(p) = rest.find('<') {
        s.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        let Some(e) = after.find('>') else {
            s.push_str(&rest[p..]);
            rest = "";
            break;
        };
        let tag = &after[..e];
        let valid = !tag.is_empty()
            && tag
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !valid {
            s.push('<');
            rest = after;
            continue;
        }
        let rep: Option<String> = match tag {
            "ip" => Some(fields.get("ip").map(py_str).unwrap_or_else(|| id.clone())),
            "fid" => Some(id.clone()),
            "time" => Some(ticket_time_str(f, now)),
            "failures" => Some("1".into()),
            "matches" => Some(matches.join("\n")),
            "msg" => {
                if matches.len() <= 1 && !multi {
                    Some(matches.join("\n"))
                } else {
                    multi = true;
                    Some("\x00msg\x00".into())
                }
            }
            "br" => Some("\n".into()),
            "sp" => Some(" ".into()),
            t if t.starts_with("F-") => {
                let k = t[2..].to_lowercase();
                let k = match k.as_str() {
                    "id" => "fid".to_string(),
                    "port" => "fport".to_string(),
                    _ => k,
                };
                Some(
                    fields
                        .get(k.as_str())
                        .filter(|v| !matches!(v, Value::None))
                        .map(py_str)
                        .unwrap_or_default(),
                )
            }
            t => fields
                .get(t)
                .filter(|v| !matches!(v, Value::None))
                .map(py_str),
        };
        match rep {
            Some(r) => s.push_str(&if tag == "msg" {
                r
            } else {
                r.replace('\0', "\\x00")
            }),
            None => s.push_str(&format!("<{tag}>")),
        }
        rest = &after[e + 1..];
    }
    s.push_str(rest);
    if multi {
        matches
            .iter()
            .map(|m| s.replace("\x00msg\x00", m))
            .collect()
    } else {
        vec![s]
    }
}

fn out_failure(fmt: &str, f: &Failure, now: f64, w: &mut impl Write) -> std::io::Result<()> {
    let id =
        f.id.as_ref()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "None".into());
    match fmt {
        "id" | "fid" => writeln!(w, "{id}"),
        "ip" => writeln!(w, "{}", f.fields().get("ip").map(py_str).unwrap_or(id)),
        "msg" => {
            for m in f.match_lines() {
                writeln!(w, "{m}")?;
            }
            Ok(())
        }
        "row" => writeln!(
            w,
            "[{},\t{},\t{}],",
            Value::Str(id).repr(),
            time_str(f),
            dict_repr(f.fields_ordered())
        ),
        f2 if !f2.contains('<') => writeln!(
            w,
            "{}",
            f.fields()
                .get(f2)
                .map(py_str)
                .unwrap_or_else(|| "None".into())
        ),
        tpl => {
            for l in format_out(tpl, f, now) {
                writeln!(w, "{l}")?;
            }
            Ok(())
        }
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The filter settings of a `fail2ban-regex` run.
fn configure(flt: &mut Filter, o: &Opts) {
    flt.check_find_time = false;
    flt.return_raw_host = o.raw;
    flt.check_all_regex = o.check_all && o.out.is_none();
    flt.ignore_pending = o.out.is_some();
    flt.keep_pref_groups = o.verbose > 0;
    // the report counts failures: no ids, no matched lines (-v lists ids)
    flt.lean = o.out.is_none() && o.verbose == 0;
}

/// What the per-line step reads besides the filter.
struct LineCx<'a> {
    o: &'a Opts,
    now: f64,
    report_lines: usize,
    multi: bool,
}

/// The counts and lists a run gathers (one per chunk in a parallel run,
/// appended in order).
struct Tally {
    fail_stats: Vec<RegexStat>,
    ign_stats: Vec<RegexStat>,
    tested: u64,
    matched: u64,
    missed: u64,
    ignored: u64,
    matched_lines: Vec<String>,
    missed_lines: Vec<String>,
    ignored_lines: Vec<String>,
    pref_matched: u64,
    pref_groups: Vec<String>,
    /// The failures of the line in hand (one vector for all lines).
    found: Vec<Failure>,
}

impl Tally {
    fn new(flt: &Filter) -> Tally {
        let stats = |v: Vec<String>| -> Vec<RegexStat> {
            v.into_iter()
                .map(|r| RegexStat {
                    regex: r,
                    hits: 0,
                    ips: Vec::new(),
                })
                .collect()
        };
        Tally {
            fail_stats: stats(flt.failregex()),
            ign_stats: stats(flt.ignoreregex()),
            tested: 0,
            matched: 0,
            missed: 0,
            ignored: 0,
            matched_lines: Vec::new(),
            missed_lines: Vec::new(),
            ignored_lines: Vec::new(),
            pref_matched: 0,
            pref_groups: Vec::new(),
            found: Vec::new(),
        }
    }

    /// One input line (fail2ban-regex's `testRegex` and its bookkeeping);
    /// `-o` output goes to `w`.
    fn line(
        &mut self,
        flt: &mut Filter,
        item: Item<'_>,
        cx: &LineCx<'_>,
        w: &mut impl Write,
    ) -> Result<(), String> {
        let (o, now, report_lines) = (cx.o, cx.now, cx.report_lines);
        // journal entries come with their time and are never skipped
        // `read`: a file's line, known ASCII or not
        let (line, read, timed) = match item {
            Item::Text(s) => (s.trim_end_matches(['\r', '\n']), None, None),
            Item::Read(s, ascii) => (s.trim_end_matches(['\r', '\n']), Some(ascii), None),
            Item::Timed { line, tuple, time } => (line, None, Some((tuple, time))),
        };
        if timed.is_none() && (line.starts_with('#') || line.is_empty()) {
            return Ok(());
        }
        let org_buf: Vec<TupleLine> = if cx.multi {
            flt.line_buffer()
        } else {
            Vec::new()
        };
        let full = org_buf.len() >= flt.maxlines();
        let mut found = std::mem::take(&mut self.found);
        match timed {
            Some((tuple, time)) => flt.process_line_with_time_into(tuple, time, now, &mut found),
            None => match read {
                Some(ascii) => flt.process_read_line_into(line, ascii, now, &mut found),
                None => flt.process_line_into(line, now, &mut found),
            },
        }
        // the failures that are not NOFAIL: kept for `-o`, counted otherwise
        let mut ret = Vec::new();
        let mut n_ret = 0usize;
        let mut is_ignored = false;
        for f in found.drain(..) {
            if o.out.is_none() {
                if let Some(st) = self.fail_stats.get_mut(f.regex_index) {
                    st.hits += 1;
                    if o.verbose > 0 {
                        st.ips.push((
                            f.id.as_ref()
                                .map(|a| a.to_string())
                                .unwrap_or_else(|| "None".into()),
                            // a failure without a time is the ticket's "now"
                            f.time.unwrap_or(now),
                            // fail2ban-regex's flag: more than one earlier
                            // failure (not NOFAIL) of this line
                            n_ret > 1,
                        ));
                    }
                }
            }
            if !f.is_nofail() {
                n_ret += 1;
                if o.out.is_some() {
                    ret.push(f);
                }
            } else {
                is_ignored = true;
            }
        }
        self.found = found;
        if let Some(i) = flt.last_ignored_by {
            is_ignored = true;
            if let Some(st) = self.ign_stats.get_mut(i) {
                st.hits += 1;
            }
        }
        if let Some(fmt) = &o.out {
            if !ret.is_empty() && !is_ignored {
                for f in &ret {
                    out_failure(fmt, f, now, w).map_err(|e| e.to_string())?;
                }
            }
            return Ok(());
        }
        if flt.prefregex_matched() {
            self.pref_matched += 1;
            // fail2ban-regex -v: the groups of the first lines
            if o.verbose > 0 && self.pref_groups.len() <= report_lines {
                if self.pref_groups.len() == report_lines {
                    self.pref_groups.push("...".to_string());
                } else if let Some(g) = flt.prefregex_groups() {
                    self.pref_groups.push(dict_repr(g));
                }
            }
        }
        if cx.multi {
            let now_buf = flt.line_buffer();
            for b in org_buf.iter().skip(full as usize) {
                if !now_buf.contains(b) {
                    let j = format!("{}{}{}", b.0, b.1, b.2);
                    if let Some(p) = self.missed_lines.iter().position(|m| *m == j) {
                        self.missed_lines.remove(p);
                    }
                    if o.print_all_matched {
                        self.matched_lines.push(j);
                    }
                    self.matched += 1;
                    self.missed = self.missed.saturating_sub(1);
                }
            }
        }
        if is_ignored {
            self.ignored += 1;
            if !o.print_no_ignored
                && (o.print_all_ignored || self.ignored <= report_lines as u64 + 1)
            {
                self.ignored_lines.push(line.to_string());
            }
        } else if n_ret > 0 {
            self.matched += 1;
            if o.print_all_matched {
                self.matched_lines.push(line.to_string());
            }
        } else {
            self.missed += 1;
            if !o.print_no_missed && (o.print_all_missed || self.missed <= report_lines as u64 + 1)
            {
                self.missed_lines.push(line.to_string());
            }
        }
        self.tested += 1;
        Ok(())
    }

    /// Appends the tally of the lines that follow this tally's (a chunk run
    /// from a fresh tally; no `-v`, single-line filter): what one tally over
    /// all the lines would hold.
    fn append(&mut self, b: Tally, cx: &LineCx<'_>) {
        let (o, limit) = (cx.o, cx.report_lines as u64 + 1);
        for (x, y) in self.fail_stats.iter_mut().zip(b.fail_stats) {
            x.hits += y.hits;
            x.ips.extend(y.ips);
        }
        for (x, y) in self.ign_stats.iter_mut().zip(b.ign_stats) {
            x.hits += y.hits;
            x.ips.extend(y.ips);
        }
        // the lists keep their first `limit` lines over the whole run (all
        // with --print-all-*): `b`'s first lines, as many as are left
        let keep = |all: bool, before: u64| {
            if all {
                usize::MAX
            } else {
                limit.saturating_sub(before) as usize
            }
        };
        let n = keep(o.print_all_missed, self.missed);
        self.missed_lines.extend(b.missed_lines.into_iter().take(n));
        let n = keep(o.print_all_ignored, self.ignored);
        self.ignored_lines
            .extend(b.ignored_lines.into_iter().take(n));
        self.matched_lines.extend(b.matched_lines);
        self.tested += b.tested;
        self.matched += b.matched;
        self.missed += b.missed;
        self.ignored += b.ignored;
        self.pref_matched += b.pref_matched;
    }
}

/// Files smaller than this are read by one thread.
const PARALLEL_MIN_BYTES: u64 = 4 << 20;
/// A chunk's run begins this many bytes before it (a warm-up, see
/// `run_chunks`).
const WARM_BYTES: u64 = 256 << 10;
/// At most this many chunks.
const PARALLEL_MAX: usize = 8;

/// How many chunks a run reads in parallel, or `None` for one sequential
/// run: only a counting run (the report: no `-o`, no `-v`) of a
/// single-line filter over a large file, on a machine with several cores.
/// `F2B_REGEX_THREADS=N` forces N chunks whatever the size (tests,
/// benchmarks; 1 disables).
fn chunk_count(o: &Opts, maxlines: usize, size: u64) -> Option<usize> {
    if o.out.is_some() || o.verbose > 0 || maxlines > 1 {
        return None;
    }
    let forced = std::env::var("F2B_REGEX_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    let n = match forced {
        Some(n) => n.min(PARALLEL_MAX),
        None if size < PARALLEL_MIN_BYTES => return None,
        None => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(PARALLEL_MAX),
    };
    (n > 1).then_some(n)
}

/// `n` chunks of the file, each ending after a newline (the last one at the
/// end of the file, unbounded): (start, length).
fn split_chunks(path: &str, size: u64, n: usize) -> Result<Vec<(u64, u64)>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut starts = vec![0u64];
    let mut buf = vec![0u8; 1 << 14];
    for k in 1..n {
        let from = (size * k as u64 / n as u64).max(*starts.last().unwrap_or(&0));
        f.seek(SeekFrom::Start(from)).map_err(|e| e.to_string())?;
        let mut pos = from;
        let next = loop {
            let got = f.read(&mut buf).map_err(|e| e.to_string())?;
            if got == 0 {
                break None;
            }
            if let Some(i) = memchr::memchr(b'\n', &buf[..got]) {
                break Some(pos + i as u64 + 1);
            }
            pos += got as u64;
        };
        match next {
            Some(s) if s < size && s > *starts.last().unwrap_or(&0) => starts.push(s),
            _ => break,
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (i, &s) in starts.iter().enumerate() {
        // the last chunk runs to the end of the file as it is then (lines
        // written meanwhile are read, as by a sequential run)
        let len = starts.get(i + 1).map_or(u64::MAX - s, |&e| e - s);
        out.push((s, len));
    }
    Ok(out)
}

impl FileLines {
    /// The lines of `len` bytes of `path` from `start`.
    fn open(path: &str, start: u64, len: u64, enc: Encoding) -> Result<FileLines, String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
        if start > 0 {
            f.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
        }
        Ok(FileLines {
            rd: f.take(len),
            block: vec![0; 1 << 16],
            pos: 0,
            filled: 0,
            eof: false,
            text: String::new(),
            enc,
            valid_to: 0,
            ascii_to: 0,
        })
    }
}

/// A counting run in chunks: the first chunk here on `flt`, the others
/// each on its own thread with its own filter (`make`), speculatively
/// ([`Filter::speculate`], after a warm-up on the lines just before the
/// chunk). A chunk's result is taken when `flt`, having processed the
/// lines before it, proves that it would have given the same answers
/// ([`Filter::absorb`]); otherwise its lines are processed again here, in
/// order. Either way the tally is the sequential run's.
#[allow(clippy::too_many_arguments)]
fn run_chunks(
    flt: &mut Filter,
    tally: &mut Tally,
    mut first: Lines,
    path: &str,
    chunks: &[(u64, u64)],
    enc: Encoding,
    cx: &LineCx<'_>,
    make: impl Fn() -> Result<Filter, String> + Sync,
    w: &mut impl Write,
) -> Result<(), String> {
    let make = &make;
    // the trace (tests, tuning): each chunk's outcome and threads' CPU time
    let trace = std::env::var_os("F2B_REGEX_TRACE").is_some();
    std::thread::scope(|sc| -> Result<(), String> {
        let workers: Vec<_> = chunks
            .windows(2)
            .map(|w| {
                let (prev, (start, len)) = (w[0].0, w[1]);
                let spawned = std::thread::Builder::new()
                    .name("f2b-regex-chunk".into())
                    .spawn_scoped(
                        sc,
                        move || -> Result<(Filter, Tally, Option<f64>), String> {
                            let mut f = make()?;
                            // warm-up: the lines just before the chunk, so that
                            // the state they leave is likely the one the run
                            // before the chunk leaves (the mlfid cache: its
                            // entries are the last lines')
                            let from = start.saturating_sub(WARM_BYTES).max(prev);
                            let mut warm = FileLines::open(path, from, start - from, enc)?;
                            if from > prev {
                                // the rest of a line that began before
                                warm.next();
                            }
                            let mut t = Tally::new(&f);
                            let mut sink = std::io::sink();
                            while let Some((l, a)) = warm.next() {
                                t.line(&mut f, Item::Read(l, a), cx, &mut sink)?;
                            }
                            f.speculate();
                            let mut t = Tally::new(&f);
                            let mut lines = FileLines::open(path, start, len, enc)?;
                            while let Some((l, a)) = lines.next() {
                                t.line(&mut f, Item::Read(l, a), cx, &mut sink)?;
                            }
                            Ok((f, t, trace.then(thread_cpu)))
                        },
                    );
                (start, len, spawned)
            })
            .collect();
        while let Some(item) = first.next() {
            tally.line(flt, item, cx, w)?;
        }
        let first_done = trace.then(thread_cpu);
        for (start, len, spawned) in workers {
            let done = spawned.ok().and_then(|h| h.join().ok());
            let (rest, at) = match done {
                Some(Ok((f, t, at))) => (flt.absorb(f).then_some(t), at),
                _ => (None, None),
            };
            if trace {
                // when this chunk's thread and the first one were done (the
                // split aims at the same time)
                eprintln!(
                    "chunk at {start}: {} (its thread's CPU {:.1} ms, the first chunk's {:.1} ms)",
                    if rest.is_some() { "absorbed" } else { "again" },
                    at.unwrap_or(f64::NAN) * 1e3,
                    first_done.unwrap_or(f64::NAN) * 1e3,
                );
            }
            match rest {
                Some(t) => tally.append(t, cx),
                None => {
                    let mut lines = FileLines::open(path, start, len, enc)?;
                    while let Some((l, a)) = lines.next() {
                        tally.line(flt, Item::Read(l, a), cx, w)?;
                    }
                }
            }
        }
        Ok(())
    })
}

/// The calling thread's CPU time in seconds (`/proc/thread-self/schedstat`;
/// NaN if unreadable): what the chunk split balances, unlike wall time
/// not skewed by other processes.
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// Runs the tool with its arguments (program name excluded); returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let o = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            if e.is_empty() {
                print!("{USAGE}");
                return 0;
            }
            eprintln!("{USAGE}\nfail2ban-regex: error: {e}");
            return 2;
        }
    };
    if o.args.len() < 2 || o.args.len() > 3 {
        eprintln!("{USAGE}\nERROR: provide both <LOG> and <REGEX>.");
        return 255;
    }
    match run(&o) {
        Ok(code) => code,
        Err(e) => {
            println!("ERROR: {e}");
            255
        }
    }
}

fn run(o: &Opts) -> Result<i32, String> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut header: Vec<String> = Vec::new();
    let log = &o.args[0];
    let fail_src = read_regex(o, &o.args[1], "fail", &mut header)?;
    let ign_src = match o.args.get(2) {
        Some(v) => Some(read_regex(o, v, "ignore", &mut header)?),
        None => None,
    };
    let mut spec = FilterSpec::default();
    let mut fail_list: Vec<String> = Vec::new();
    let mut maxlines_from_filter = None;
    let mut datepattern_from_filter = None;
    let mut journalmatch_from_filter = Vec::new();
    match fail_src {
        RegexSource::Filter(s, fl, jm) => {
            fail_list = fl;
            journalmatch_from_filter = jm;
            maxlines_from_filter = (s.maxlines > 0).then_some(s.maxlines);
            datepattern_from_filter = s.datepattern.clone();
            spec.prefregex = s.prefregex;
            spec.ignoreregex = s.ignoreregex;
        }
        RegexSource::Literal(r) => fail_list.push(r),
    }
    match ign_src {
        Some(RegexSource::Literal(r)) => spec.ignoreregex = vec![r],
        Some(RegexSource::Filter(s, _, _)) => spec.ignoreregex = s.ignoreregex,
        None => {}
    }
    spec.failregex = fail_list.clone();
    spec.usedns = o
        .usedns
        .as_deref()
        .map(UseDns::parse)
        .unwrap_or(UseDns::Warn);
    spec.maxlines = if o.maxlines > 0 {
        o.maxlines
    } else {
        maxlines_from_filter.unwrap_or(1)
    };
    if o.maxlines > 0 || maxlines_from_filter.is_some() {
        header.push(format!("Use         maxlines : {}", spec.maxlines.max(1)));
    }
    spec.datepattern = o.datepattern.clone().or(datepattern_from_filter);
    spec.logtimezone = o.timezone.clone();
    let mut flt = Filter::new(spec.clone()).map_err(|e| e.to_string())?;
    if let Some(dp) = &spec.datepattern {
        header.push(format!(
            "Use      datepattern : {} : {}",
            dp,
            flt.datepattern().1
        ));
    }
    configure(&mut flt, o);

    // input
    let is_file = Path::new(log).is_file();
    // a parallel run's chunks (start, length), and the file's encoding
    let mut chunks: Option<Vec<(u64, u64)>> = None;
    let mut file_enc = None;
    let journal = !is_file && regex_journal::is_journal(log);
    let mut lines = if is_file {
        let enc_name = o.encoding.clone().unwrap_or_else(|| "UTF-8".to_string());
        let enc = Encoding::lookup(&enc_name)?;
        header.push(format!("Use         log file : {log}"));
        header.push(format!("Use         encoding : {enc_name}"));
        let size = std::fs::metadata(log).map_err(|e| e.to_string())?.len();
        chunks = chunk_count(o, flt.maxlines(), size)
            .map(|n| split_chunks(log, size, n))
            .transpose()?;
        let end = chunks.as_ref().map_or(u64::MAX, |c| c[0].1);
        file_enc = Some(enc);
        Lines::File(FileLines::open(log, 0, end, enc)?)
    } else if journal {
        let words =
            regex_journal::match_words(o.journalmatch.as_deref(), &journalmatch_from_filter)?;
        let enc_name = o.encoding.as_deref().unwrap_or("UTF-8");
        Lines::items(regex_journal::open(log, &words, enc_name, &mut header)?)
    } else if flt.maxlines() <= 1 && !log.contains('\n') {
        header.push(format!(
            "Use      single line : {}",
            shortstr(&log.replace('\n', "\\n"), 53)
        ));
        Lines::items(std::iter::once(Input::Text(log.clone())))
    } else {
        let v: Vec<String> = log.split('\n').map(str::to_string).collect();
        header.push(format!("Use      multi line : {} line(s)", v.len()));
        for (i, l) in v.iter().enumerate() {
            if i >= 5 {
                header.push("| ...".into());
                break;
            }
            header.push(format!(
                "| {:>2.2}: {}",
                (i + 1).to_string(),
                shortstr(l, 53)
            ));
        }
        header.push("`-".into());
        Lines::items(v.into_iter().map(Input::Text))
    };
    if o.out.is_none() && !o.json {
        let _ = writeln!(w, "\nRunning tests\n=============\n");
        for h in &header {
            let _ = writeln!(w, "{h}");
        }
        let _ = writeln!(w);
    }

    let report_lines = if o.maxlines > 0 { o.maxlines } else { 20 };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let t0 = std::time::Instant::now();
    let multi = flt.maxlines() > 1;
    let mut tally = Tally::new(&flt);
    let cx = LineCx {
        o,
        now,
        report_lines,
        multi,
    };
    match (&chunks, file_enc) {
        (Some(chunks), Some(enc)) => {
            let make = || -> Result<Filter, String> {
                let mut f = Filter::new(spec.clone()).map_err(|e| e.to_string())?;
                configure(&mut f, o);
                Ok(f)
            };
            run_chunks(
                &mut flt, &mut tally, lines, log, chunks, enc, &cx, make, &mut w,
            )?
        }
        _ => {
            while let Some(item) = lines.next() {
                tally.line(&mut flt, item, &cx, &mut w)?;
            }
        }
    }
    let Tally {
        fail_stats,
        ign_stats,
        tested,
        matched,
        missed,
        ignored,
        matched_lines,
        missed_lines,
        ignored_lines,
        pref_matched,
        pref_groups,
        found: _,
    } = tally;
    let elapsed = t0.elapsed().as_secs_f64();
    if o.out.is_some() {
        w.flush().map_err(|e| e.to_string())?;
        return Ok(0);
    }
    let dd = flt.date_detector();
    if o.json {
        let regs = |v: &[RegexStat]| -> String {
            v.iter()
                .map(|s| format!("{{\"regex\":{},\"hits\":{}}}", json_str(&s.regex), s.hits))
                .collect::<Vec<_>>()
                .join(",")
        };
        let dates: Vec<String> = dd
            .template_hits()
            .into_iter()
            .filter(|(_, h)| *h > 0)
            .map(|(n, h)| format!("{{\"template\":{},\"hits\":{h}}}", json_str(&n)))
            .collect();
        let list = |v: &[String]| v.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(",");
        let _ = writeln!(
            w,
            "{{\"lines\":{tested},\"ignored\":{ignored},\"matched\":{matched},\"missed\":{missed},\"prefregex\":{},\"prefregex_hits\":{pref_matched},\"failregex\":[{}],\"ignoreregex\":[{}],\"date_templates\":[{}],\"missed_lines\":[{}],\"ignored_lines\":[{}],\"matched_lines\":[{}],\"seconds\":{elapsed:.3}}}",
            flt.prefregex_expanded().map(|p| json_str(&p)).unwrap_or_else(|| "null".into()),
            regs(&fail_stats),
            regs(&ign_stats),
            dates.join(","),
            list(&missed_lines),
            list(&ignored_lines),
            list(&matched_lines),
        );
        w.flush().map_err(|e| e.to_string())?;
        return Ok(0);
    }
    let mut out: Vec<String> = vec![String::new(), "Results".into(), "=======".into()];
    if let Some(p) = flt.prefregex_expanded() {
        out.push(format!("\nPrefregex: {pref_matched} total"));
        let mut l = vec![p];
        l.extend(pref_groups.iter().map(|g| format!("    {g}")));
        pprint_list(&mut out, &l, None);
    }
    for (title, stats) in [("Failregex", &fail_stats), ("Ignoreregex", &ign_stats)] {
        let mut total = 0;
        let mut l = Vec::new();
        for (i, s) in stats.iter().enumerate() {
            total += s.hits;
            if s.hits > 0 || o.verbose > 0 {
                l.push(format!("{:>2}) [{}] {}", i + 1, s.hits, s.regex));
            }
            if o.verbose > 0 {
                for (ip, t, m) in &s.ips {
                    l.push(format!(
                        "    {ip}  {}{}",
                        local_ctime(*t),
                        if *m { " (multiple regex matched)" } else { "" }
                    ));
                }
            }
        }
        out.push(format!("\n{title}: {total} total"));
        pprint_list(&mut out, &l, Some(" #) [# of hits] regular expression"));
    }
    // the journal without a filter datepattern has no date detector
    let no_date_detector = journal && spec.datepattern.is_none();
    if !no_date_detector {
        out.push("\nDate template hits:".into());
    }
    let mut l = Vec::new();
    for i in 0..if no_date_detector { 0 } else { dd.len() } {
        let Some(t) = dd.template(i) else { continue };
        let hits = dd.template_hits().get(i).map(|x| x.1).unwrap_or(0);
        if o.verbose > 0 || hits > 0 {
            l.push(format!("[{hits}] {}", t.name));
            if o.verbose_date {
                l.push(format!(
                    "    # weight: {:.3} ({:.3}), pattern: {}",
                    dd.template_weight(i).unwrap_or(0.0),
                    t.weight,
                    t.pattern.clone().unwrap_or_default()
                ));
                l.push(format!("    # regex:   {}", t.regex));
            }
        }
    }
    pprint_list(&mut out, &l, Some("[# of hits] date format"));
    out.push(format!(
        "\nLines: {tested} lines, {ignored} ignored, {matched} matched, {missed} missed"
    ));
    out.push(format!("[processed in {elapsed:.2} sec]"));
    out.push(String::new());
    let mut print_lines = |ltype: &str, n: u64, l: &[String], all: bool| {
        if n == 0 {
            return;
        }
        let mut c = ltype.chars();
        let header = format!(
            "{}{} line(s):",
            c.next()
                .map(|c| c.to_uppercase().to_string())
                .unwrap_or_default(),
            c.as_str()
        );
        if n < report_lines as u64 || all {
            let v: Vec<String> = l.iter().map(|x| x.trim_end().to_string()).collect();
            pprint_list(&mut out, &v, Some(&header));
        } else {
            out.push(format!(
                "{header} too many to print.  Use --print-all-{ltype} to print all {n} lines"
            ));
        }
    };
    if o.print_all_matched {
        print_lines("matched", matched, &matched_lines, true);
    }
    if !o.print_no_ignored {
        print_lines("ignored", ignored, &ignored_lines, o.print_all_ignored);
    }
    if !o.print_no_missed {
        print_lines("missed", missed, &missed_lines, o.print_all_missed);
    }
    for l in out {
        let _ = writeln!(w, "{l}");
    }
    w.flush().map_err(|e| e.to_string())?;
    Ok(0)
}

fn local_ctime(t: f64) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(t as i64) else {
        return String::new();
    };
    let z = ts.to_zoned(jiff::tz::TimeZone::system());
    z.strftime("%a %b %d %H:%M:%S %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_decode_like_python() {
        let e = |n: &str| Encoding::lookup(n).unwrap();
        assert_eq!(e("UTF-8"), Encoding::Utf8);
        assert_eq!(e("latin_1"), Encoding::Latin1);
        assert_eq!(e("ISO-8859-15"), Encoding::Latin9);
        assert!(Encoding::lookup("bogus").is_err());
        let line = b"r\xe9my \x80\x81 \xa4\n".to_vec();
        assert_eq!(
            e("latin-1").decode(line.clone()),
            "r\u{e9}my \u{80}\u{81} \u{a4}\n"
        );
        assert_eq!(
            e("cp1252").decode(line.clone()),
            "r\u{e9}my \u{20ac}\u{fffd} \u{a4}\n"
        );
        assert_eq!(
            e("latin9").decode(line.clone()),
            "r\u{e9}my \u{80}\u{81} \u{20ac}\n"
        );
        assert_eq!(
            e("ascii").decode(line.clone()),
            "r\u{fffd}my \u{fffd}\u{fffd} \u{fffd}\n"
        );
        assert_eq!(
            e("utf8").decode(line),
            "r\u{fffd}my \u{fffd}\u{fffd} \u{fffd}\n"
        );
        assert_eq!(e("utf8").decode("rémy\n".as_bytes().to_vec()), "rémy\n");
    }

    #[test]
    fn file_lines_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let long = "x".repeat(200_000);
        let mut want: Vec<String> = (0..5000).map(|i| format!("line {i}\n")).collect();
        want.insert(2500, format!("{long}\n"));
        want.push("caf\u{fffd} \u{e9}\n".into());
        let mut bytes: Vec<u8> = want[..want.len() - 1].concat().into_bytes();
        bytes.extend_from_slice(b"caf\xe9 \xc3\xa9\n");
        bytes.extend_from_slice(b"no newline");
        std::fs::write(&path, &bytes).unwrap();
        let p = path.to_str().unwrap();
        let mut fl = FileLines::open(p, 0, u64::MAX, Encoding::Utf8).unwrap();
        let mut got = Vec::new();
        while let Some((l, ascii)) = fl.next() {
            // "known ASCII" is never wrong (it may be unknown)
            assert!(!ascii || l.is_ascii(), "{l:?}");
            got.push(l.to_string());
        }
        assert_eq!(got, want);
        // a range: from the third line, two lines
        let start = (want[0].len() + want[1].len()) as u64;
        let len = (want[2].len() + want[3].len()) as u64;
        let mut fl = FileLines::open(p, start, len, Encoding::Utf8).unwrap();
        assert_eq!(fl.next(), Some(("line 2\n", true)));
        assert_eq!(fl.next(), Some(("line 3\n", true)));
        assert_eq!(fl.next(), None);
    }

    #[test]
    fn file_lines_invalid_utf8_between_valid_lines() {
        // UTF-8 is checked a block at a time: lines before and after an
        // invalid one, in the same block, read as they do line by line
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for i in 0..3000 {
            match i % 700 {
                5 => {
                    bytes.extend_from_slice(b"bad \xff\xfe end\n");
                    want.push("bad \u{fffd}\u{fffd} end\n".to_string());
                }
                6 => {
                    bytes.extend_from_slice("caf\u{e9} \u{2603}\n".as_bytes());
                    want.push("caf\u{e9} \u{2603}\n".to_string());
                }
                7 => {
                    // a truncated sequence before the newline
                    bytes.extend_from_slice(b"cut \xc3\n");
                    want.push("cut \u{fffd}\n".to_string());
                }
                _ => {
                    let l = format!("line {i} \u{e9}\n");
                    bytes.extend_from_slice(l.as_bytes());
                    want.push(l);
                }
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        let mut fl = FileLines::open(path.to_str().unwrap(), 0, u64::MAX, Encoding::Utf8).unwrap();
        let mut got = Vec::new();
        while let Some((l, ascii)) = fl.next() {
            // "known ASCII" is never wrong (it may be unknown)
            assert!(!ascii || l.is_ascii(), "{l:?}");
            got.push(l.to_string());
        }
        assert_eq!(got, want);
    }

    #[test]
    fn filter_name_detection() {
        assert!(looks_like_filter("sshd"));
        assert!(looks_like_filter("sshd[mode=aggressive]"));
        assert!(looks_like_filter("/etc/fail2ban/filter.d/sshd.conf"));
        assert!(!looks_like_filter("^Failed .* <HOST>$"));
    }

    #[test]
    fn args() {
        let a: Vec<String> = ["-o", "<ip>", "--print-all-missed", "log", "re"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse_args(&a).unwrap();
        assert_eq!(o.out.as_deref(), Some("<ip>"));
        assert!(o.print_all_missed);
        assert_eq!(o.args, vec!["log", "re"]);
        let a: Vec<String> = ["--out=id", "-L2", "x", "y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse_args(&a).unwrap();
        assert_eq!(o.out.as_deref(), Some("id"));
        assert_eq!(o.maxlines, 2);
    }
}
