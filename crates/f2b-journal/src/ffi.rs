//! The small part of libsystemd's `sd-journal.h` this crate uses, and a
//! safe owner of one `sd_journal *`.
//!
//! libsystemd is loaded at run time with `dlopen` (Debian `libsystemd0`),
//! only when a journal is opened; building needs neither the library nor
//! its headers.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::ptr;

#[repr(C)]
pub(crate) struct SdJournal {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct SdId128 {
    pub bytes: [u8; 16],
}

/// The libsystemd functions this crate calls, resolved with `dlsym`.
///
/// libsystemd is opened with `dlopen` the first time a journal is opened
/// (never at process start), so a server without a journal jail neither
/// maps libsystemd nor its dependencies (libgcrypt, liblzma, libzstd,
/// liblz4, libcap, libgpg-error), and a host without libsystemd runs every
/// other jail.
pub(crate) struct Api {
    open: unsafe extern "C" fn(*mut *mut SdJournal, c_int) -> c_int,
    open_directory: unsafe extern "C" fn(*mut *mut SdJournal, *const c_char, c_int) -> c_int,
    open_files: unsafe extern "C" fn(*mut *mut SdJournal, *const *const c_char, c_int) -> c_int,
    open_namespace: unsafe extern "C" fn(*mut *mut SdJournal, *const c_char, c_int) -> c_int,
    close: unsafe extern "C" fn(*mut SdJournal),
    next: unsafe extern "C" fn(*mut SdJournal) -> c_int,
    previous: unsafe extern "C" fn(*mut SdJournal) -> c_int,
    get_realtime_usec: unsafe extern "C" fn(*mut SdJournal, *mut u64) -> c_int,
    get_monotonic_usec: unsafe extern "C" fn(*mut SdJournal, *mut u64, *mut SdId128) -> c_int,
    set_data_threshold: unsafe extern "C" fn(*mut SdJournal, usize) -> c_int,
    enumerate_data: unsafe extern "C" fn(*mut SdJournal, *mut *const c_void, *mut usize) -> c_int,
    restart_data: unsafe extern "C" fn(*mut SdJournal),
    add_match: unsafe extern "C" fn(*mut SdJournal, *const c_void, usize) -> c_int,
    add_disjunction: unsafe extern "C" fn(*mut SdJournal) -> c_int,
    flush_matches: unsafe extern "C" fn(*mut SdJournal),
    seek_head: unsafe extern "C" fn(*mut SdJournal) -> c_int,
    seek_tail: unsafe extern "C" fn(*mut SdJournal) -> c_int,
    seek_realtime_usec: unsafe extern "C" fn(*mut SdJournal, u64) -> c_int,
    seek_cursor: unsafe extern "C" fn(*mut SdJournal, *const c_char) -> c_int,
    get_cursor: unsafe extern "C" fn(*mut SdJournal, *mut *mut c_char) -> c_int,
    get_fd: unsafe extern "C" fn(*mut SdJournal) -> c_int,
    process: unsafe extern "C" fn(*mut SdJournal) -> c_int,
    wait: unsafe extern "C" fn(*mut SdJournal, u64) -> c_int,
}

/// The sonames tried, in order: the ABI-stable runtime name (Debian
/// `libsystemd0`), then the development symlink.
pub(crate) const LIBRARY_NAMES: [&str; 2] = ["libsystemd.so.0", "libsystemd.so"];

/// Environment variable naming another library file to load instead
/// (tests, unusual installs).
pub(crate) const LIBRARY_ENV: &str = "F2B_LIBSYSTEMD";

/// Why libsystemd could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadError {
    /// The library names tried.
    pub library: String,
    /// `dlerror()` text, or the missing symbol.
    pub reason: String,
}

fn dlerror_text() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated thread-local string.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".to_owned()
    } else {
        // SAFETY: non-NULL, NUL-terminated, read before any other dl call.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

/// A `dlsym` result as the function pointer type `F`.
///
/// # Safety
/// `p` must be a non-NULL function whose C signature is `F`.
unsafe fn fn_from_sym<F: Copy>(p: *mut c_void) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: same size (checked); fn pointers and data pointers share a
    // representation on every platform libsystemd supports; the caller
    // guarantees the signature.
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) }
}

/// Opens the first loadable of `names` and resolves every symbol of [`Api`].
/// The handle is never closed (the function pointers live as long as the
/// process).
pub(crate) fn load(names: &[&str]) -> Result<Api, LoadError> {
    let mut reasons = Vec::new();
    let mut handle = ptr::null_mut();
    for name in names {
        let c = CString::new(*name).map_err(|_| LoadError {
            library: (*name).to_owned(),
            reason: "name contains a NUL byte".to_owned(),
        })?;
        // SAFETY: NUL-terminated name; RTLD_LOCAL keeps its symbols out of
        // the global namespace.
        handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if !handle.is_null() {
            break;
        }
        reasons.push(dlerror_text());
    }
    let library = names.join(", ");
    if handle.is_null() {
        return Err(LoadError {
            library,
            reason: reasons.join("; "),
        });
    }
    macro_rules! sym {
        ($name:literal) => {{
            // SAFETY: handle is a live dlopen handle; the name is a NUL-terminated literal.
            let f = unsafe { libc::dlsym(handle, concat!($name, "\0").as_ptr().cast()) };
            if f.is_null() {
                return Err(LoadError {
                    library,
                    reason: format!("symbol {} not found", $name),
                });
            }
            // SAFETY: the symbol is the libsystemd function of that name, whose C
            // signature (sd-journal.h) is the field's type.
            unsafe { fn_from_sym(f) }
        }};
    }
    Ok(Api {
        open: sym!("sd_journal_open"),
        open_directory: sym!("sd_journal_open_directory"),
        open_files: sym!("sd_journal_open_files"),
        open_namespace: sym!("sd_journal_open_namespace"),
        close: sym!("sd_journal_close"),
        next: sym!("sd_journal_next"),
        previous: sym!("sd_journal_previous"),
        get_realtime_usec: sym!("sd_journal_get_realtime_usec"),
        get_monotonic_usec: sym!("sd_journal_get_monotonic_usec"),
        set_data_threshold: sym!("sd_journal_set_data_threshold"),
        enumerate_data: sym!("sd_journal_enumerate_data"),
        restart_data: sym!("sd_journal_restart_data"),
        add_match: sym!("sd_journal_add_match"),
        add_disjunction: sym!("sd_journal_add_disjunction"),
        flush_matches: sym!("sd_journal_flush_matches"),
        seek_head: sym!("sd_journal_seek_head"),
        seek_tail: sym!("sd_journal_seek_tail"),
        seek_realtime_usec: sym!("sd_journal_seek_realtime_usec"),
        seek_cursor: sym!("sd_journal_seek_cursor"),
        get_cursor: sym!("sd_journal_get_cursor"),
        get_fd: sym!("sd_journal_get_fd"),
        process: sym!("sd_journal_process"),
        wait: sym!("sd_journal_wait"),
    })
}

/// libsystemd, loaded on first use (once per process; a failure is
/// remembered, so a missing library is reported the same way every time).
pub(crate) fn api() -> Result<&'static Api, LoadError> {
    static API: std::sync::OnceLock<Result<Api, LoadError>> = std::sync::OnceLock::new();
    API.get_or_init(|| match std::env::var(LIBRARY_ENV) {
        Ok(name) if !name.is_empty() => load(&[name.as_str()]),
        _ => load(&LIBRARY_NAMES),
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// `SD_JOURNAL_NOP`.
pub(crate) const SD_JOURNAL_NOP: c_int = 0;
/// `SD_JOURNAL_APPEND`.
pub(crate) const SD_JOURNAL_APPEND: c_int = 1;
/// `SD_JOURNAL_INVALIDATE`.
pub(crate) const SD_JOURNAL_INVALIDATE: c_int = 2;

/// A negative errno from libsystemd as an `io::Error`.
fn err(r: c_int) -> std::io::Error {
    std::io::Error::from_raw_os_error(-r)
}

fn check(r: c_int) -> std::io::Result<c_int> {
    if r < 0 {
        Err(err(r))
    } else {
        Ok(r)
    }
}

fn cstring(s: &[u8]) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// Owns one `sd_journal *`; closes it on drop.
pub(crate) struct RawJournal {
    api: &'static Api,
    j: *mut SdJournal,
}

// SAFETY: an sd_journal object may be moved between threads; it must not be
// used from two threads at once, which `&mut self` on every call ensures
// (the type is not `Sync`).
unsafe impl Send for RawJournal {}

impl std::fmt::Debug for RawJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawJournal").finish_non_exhaustive()
    }
}

impl RawJournal {
    fn wrap(api: &'static Api, r: c_int, j: *mut SdJournal) -> std::io::Result<RawJournal> {
        check(r)?;
        if j.is_null() {
            return Err(std::io::Error::from_raw_os_error(libc::ENOMEM));
        }
        Ok(RawJournal { api, j })
    }

    /// `sd_journal_open`.
    pub fn open(api: &'static Api, flags: i32) -> std::io::Result<RawJournal> {
        let mut j = ptr::null_mut();
        // SAFETY: valid out pointer.
        let r = unsafe { (api.open)(&mut j, flags) };
        Self::wrap(api, r, j)
    }

    /// `sd_journal_open_directory`.
    pub fn open_directory(
        api: &'static Api,
        path: &Path,
        flags: i32,
    ) -> std::io::Result<RawJournal> {
        use std::os::unix::ffi::OsStrExt;
        let p = cstring(path.as_os_str().as_bytes())?;
        let mut j = ptr::null_mut();
        // SAFETY: valid out pointer and NUL-terminated path.
        let r = unsafe { (api.open_directory)(&mut j, p.as_ptr(), flags) };
        Self::wrap(api, r, j)
    }

    /// `sd_journal_open_files`.
    pub fn open_files(
        api: &'static Api,
        paths: &[std::path::PathBuf],
        flags: i32,
    ) -> std::io::Result<RawJournal> {
        use std::os::unix::ffi::OsStrExt;
        let owned: Vec<CString> = paths
            .iter()
            .map(|p| cstring(p.as_os_str().as_bytes()))
            .collect::<Result<_, _>>()?;
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(ptr::null());
        let mut j = ptr::null_mut();
        // SAFETY: NULL-terminated array of NUL-terminated strings that outlive the call.
        let r = unsafe { (api.open_files)(&mut j, ptrs.as_ptr(), flags) };
        Self::wrap(api, r, j)
    }

    /// `sd_journal_open_namespace`.
    pub fn open_namespace(
        api: &'static Api,
        namespace: &str,
        flags: i32,
    ) -> std::io::Result<RawJournal> {
        let ns = cstring(namespace.as_bytes())?;
        let mut j = ptr::null_mut();
        // SAFETY: valid out pointer and NUL-terminated namespace.
        let r = unsafe { (api.open_namespace)(&mut j, ns.as_ptr(), flags) };
        Self::wrap(api, r, j)
    }

    /// `sd_journal_next`: `Ok(true)` when positioned on a new entry.
    pub fn next(&mut self) -> std::io::Result<bool> {
        // SAFETY: self.j is a live journal.
        check(unsafe { (self.api.next)(self.j) }).map(|r| r > 0)
    }

    /// `sd_journal_previous`.
    pub fn previous(&mut self) -> std::io::Result<bool> {
        // SAFETY: self.j is a live journal.
        check(unsafe { (self.api.previous)(self.j) }).map(|r| r > 0)
    }

    /// Realtime timestamp (µs) of the current entry.
    pub fn realtime_usec(&mut self) -> std::io::Result<u64> {
        let mut t = 0u64;
        // SAFETY: valid out pointer.
        check(unsafe { (self.api.get_realtime_usec)(self.j, &mut t) })?;
        Ok(t)
    }

    /// Monotonic timestamp (µs) of the current entry.
    pub fn monotonic_usec(&mut self) -> std::io::Result<u64> {
        let mut t = 0u64;
        let mut boot = SdId128 { bytes: [0; 16] };
        // SAFETY: valid out pointers.
        check(unsafe { (self.api.get_monotonic_usec)(self.j, &mut t, &mut boot) })?;
        Ok(t)
    }

    /// `sd_journal_set_data_threshold`.
    pub fn set_data_threshold(&mut self, sz: usize) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        check(unsafe { (self.api.set_data_threshold)(self.j, sz) }).map(|_| ())
    }

    /// Calls `f` with every `FIELD=value` data object of the current entry
    /// (the slice is only valid during the call).
    pub fn for_each_data(&mut self, f: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        unsafe { (self.api.restart_data)(self.j) };
        loop {
            let mut data: *const c_void = ptr::null();
            let mut len = 0usize;
            // SAFETY: valid out pointers.
            let r = check(unsafe { (self.api.enumerate_data)(self.j, &mut data, &mut len) })?;
            if r == 0 {
                return Ok(());
            }
            if data.is_null() {
                continue;
            }
            // SAFETY: libsystemd returned `len` readable bytes at `data`, valid
            // until the next enumerate call; the slice does not escape `f`.
            let slice = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
            f(slice);
        }
    }

    /// `sd_journal_add_match`.
    pub fn add_match(&mut self, data: &[u8]) -> std::io::Result<()> {
        // SAFETY: pointer and length describe `data`.
        check(unsafe { (self.api.add_match)(self.j, data.as_ptr().cast(), data.len()) }).map(|_| ())
    }

    /// `sd_journal_add_disjunction`.
    pub fn add_disjunction(&mut self) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        check(unsafe { (self.api.add_disjunction)(self.j) }).map(|_| ())
    }

    /// `sd_journal_flush_matches`.
    pub fn flush_matches(&mut self) {
        // SAFETY: self.j is a live journal.
        unsafe { (self.api.flush_matches)(self.j) }
    }

    /// `sd_journal_seek_head`.
    pub fn seek_head(&mut self) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        check(unsafe { (self.api.seek_head)(self.j) }).map(|_| ())
    }

    /// `sd_journal_seek_tail`.
    pub fn seek_tail(&mut self) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        check(unsafe { (self.api.seek_tail)(self.j) }).map(|_| ())
    }

    /// `sd_journal_seek_realtime_usec`.
    pub fn seek_realtime_usec(&mut self, usec: u64) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        check(unsafe { (self.api.seek_realtime_usec)(self.j, usec) }).map(|_| ())
    }

    /// `sd_journal_seek_cursor`.
    pub fn seek_cursor(&mut self, cursor: &str) -> std::io::Result<()> {
        let c = cstring(cursor.as_bytes())?;
        // SAFETY: NUL-terminated cursor.
        check(unsafe { (self.api.seek_cursor)(self.j, c.as_ptr()) }).map(|_| ())
    }

    /// Cursor of the current entry.
    pub fn cursor(&mut self) -> std::io::Result<String> {
        let mut c: *mut c_char = ptr::null_mut();
        // SAFETY: valid out pointer; on success `c` is a malloc'ed C string.
        check(unsafe { (self.api.get_cursor)(self.j, &mut c) })?;
        if c.is_null() {
            return Err(std::io::Error::from_raw_os_error(libc::ENOMEM));
        }
        // SAFETY: `c` is a valid NUL-terminated string owned by us.
        let s = unsafe { CStr::from_ptr(c) }.to_string_lossy().into_owned();
        // SAFETY: allocated by libsystemd with malloc, freed once.
        unsafe { libc::free(c.cast()) };
        Ok(s)
    }

    /// `sd_journal_get_fd`: the inotify descriptor to poll.
    pub fn fd(&mut self) -> std::io::Result<c_int> {
        // SAFETY: self.j is a live journal.
        check(unsafe { (self.api.get_fd)(self.j) })
    }

    /// `sd_journal_process`.
    pub fn process(&mut self) -> std::io::Result<c_int> {
        // SAFETY: self.j is a live journal.
        check(unsafe { (self.api.process)(self.j) })
    }

    /// `sd_journal_wait` (`u64::MAX` waits forever).
    pub fn wait(&mut self, timeout_usec: u64) -> std::io::Result<c_int> {
        // SAFETY: self.j is a live journal.
        check(unsafe { (self.api.wait)(self.j, timeout_usec) })
    }
}

impl Drop for RawJournal {
    fn drop(&mut self) {
        // SAFETY: closed exactly once; the pointer is not used afterwards.
        unsafe { (self.api.close)(self.j) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_is_a_clear_error() {
        let e = match load(&["libf2b-no-such-library.so.0"]) {
            Ok(_) => panic!("a library that does not exist was loaded"),
            Err(e) => e,
        };
        assert_eq!(e.library, "libf2b-no-such-library.so.0");
        assert!(
            e.reason.contains("libf2b-no-such-library.so.0"),
            "{}",
            e.reason
        );
        let shown = crate::JournalError::Library {
            library: e.library,
            reason: e.reason,
        }
        .to_string();
        assert!(shown.contains("needs libsystemd"), "{shown}");
        assert!(shown.contains("libsystemd0"), "{shown}");
    }

    #[test]
    fn library_without_the_symbols_is_rejected() {
        // libc is loadable but has no sd_journal_* functions.
        let e = match load(&["libc.so.6"]) {
            Ok(_) => panic!("libc resolved sd_journal_open"),
            Err(e) => e,
        };
        assert_eq!(e.reason, "symbol sd_journal_open not found");
    }

    #[test]
    fn fallback_to_the_next_name() {
        // The journal tests need libsystemd0 installed; its soname must load
        // after a first name that does not.
        let api = load(&["libf2b-no-such-library.so.0", LIBRARY_NAMES[0]]);
        assert!(api.is_ok(), "{:?}", api.err());
    }
}
