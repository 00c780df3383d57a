//! The fast path against the regex/jiff path: same spans, same times.

use super::*;
use proptest::prelude::*;

/// The template's named groups in a match: (name, text) for `strptime`.
fn named_fields<'a>(t: &'a Template, l: &'a str, sp: &Spans) -> Vec<(&'a str, &'a str)> {
    t.names()
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((n.as_deref()?, &l[sp.get(i)?.0..sp.get(i)?.1])))
        .collect()
}

/// A small deterministic generator (xorshift) driven by a proptest seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

const MON: [&str; 15] = [
    "Jan", "Feb", "Mar", "apr", "MAY", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Mär",
    "août", "Sept",
];
const DAY: [&str; 9] = ["Mon", "Tue", "Wed", "thu", "Fri", "Sat", "Sun", "Mi", "lun"];
const ZONES: [&str; 12] = [
    "+0100", "-0430", "+05:30", "Z", "UTC", "GMT", "CET", "CEST", "EST", "+01", "X", "-1200",
];

fn num(g: &mut Gen, max: u64, width: usize) -> String {
    let v = g.below(max + 1);
    match g.below(4) {
        0 => format!("{v}"),
        1 => format!("{v:>width$}"),
        _ => format!("{v:0width$}"),
    }
}

/// A date stamp in one of the shapes of the default templates (or a
/// near miss).
fn stamp(g: &mut Gen) -> String {
    let year = format!("{}", 1999 + g.below(30));
    let y2 = format!("{:02}", g.below(100));
    let (mo, d, h, mi, s) = (
        num(g, 13, 2),
        num(g, 32, 2),
        num(g, 24, 2),
        num(g, 60, 2),
        num(g, 61, 2),
    );
    let frac = if g.chance(30) {
        format!(
            ".{}",
            &format!("{:09}", g.next() % 1_000_000_000)[..1 + g.below(8) as usize]
        )
    } else {
        String::new()
    };
    let zone = if g.chance(30) {
        format!("{}{}", if g.chance(50) { " " } else { "" }, g.pick(&ZONES))
    } else {
        String::new()
    };
    let b = g.pick(&MON);
    let sep = g.pick(&["-", "/", ".", "-", "/"]);
    match g.below(14) {
        0 => format!(
            "{year}{sep}{mo}{sep}{d}{}{h}:{mi}:{s}{frac}{zone}",
            g.pick(&["T", " ", "  "])
        ),
        1 | 2 => format!(
            "{}{b} {d} {h}:{mi}:{s}{frac}{}",
            if g.chance(30) {
                format!("{} ", g.pick(&DAY))
            } else {
                String::new()
            },
            if g.chance(30) {
                format!(" {year}")
            } else {
                String::new()
            }
        ),
        3 => format!("{b} {d} {year} {h}:{mi}:{s}{frac}"),
        4 => format!(
            "{d}{sep}{mo}{sep}{} {h}:{mi}:{s}",
            if g.chance(50) { &year } else { &y2 }
        ),
        5 => format!("{d}/{b}/{year}:{h}:{mi}:{s}{frac}{zone}"),
        6 => format!("{mo}/{d}/{year}:{h}:{mi}:{s}"),
        7 => format!("{mo}-{d}-{year} {h}:{mi}:{s}{frac}"),
        8 => {
            let e = format!("{}", 1_000_000_000 + g.below(9_000_000_000));
            match g.below(6) {
                0 => format!("[{e}]"),
                1 => format!("audit({e}.{}:{})", g.below(1000), g.below(99)),
                2 => format!("{e}{:03}", g.below(1000)),
                3 => format!("{e}{:06}", g.below(1_000_000)),
                4 => format!("{e}.{}", g.below(1_000_000)),
                _ => e,
            }
        }
        9 => format!("<{mo}/{d}/{y2}@{h}:{mi}:{s}>"),
        10 => format!("{y2}{mo}{d} {h}:{mi}:{s}"),
        11 => format!(
            "{b} {d}, {year} {}:{mi}:{s} {}",
            num(g, 13, 2),
            g.pick(&["AM", "pm", "Am"])
        ),
        12 => format!("{year}{mo}{d}T{h}{mi}{s}{frac}{zone}"),
        _ => format!("@4000{:020x}", g.next() as u128 * 3),
    }
}

/// A line around a stamp, sometimes mutated.
fn line(g: &mut Gen) -> String {
    let pre = g.pick(&["", "", "", "[", "<12>", "host ", "  ", "x", "=", "(", "2 "]);
    let post = g.pick(&[
        " host sshd[1]: Failed",
        "",
        "]",
        " x",
        ":",
        "\n",
        "Z",
        "5",
        ".",
        " 2005",
        "é",
    ]);
    let mut s: Vec<char> = format!("{pre}{}{post}", stamp(g)).chars().collect();
    for _ in 0..g.below(3) {
        if s.is_empty() || !g.chance(40) {
            continue;
        }
        let at = g.below(s.len() as u64) as usize;
        match g.below(3) {
            0 => {
                s.remove(at);
            }
            1 => s.insert(at, ['0', ' ', ':', 'a', '9', '-', 'ä'][g.below(7) as usize]),
            _ => s[at] = ['1', ' ', 'T', 'Z', '.', '+'][g.below(6) as usize],
        }
    }
    s.into_iter().collect()
}

/// Every template the detectors know: the default set (plain and
/// anchored), the epoch/TAI64N forms and stock-filter style patterns.
fn templates() -> Vec<Arc<Template>> {
    let mut v: Vec<Arc<Template>> = default_templates().0.to_vec();
    for p in [
        "EPOCH",
        "^EPOCH",
        "LEPOCH",
        "{^LN-BEG}LEPOCH",
        "TAI64N",
        "^TAI64N",
        "{^LN-BEG}Epoch",
        r"^%%Y-%%m-%%d %%H:%%M:%%S".replace("%%", "%").as_str(),
        r"^(?:=[^=]+={3,} )?(%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\s*%z)?)",
        r"^%b %d, %ExY %I:%M:%S %p",
        r"^\[%d/%b/%Y %H:%M:%S\]",
        r"%d/%b[^/]*/%Y:%H:%M:%S %z",
        r"^%H:%M:%S.%f",
        r"{UNB}%Y-%m-%d %H:%M:%S",
        r"^t=%Y-%m-%dT%H:%M:%S%z",
        r"%j %y %H:%M",
        r"%a %A %B %d %Y %X",
        r"[\[(]%ExY%Exm%Exd %H%M%S",
    ] {
        v.push(Arc::new(Template::from_spec(p).expect(p)));
    }
    for pm in [r"^[^\[]*\[({DATE})", r"^<\d+>\d+\s+{DATE}"] {
        let mut dd = DateDetector::new();
        dd.append_template(pm).expect(pm);
        v.extend(dd.templates.iter().map(|t| t.t.clone()));
    }
    v
}

fn ctxs() -> Vec<TimeCtx> {
    let zones = [
        "CET-01CEST-02,M3.5.0,M10.5.0",
        "EST5EDT,M3.2.0,M11.1.0",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "UTC0",
    ];
    let mut v = Vec::new();
    for (k, z) in zones.iter().enumerate() {
        let tz = TimeZone::posix(z).expect(z);
        for now in [1124013600.0, 1735689599.5, 1735603200.0, 1711846800.0] {
            v.push(TimeCtx {
                now,
                local: Arc::new(tz.clone()),
                default_tz: if k == 1 && now > 1.7e9 {
                    Some(-270)
                } else {
                    None
                },
            });
        }
    }
    v
}

#[test]
fn every_default_template_has_a_fast_program() {
    for t in &default_templates().0 {
        let p = t
            .prog()
            .unwrap_or_else(|| panic!("no fast program for {}", t.name));
        let re = t.re().expect("compiles");
        assert_eq!(p.names(), re.names(), "{}", t.name);
    }
    for t in templates() {
        if let (Some(p), Some(re)) = (t.prog(), t.re()) {
            assert_eq!(p.names(), re.names(), "{}", t.name);
        }
    }
}

#[test]
fn fast_program_covers_the_stock_shapes() {
    // the fast matcher decides (no regex fallback) on ASCII syslog lines
    let t = Template::from_spec("{^LN-BEG}(?:%a )?%b %d %k:%M:%S(?:\\.%f)?(?: %ExY)?").unwrap();
    let p = t.prog().expect("program");
    assert!(p.is_ci());
    let mut sc = Scratch::default();
    for l in [
        "Nov  2 05:28:54 host",
        "Mon Nov 22 05:28:54.123 2024 x",
        "Nov 22 5:28:54",
    ] {
        assert_eq!(p.search(l, 0, l.len(), &mut sc), Found::Yes, "{l}");
    }
    assert_eq!(p.search("xNov 22 05:28:54", 0, 16, &mut sc), Found::No);
    // a localized name in the text: the regex engine decides
    assert_eq!(p.search("Mär 22 05:28:54", 0, 16, &mut sc), Found::Bail);
    let e = Template::from_spec("{^LN-BEG}EPOCH").unwrap();
    assert!(e.prog().is_some(), "EPOCH has a fast program");
    let l = "[1124013600] x";
    assert_eq!(
        e.match_date_fast(l, 0, l.len()),
        e.match_date(l, 0, l.len())
    );
}

#[test]
fn conversion_edge_cases() {
    let c = &ctxs()[1];
    // leap day, fraction, double-space day
    for (fields, want) in [
        (
            vec![
                ("Y", "2024"),
                ("m", "02"),
                ("d", "29"),
                ("H", "23"),
                ("M", "59"),
                ("S", "59"),
                ("f", "5"),
            ],
            true,
        ),
        (
            vec![
                ("Y", "2023"),
                ("m", "02"),
                ("d", "29"),
                ("H", "00"),
                ("M", "00"),
                ("S", "00"),
            ],
            false,
        ),
        (
            vec![
                ("b", "Dec"),
                ("d", " 31"),
                ("H", "23"),
                ("M", "59"),
                ("S", "59"),
            ],
            true,
        ),
        (
            vec![
                ("b", "Jan"),
                ("d", " 1"),
                ("H", "0"),
                ("M", "00"),
                ("S", "01"),
                ("z", "+0100"),
            ],
            true,
        ),
        (vec![("H", "23"), ("M", "59"), ("S", "59")], true),
        (
            vec![
                ("Y", "2024"),
                ("j", "366"),
                ("H", "1"),
                ("M", "2"),
                ("S", "3"),
            ],
            true,
        ),
        (
            vec![
                ("Y", "2024"),
                ("m", "3"),
                ("d", "31"),
                ("H", "2"),
                ("M", "30"),
                ("S", "0"),
            ],
            true,
        ),
    ] {
        for c in [c.clone(), ctxs()[4].clone(), ctxs()[9].clone()] {
            let got = strptime_fields(&fields, &c);
            assert_eq!(got, strptime_fields_reference(&fields, &c), "{fields:?}");
            assert_eq!(got.is_some(), want, "{fields:?}");
        }
    }
}

#[test]
fn conversion_at_the_ends_of_time() {
    let fields = [
        ("b", "Dec"),
        ("d", "30"),
        ("H", "1"),
        ("M", "00"),
        ("S", "00"),
    ];
    for now in [
        civil::TS_MAX as f64,
        civil::TS_MAX as f64 + 1.0,
        civil::TS_MIN as f64,
        civil::TS_MIN as f64 - 1.0,
        f64::NAN,
        f64::INFINITY,
    ] {
        for mut c in ctxs() {
            c.now = now;
            assert_eq!(
                strptime_fields(&fields, &c).map(f64::to_bits),
                strptime_fields_reference(&fields, &c).map(f64::to_bits),
                "now {now}"
            );
        }
    }
}

#[test]
fn civil_constants_match_jiff() {
    assert_eq!(civil::TS_MIN, jiff::Timestamp::MIN.as_second());
    assert_eq!(civil::TS_MAX, jiff::Timestamp::MAX.as_second());
    let d = |dt: jiff::civil::DateTime| {
        let e = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);
        dt.duration_since(e).as_secs()
    };
    assert_eq!(civil::CIVIL_MIN, d(jiff::civil::DateTime::MIN));
    assert_eq!(
        civil::CIVIL_MAX,
        d(jiff::civil::date(9999, 12, 31).at(23, 59, 59, 0))
    );
}

#[test]
fn civil_arithmetic_matches_jiff() {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let days = g.below(2_000_000) as i64 - 1_000_000;
        let (y, m, d) = civil::civil_from_days(days);
        assert_eq!(civil::days_from_civil(y, m, d), days);
        let j = jiff::civil::Date::new(y as i16, m as i8, d as i8).expect("valid");
        let epoch = jiff::civil::date(1970, 1, 1);
        assert_eq!((j - epoch).get_days() as i64, days);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fast_matches_equal_regex_matches(seed in 1u64..u64::MAX) {
        let mut g = Gen(seed);
        let tpls = templates();
        let ctxs = ctxs();
        for _ in 0..8 {
            let l = line(&mut g);
            let ctx = &ctxs[g.below(ctxs.len() as u64) as usize];
            for t in &tpls {
                let (pos, end) = if g.chance(85) {
                    (0, l.len())
                } else {
                    let a = g.below(l.len() as u64 + 1) as usize;
                    (a, a + g.below((l.len() - a) as u64 + 1) as usize)
                };
                let slow = t.match_date(&l, pos, end);
                let fast = t.match_date_fast(&l, pos, end);
                prop_assert_eq!(&fast, &slow, "{} on {:?} [{}, {})", t.name, l, pos, end);
                if let Some(sp) = slow {
                    let want = t.get_date(&l, &sp, ctx);
                    let mut sc = Scratch::default();
                    let got = t
                        .find(&l, pos, end, &mut sc)
                        .and_then(|gr| t.groups_date(&l, &gr, ctx));
                    prop_assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{} on {:?}", t.name, l);
                    // and the jiff-based conversion agrees
                    if t.kind == Kind::Pattern {
                        let fields = named_fields(t, &l, &sp);
                        let conv = strptime_fields(&fields, ctx).map(f64::to_bits);
                        prop_assert_eq!(
                            conv,
                            strptime_fields_reference(&fields, ctx).map(f64::to_bits),
                            "{:?}", fields
                        );
                        // the syslog shortcut converts as the general code
                        prop_assert_eq!(conv, want.map(f64::to_bits), "{:?}", fields);
                    }
                }
            }
        }
    }

    #[test]
    fn conversion_equals_reference(seed in 1u64..u64::MAX) {
        let mut g = Gen(seed);
        let ctxs = ctxs();
        for _ in 0..16 {
            let mut c = ctxs[g.below(ctxs.len() as u64) as usize].clone();
            // any "now" from 1990 to 2040, often near New Year and DST changes
            c.now = if g.chance(50) {
                631152000.0 + g.below(1_577_000_000) as f64 + 0.25
            } else {
                let base = [1735689600.0, 1711846800.0, 1730595600.0, 1704067200.0][g.below(4) as usize];
                base + g.below(4 * 86400) as f64 - 2.0 * 86400.0
            };
            let year = format!("{}", 1990 + g.below(50));
            let (mo, d) = (format!("{}", 1 + g.below(12)), format!("{:>2}", 1 + g.below(31)));
            let (h, mi, s) = (format!("{}", g.below(25)), format!("{:02}", g.below(60)), format!("{:02}", g.below(61)));
            let mut f: Vec<(&str, &str)> = Vec::new();
            match g.below(4) {
                0 => f.push(("Y", &year)),
                1 => f.push(("y", &year[2..])),
                _ => {}
            }
            if g.chance(50) {
                f.push(("m", &mo));
            } else {
                f.push(("b", MON[g.below(12) as usize]));
            }
            f.push(("d", &d));
            f.extend([("H", h.as_str()), ("M", mi.as_str()), ("S", s.as_str())]);
            if g.chance(20) {
                f.push(("f", "123"));
            }
            if g.chance(25) {
                f.push(("z", ZONES[g.below(ZONES.len() as u64) as usize]));
            }
            if g.chance(5) {
                f.retain(|(k, _)| !matches!(*k, "m" | "b" | "d"));
            }
            prop_assert_eq!(
                strptime_fields(&f, &c).map(f64::to_bits),
                strptime_fields_reference(&f, &c).map(f64::to_bits),
                "{:?} now {}", f, c.now
            );
        }
    }

    #[test]
    fn detector_fast_equals_regex_only(seed in 1u64..u64::MAX) {
        let mut g = Gen(seed);
        let ctx = ctxs()[g.below(16) as usize].clone();
        let pat = ["", "{^LN-BEG}", "EPOCH", "{^LN-BEG}EPOCH"][g.below(4) as usize];
        let mut fast = DateDetector::from_datepattern(pat).expect("pattern");
        let mut slow = DateDetector::from_datepattern(pat).expect("pattern");
        slow.fast = false;
        // runs of one shape (the cached-template path), then switches
        for _ in 0..6 {
            let shape = g.next();
            for k in 0..10 {
                let mut g2 = Gen(if k % 3 == 2 { g.next() } else { shape ^ k });
                let l = line(&mut g2);
                let a = fast.match_time(&l, 0.0);
                let b = slow.match_time(&l, 0.0);
                prop_assert_eq!(a.as_ref().map(|m| (m.template, m.span, m.groups())),
                    b.as_ref().map(|m| (m.template, m.span, m.groups())), "{:?}", l);
                if let (Some(a), Some(b)) = (a, b) {
                    prop_assert_eq!(
                        fast.get_time(&l, &a, &ctx).map(f64::to_bits),
                        slow.get_time(&l, &b, &ctx).map(f64::to_bits), "{:?}", l);
                    prop_assert_eq!(fast.time_is_int(&a, &ctx), slow.time_is_int(&b, &ctx));
                }
            }
        }
        prop_assert_eq!(fast.template_hits(), slow.template_hits());
    }

    /// `detect_syslog` (with the general path when it declines) against a
    /// regex-only detector: runs of syslog stamps sharing a minute's text
    /// (the memo's head), near misses on the second and after the stamp,
    /// other shapes between them, contexts changing between runs.
    #[test]
    fn detect_syslog_equals_regex_only(seed in 1u64..u64::MAX) {
        let mut g = Gen(seed);
        let all = ctxs();
        let pat = ["{^LN-BEG}", "", "{^LN-BEG}EPOCH"][g.below(3) as usize];
        let mut fast = DateDetector::from_datepattern(pat).expect("pattern");
        let mut slow = DateDetector::from_datepattern(pat).expect("pattern");
        slow.fast = false;
        let mut ctx = all[g.below(all.len() as u64) as usize].clone();
        for _ in 0..8 {
            if g.chance(30) {
                ctx = all[g.below(all.len() as u64) as usize].clone();
            }
            let mon = g.pick(&["Jan", "JAN", "Mar", "Oct", "Dec", "Jun"]);
            let day = g.pick(&[" 1", "27", "30", "31", "11"]);
            let hm = g.pick(&["00:00", "01:59", "02:00", "02:30", "12:00", "23:59"]);
            for _ in 0..12 {
                let l = if g.chance(85) {
                    let ss = g.pick(&["00", "07", "59", "09", "30", "60", "6", "5x", "0:"]);
                    let post = g.pick(&[" host sshd[1]: x", "", " x", ":", ".5", " 2005", "é", "_", " 7"]);
                    format!("{mon} {day} {hm}:{ss}{post}")
                } else {
                    line(&mut g)
                };
                let a = match fast.detect_syslog(&l, &ctx) {
                    Some((e, t, i)) => Some((Some((0, e)), t, i)),
                    None => fast.match_time(&l, ctx.now).map(|m| {
                        (m.span, fast.get_time_memo(&l, &m, &ctx), fast.time_is_int(&m, &ctx))
                    }),
                };
                let b = slow.match_time(&l, ctx.now).map(|m| {
                    (m.span, slow.get_time(&l, &m, &ctx), slow.time_is_int(&m, &ctx))
                });
                prop_assert_eq!(
                    a.map(|(s, t, i)| (s, t.map(f64::to_bits), i)),
                    b.map(|(s, t, i)| (s, t.map(f64::to_bits), i)),
                    "{:?}", l
                );
                prop_assert_eq!((fast.last_idx, fast.last_pos, fast.last_end_pos, fast.first_unused),
                    (slow.last_idx, slow.last_pos, slow.last_end_pos, slow.first_unused), "{:?}", l);
            }
        }
        prop_assert_eq!(fast.template_hits(), slow.template_hits());
        let w = |d: &DateDetector| (0..d.len()).map(|i| d.template_weight(i).map(f64::to_bits)).collect::<Vec<_>>();
        prop_assert_eq!(w(&fast), w(&slow));
    }
}

#[test]
fn meta_regexes_fast_equals_regex() {
    let m = meta();
    let metas = [
        &m.grouped,
        &m.group,
        &m.globalflags,
        &m.no_wrd_beg,
        &m.no_wrd_end,
        &m.del_wrd,
        &m.line_beg,
        &m.line_end,
        &m.epoch,
        &m.exsanc,
        &m.exeanc,
    ];
    let mut inputs: Vec<String> = Vec::new();
    for t in templates() {
        inputs.push(t.regex.clone());
        inputs.extend(t.pattern.clone());
    }
    for p in DEFAULT_TEMPLATES {
        let (r, _, _) = expand_pattern(p, exy()).expect("expands");
        inputs.push(r);
    }
    inputs.extend(
        [
            "(?iu)^x$",
            "**x**",
            "(**x)",
            "a\\$",
            "a|$",
            "a$)",
            "(?:^|\\b|\\W)x(?=\\b|\\W|$)",
            "{EPOCH}",
            "\\{EPOCH}",
            "x{lepoch}y",
            "(?P<a>x)(",
            "\\(",
            "((?:^a))",
            "(?i)(?u)",
            "",
            "é(x)ü",
            "^((?:\\(\\?\\w+\\))",
            "**(?=ä)",
        ]
        .map(String::from),
    );
    let mut g = Gen(7);
    for k in 0..inputs.len() {
        let mut v: Vec<char> = inputs[k].chars().collect();
        for _ in 0..4 {
            if !v.is_empty() {
                let at = g.below(v.len() as u64) as usize;
                v.insert(
                    at,
                    ['(', ')', '\\', '^', '$', '*', '?', 'é', 'b'][g.below(9) as usize],
                );
            }
        }
        inputs.push(v.into_iter().collect());
    }
    for (k, re) in metas.iter().enumerate() {
        let p = re
            .prog
            .as_ref()
            .unwrap_or_else(|| panic!("meta {k} has no program"));
        for s in &inputs {
            let mut sc = Scratch::default();
            let fast = match p.search(s, 0, s.len(), &mut sc) {
                Found::Yes => Some(Groups::from_slots(&sc.caps, usize::MAX).to_spans()),
                Found::No => None,
                Found::Bail => continue,
            };
            assert_eq!(fast, re.regex().search(s), "meta {k} on {s:?}");
        }
    }
}

#[test]
fn name_lookup_fast_equals_lookup() {
    for table in [
        &MONTHS_ABBR[..],
        &MONTHS_FULL[..],
        &DAYS_ABBR[..],
        &DAYS_FULL[..],
    ] {
        for names in table {
            for n in *names {
                for v in [
                    n.to_string(),
                    n.to_uppercase(),
                    format!("{n}."),
                    format!("{}..", n.to_uppercase()),
                    format!("{n}x"),
                    n[..n.len() - n.chars().last().map_or(0, char::len_utf8)].to_string(),
                ] {
                    assert_eq!(lookup_name_fast(table, &v), lookup_name(table, &v), "{v:?}");
                }
            }
        }
    }
}

#[test]
fn factoring_survives_non_ascii_group_names() {
    // fuzz find: a multi-byte character right after `(?P<`
    assert_eq!(factor_name_groups("(?P<\u{fffd}x"), "(?P<\u{fffd}x");
    assert_eq!(factor_name_groups("(?P<é>x)"), "(?P<é>x)");
    // a quantifier with nothing to repeat: an error, not a panic
    assert!(DateDetector::from_datepattern("?P<\u{fffd}\n").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The syslog recognizer against the regex engine on canonical stamps
    /// and their near misses.
    #[test]
    fn syslog_shortcut_equals_regex(seed in 1u64..u64::MAX) {
        let mut g = Gen(seed);
        let plain = Template::from_spec(syslog::PATTERN).expect("plain");
        let anchored = Template::from_spec(&format!("{{^LN-BEG}}{}", syslog::PATTERN)).expect("anchored");
        prop_assert!(plain.syslog().is_some() && anchored.syslog().is_some());
        let ctxs = ctxs();
        for _ in 0..16 {
            let mon = g.pick(&["Jan", "feb", "MAR", "Apr", "May", "jun", "Jul", "Aug", "Sep", "oct", "Nov", "Dec", "Mai", "Sept"]);
            let day = g.pick(&[" 1", " 9", "01", "09", "10", "19", "20", "29", "30", "31", "32", "00", " 0", "3", "1 "]);
            let hh = g.pick(&["00", "09", "12", "23", "24", "29", "30", " 5", "5:"]);
            let mm = g.pick(&["00", "07", "59", "60", "5"]);
            let ss = g.pick(&["00", "07", "59", "60", "61", "9"]);
            let post = g.pick(&["", " host", ":", "\n", "x", "_", ".", ".123", " 2024 x", " 20", " x", "]", "é", " é", "5", "\t"]);
            let l = format!("{mon} {day} {hh}:{mm}:{ss}{post}");
            let end = if g.chance(80) { l.len() } else { g.below(l.len() as u64 + 1) as usize };
            let ctx = &ctxs[g.below(ctxs.len() as u64) as usize];
            for t in [&plain, &anchored] {
                let slow = t.match_date(&l, 0, end);
                prop_assert_eq!(&t.match_date_fast(&l, 0, end), &slow, "{:?} [0, {})", l, end);
                if let Some(sp) = slow {
                    let fields = named_fields(t, &l, &sp);
                    let want = strptime_fields_reference(&fields, ctx).map(f64::to_bits);
                    prop_assert_eq!(t.get_date(&l, &sp, ctx).map(f64::to_bits), want, "{:?}", l);
                    let mut sc = Scratch::default();
                    let got = t
                        .find(&l, 0, end, &mut sc)
                        .and_then(|gr| t.groups_date(&l, &gr, ctx));
                    prop_assert_eq!(got.map(f64::to_bits), want, "{:?}", l);
                }
            }
        }
    }
}

#[test]
fn english_month_equals_lookup() {
    let mut found = 0;
    for names in MONTHS_ABBR.iter() {
        for n in names.iter().filter(|n| n.len() == 3 && n.is_ascii()) {
            for v in [n.to_string(), n.to_uppercase()] {
                if let Some(m) = syslog::english_month(v.as_bytes()) {
                    found += 1;
                    assert_eq!(Some(m as usize - 1), lookup_name(&MONTHS_ABBR, &v), "{v}");
                }
            }
        }
    }
    assert_eq!(found, 24, "all twelve English names, both cases");
}

/// The month of three bytes as the `to_ascii_lowercase` match reads it.
fn english_month_reference(b: &[u8]) -> Option<i32> {
    let names = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let k = b.to_ascii_lowercase();
    names
        .iter()
        .position(|n| n.as_bytes() == k.as_slice())
        .map(|i| i as i32 + 1)
}

#[test]
fn english_month_hash_equals_reference() {
    // every ASCII byte and a few non-ASCII ones in each place
    let bytes: Vec<u8> = (0u8..128)
        .chain([0x80, 0xc1, 0xc3, 0xe1, 0xea, 0xff])
        .collect();
    for &x in &bytes {
        for &y in &bytes {
            for &z in &bytes {
                let b = [x, y, z];
                assert_eq!(
                    syslog::english_month(&b),
                    english_month_reference(&b),
                    "{b:?}"
                );
            }
        }
    }
}

/// `syslog::recognize` as first written (byte by byte), the reference of
/// the word-at-a-time form.
fn recognize_reference(h: &[u8]) -> Option<syslog::Stamp> {
    let s = h.get(..15)?;
    let month = english_month_reference(&s[..3])?;
    let digit = |c: u8| c.is_ascii_digit();
    let day_ok = match (s[4], s[5]) {
        (b'1' | b'2', d) => digit(d),
        (b'0' | b' ', d) => (b'1'..=b'9').contains(&d),
        (b'3', d) => d == b'0' || d == b'1',
        _ => false,
    };
    let ok = s[3] == b' '
        && day_ok
        && s[6] == b' '
        && (b'0'..=b'2').contains(&s[7])
        && digit(s[8])
        && s[9] == b':'
        && (b'0'..=b'5').contains(&s[10])
        && digit(s[11])
        && s[12] == b':'
        && (b'0'..=b'5').contains(&s[13])
        && digit(s[14]);
    if !ok {
        return None;
    }
    match h.get(15) {
        None => {}
        Some(&c) if c >= 0x80 || c == b'.' || c == b'_' || c.is_ascii_alphanumeric() => {
            return None
        }
        Some(b' ') if h.get(16).is_some_and(|c| c.is_ascii_digit()) => return None,
        Some(_) => {}
    }
    let two = |a: u8, b: u8| (if a == b' ' { 0 } else { a - b'0' }) * 10 + (b - b'0');
    Some(syslog::Stamp {
        end: 15,
        month: month as u8,
        day: two(s[4], s[5]),
        hour: two(s[7], s[8]),
        minute: two(s[10], s[11]),
        second: two(s[13], s[14]),
    })
}

#[test]
fn syslog_recognize_equals_reference() {
    let bases = [
        "Jan  1 00:00:02 srv sshd[1]: x",
        "DEC 31 23:59:59",
        "feb 09 29:05:50 2024",
        "Oct 30 19:59:09.123",
        "Sep 10 09:00:00 1",
        "May 20 10:10:10_",
    ];
    let mut seen = 0;
    for base in bases {
        let b = base.as_bytes();
        for cut in 0..=b.len() {
            assert_eq!(syslog::recognize(&b[..cut]), recognize_reference(&b[..cut]));
        }
        // every byte value in every place up to two after the stamp
        for i in 0..b.len().min(17) {
            for c in 0..=255u8 {
                let mut v = b.to_vec();
                v[i] = c;
                let (got, want) = (syslog::recognize(&v), recognize_reference(&v));
                assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&v));
                seen += usize::from(want.is_some());
            }
        }
        // two places at once among the day and time fields
        for i in [4, 5, 7, 8, 10, 11, 13, 14] {
            for j in [4, 5, 7, 8, 10, 11, 13, 14] {
                for c in b" 0123456789:/a".iter() {
                    for d in b" 0123456789:/a".iter() {
                        let mut v = b.to_vec();
                        v[i] = *c;
                        v[j] = *d;
                        assert_eq!(syslog::recognize(&v), recognize_reference(&v), "{v:?}");
                    }
                }
            }
        }
    }
    assert!(seen > 1000, "too few stamps recognized: {seen}");
}
