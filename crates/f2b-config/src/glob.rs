//! Python's `glob.glob` (non-recursive) over the real filesystem, returning
//! matches in directory order like Python's `os.scandir`.

use std::path::Path;

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Python's `fnmatch.fnmatchcase(name, pat)`.
pub fn fnmatch(name: &str, pat: &str) -> bool {
    let n: Vec<char> = name.chars().collect();
    let p: Vec<char> = pat.chars().collect();
    match_at(&n, 0, &p, 0)
}

/// Parses a `[...]` class at `p[i]` (which is `[`); returns (matcher end index, set) or None if unclosed.
fn class_end(p: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if j < p.len() && p[j] == '!' {
        j += 1;
    }
    if j < p.len() && p[j] == ']' {
        j += 1;
    }
    while j < p.len() && p[j] != ']' {
        j += 1;
    }
    (j < p.len()).then_some(j)
}

fn class_matches(p: &[char], i: usize, end: usize, c: char) -> bool {
    let mut j = i + 1;
    let neg = p.get(j) == Some(&'!');
    if neg {
        j += 1;
    }
    let mut hit = false;
    while j < end {
        let lo = p[j];
        if j + 2 < end && p[j + 1] == '-' {
            if lo <= c && c <= p[j + 2] {
                hit = true;
            }
            j += 3;
        } else {
            if lo == c {
                hit = true;
            }
            j += 1;
        }
    }
    hit != neg
}

fn match_at(n: &[char], ni: usize, p: &[char], pi: usize) -> bool {
    if pi == p.len() {
        return ni == n.len();
    }
    match p[pi] {
        '*' => {
            let mut k = pi;
            while k < p.len() && p[k] == '*' {
                k += 1;
            }
            (ni..=n.len()).any(|s| match_at(n, s, p, k))
        }
        '?' => ni < n.len() && match_at(n, ni + 1, p, pi + 1),
        '[' => match class_end(p, pi) {
            Some(end) => {
                ni < n.len() && class_matches(p, pi, end, n[ni]) && match_at(n, ni + 1, p, end + 1)
            }
            None => ni < n.len() && n[ni] == '[' && match_at(n, ni + 1, p, pi + 1),
        },
        c => ni < n.len() && n[ni] == c && match_at(n, ni + 1, p, pi + 1),
    }
}

fn lexists(p: &str) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn list_dir(dir: &str, dironly: bool) -> Vec<String> {
    let d = if dir.is_empty() { "." } else { dir };
    let Ok(rd) = std::fs::read_dir(d) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| !dironly || Path::new(&e.path()).is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn split(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => {
            let head = &p[..=i];
            let t = head.trim_end_matches('/');
            (if t.is_empty() { head } else { t }, &p[i + 1..])
        }
        None => ("", p),
    }
}

fn join(a: &str, b: &str) -> String {
    crate::py::join(a, b)
}

fn iglob(path: &str, dironly: bool) -> Vec<String> {
    let (dirname, basename) = split(path);
    if !has_magic(path) {
        if basename.is_empty() {
            if Path::new(dirname).is_dir() {
                return vec![path.to_owned()];
            }
        } else if lexists(path) {
            return vec![path.to_owned()];
        }
        return Vec::new();
    }
    if dirname.is_empty() {
        return glob_in_dir("", basename, dironly);
    }
    let dirs: Vec<String> = if dirname != path && has_magic(dirname) {
        iglob(dirname, true)
    } else {
        vec![dirname.to_owned()]
    };
    let mut out = Vec::new();
    for d in dirs {
        for name in glob_in_dir(&d, basename, dironly) {
            out.push(join(&d, &name));
        }
    }
    out
}

fn glob_in_dir(dir: &str, pattern: &str, dironly: bool) -> Vec<String> {
    if !has_magic(pattern) {
        if pattern.is_empty() {
            return if Path::new(if dir.is_empty() { "." } else { dir }).is_dir() {
                vec![String::new()]
            } else {
                Vec::new()
            };
        }
        return if lexists(&join(dir, pattern)) {
            vec![pattern.to_owned()]
        } else {
            Vec::new()
        };
    }
    let hidden_ok = pattern.starts_with('.');
    list_dir(dir, dironly)
        .into_iter()
        .filter(|n| hidden_ok || !n.starts_with('.'))
        .filter(|n| fnmatch(n, pattern))
        .collect()
}

/// `glob.glob(path)`.
pub fn glob(path: &str) -> Vec<String> {
    iglob(path, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like_python() {
        assert!(fnmatch("a.log", "*.log"));
        assert!(fnmatch("a.log", "?.log"));
        assert!(!fnmatch("ab.log", "?.log"));
        assert!(fnmatch("b", "[abc]"));
        assert!(fnmatch("d", "[!abc]"));
        assert!(fnmatch("x5", "x[0-9]"));
        assert!(fnmatch("[", "["));
    }

    #[test]
    fn glob_finds_files() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().to_string_lossy().into_owned();
        std::fs::write(format!("{base}/a.log"), "").unwrap();
        std::fs::write(format!("{base}/.h.log"), "").unwrap();
        std::fs::create_dir(format!("{base}/sub")).unwrap();
        std::fs::write(format!("{base}/sub/b.log"), "").unwrap();
        assert_eq!(
            glob(&format!("{base}/*.log")),
            vec![format!("{base}/a.log")]
        );
        assert_eq!(
            glob(&format!("{base}/*/b.log")),
            vec![format!("{base}/sub/b.log")]
        );
        assert_eq!(
            glob(&format!("{base}/a.log")),
            vec![format!("{base}/a.log")]
        );
        assert!(glob(&format!("{base}/none")).is_empty());
    }
}
