//! The small part of libsystemd's `sd-journal.h` this crate uses, and a
//! safe owner of one `sd_journal *`.
//!
//! Linked dynamically (`-lsystemd`, Debian `libsystemd-dev` to build,
//! `libsystemd0` at run time).

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

#[link(name = "systemd")]
extern "C" {
    fn sd_journal_open(ret: *mut *mut SdJournal, flags: c_int) -> c_int;
    fn sd_journal_open_directory(
        ret: *mut *mut SdJournal,
        path: *const c_char,
        flags: c_int,
    ) -> c_int;
    fn sd_journal_open_files(
        ret: *mut *mut SdJournal,
        paths: *const *const c_char,
        flags: c_int,
    ) -> c_int;
    fn sd_journal_open_namespace(
        ret: *mut *mut SdJournal,
        namespace: *const c_char,
        flags: c_int,
    ) -> c_int;
    fn sd_journal_close(j: *mut SdJournal);
    fn sd_journal_next(j: *mut SdJournal) -> c_int;
    fn sd_journal_previous(j: *mut SdJournal) -> c_int;
    fn sd_journal_get_realtime_usec(j: *mut SdJournal, ret: *mut u64) -> c_int;
    fn sd_journal_get_monotonic_usec(
        j: *mut SdJournal,
        ret: *mut u64,
        ret_boot_id: *mut SdId128,
    ) -> c_int;
    fn sd_journal_set_data_threshold(j: *mut SdJournal, sz: usize) -> c_int;
    fn sd_journal_enumerate_data(
        j: *mut SdJournal,
        data: *mut *const c_void,
        l: *mut usize,
    ) -> c_int;
    fn sd_journal_restart_data(j: *mut SdJournal);
    fn sd_journal_add_match(j: *mut SdJournal, data: *const c_void, size: usize) -> c_int;
    fn sd_journal_add_disjunction(j: *mut SdJournal) -> c_int;
    fn sd_journal_flush_matches(j: *mut SdJournal);
    fn sd_journal_seek_head(j: *mut SdJournal) -> c_int;
    fn sd_journal_seek_tail(j: *mut SdJournal) -> c_int;
    fn sd_journal_seek_realtime_usec(j: *mut SdJournal, usec: u64) -> c_int;
    fn sd_journal_seek_cursor(j: *mut SdJournal, cursor: *const c_char) -> c_int;
    fn sd_journal_get_cursor(j: *mut SdJournal, cursor: *mut *mut c_char) -> c_int;
    fn sd_journal_get_fd(j: *mut SdJournal) -> c_int;
    fn sd_journal_process(j: *mut SdJournal) -> c_int;
    fn sd_journal_wait(j: *mut SdJournal, timeout_usec: u64) -> c_int;
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
    fn wrap(r: c_int, j: *mut SdJournal) -> std::io::Result<RawJournal> {
        check(r)?;
        if j.is_null() {
            return Err(std::io::Error::from_raw_os_error(libc::ENOMEM));
        }
        Ok(RawJournal { j })
    }

    /// `sd_journal_open`.
    pub fn open(flags: i32) -> std::io::Result<RawJournal> {
        let mut j = ptr::null_mut();
        // SAFETY: valid out pointer.
        let r = unsafe { sd_journal_open(&mut j, flags) };
        Self::wrap(r, j)
    }

    /// `sd_journal_open_directory`.
    pub fn open_directory(path: &Path, flags: i32) -> std::io::Result<RawJournal> {
        use std::os::unix::ffi::OsStrExt;
        let p = cstring(path.as_os_str().as_bytes())?;
        let mut j = ptr::null_mut();
        // SAFETY: valid out pointer and NUL-terminated path.
        let r = unsafe { sd_journal_open_directory(&mut j, p.as_ptr(), flags) };
        Self::wrap(r, j)
    }

    /// `sd_journal_open_files`.
    pub fn open_files(paths: &[std::path::PathBuf], flags: i32) -> std::io::Result<RawJournal> {
        use std::os::unix::ffi::OsStrExt;
        let owned: Vec<CString> = paths
            .iter()
            .map(|p| cstring(p.as_os_str().as_bytes()))
            .collect::<Result<_, _>>()?;
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(ptr::null());
        let mut j = ptr::null_mut();
        // SAFETY: NULL-terminated array of NUL-terminated strings that outlive the call.
        let r = unsafe { sd_journal_open_files(&mut j, ptrs.as_ptr(), flags) };
        Self::wrap(r, j)
    }

    /// `sd_journal_open_namespace`.
    pub fn open_namespace(namespace: &str, flags: i32) -> std::io::Result<RawJournal> {
        let ns = cstring(namespace.as_bytes())?;
        let mut j = ptr::null_mut();
        // SAFETY: valid out pointer and NUL-terminated namespace.
        let r = unsafe { sd_journal_open_namespace(&mut j, ns.as_ptr(), flags) };
        Self::wrap(r, j)
    }

    /// `sd_journal_next`: `Ok(true)` when positioned on a new entry.
    pub fn next(&mut self) -> std::io::Result<bool> {
        // SAFETY: self.j is a live journal.
        check(unsafe { sd_journal_next(self.j) }).map(|r| r > 0)
    }

    /// `sd_journal_previous`.
    pub fn previous(&mut self) -> std::io::Result<bool> {
        // SAFETY: self.j is a live journal.
        check(unsafe { sd_journal_previous(self.j) }).map(|r| r > 0)
    }

    /// Realtime timestamp (µs) of the current entry.
    pub fn realtime_usec(&mut self) -> std::io::Result<u64> {
        let mut t = 0u64;
        // SAFETY: valid out pointer.
        check(unsafe { sd_journal_get_realtime_usec(self.j, &mut t) })?;
        Ok(t)
    }

    /// Monotonic timestamp (µs) of the current entry.
    pub fn monotonic_usec(&mut self) -> std::io::Result<u64> {
        let mut t = 0u64;
        let mut boot = SdId128 { bytes: [0; 16] };
        // SAFETY: valid out pointers.
        check(unsafe { sd_journal_get_monotonic_usec(self.j, &mut t, &mut boot) })?;
        Ok(t)
    }

    /// `sd_journal_set_data_threshold`.
    pub fn set_data_threshold(&mut self, sz: usize) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        check(unsafe { sd_journal_set_data_threshold(self.j, sz) }).map(|_| ())
    }

    /// Calls `f` with every `FIELD=value` data object of the current entry
    /// (the slice is only valid during the call).
    pub fn for_each_data(&mut self, f: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        unsafe { sd_journal_restart_data(self.j) };
        loop {
            let mut data: *const c_void = ptr::null();
            let mut len = 0usize;
            // SAFETY: valid out pointers.
            let r = check(unsafe { sd_journal_enumerate_data(self.j, &mut data, &mut len) })?;
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
        check(unsafe { sd_journal_add_match(self.j, data.as_ptr().cast(), data.len()) }).map(|_| ())
    }

    /// `sd_journal_add_disjunction`.
    pub fn add_disjunction(&mut self) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        check(unsafe { sd_journal_add_disjunction(self.j) }).map(|_| ())
    }

    /// `sd_journal_flush_matches`.
    pub fn flush_matches(&mut self) {
        // SAFETY: self.j is a live journal.
        unsafe { sd_journal_flush_matches(self.j) }
    }

    /// `sd_journal_seek_head`.
    pub fn seek_head(&mut self) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        check(unsafe { sd_journal_seek_head(self.j) }).map(|_| ())
    }

    /// `sd_journal_seek_tail`.
    pub fn seek_tail(&mut self) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        check(unsafe { sd_journal_seek_tail(self.j) }).map(|_| ())
    }

    /// `sd_journal_seek_realtime_usec`.
    pub fn seek_realtime_usec(&mut self, usec: u64) -> std::io::Result<()> {
        // SAFETY: self.j is a live journal.
        check(unsafe { sd_journal_seek_realtime_usec(self.j, usec) }).map(|_| ())
    }

    /// `sd_journal_seek_cursor`.
    pub fn seek_cursor(&mut self, cursor: &str) -> std::io::Result<()> {
        let c = cstring(cursor.as_bytes())?;
        // SAFETY: NUL-terminated cursor.
        check(unsafe { sd_journal_seek_cursor(self.j, c.as_ptr()) }).map(|_| ())
    }

    /// Cursor of the current entry.
    pub fn cursor(&mut self) -> std::io::Result<String> {
        let mut c: *mut c_char = ptr::null_mut();
        // SAFETY: valid out pointer; on success `c` is a malloc'ed C string.
        check(unsafe { sd_journal_get_cursor(self.j, &mut c) })?;
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
        check(unsafe { sd_journal_get_fd(self.j) })
    }

    /// `sd_journal_process`.
    pub fn process(&mut self) -> std::io::Result<c_int> {
        // SAFETY: self.j is a live journal.
        check(unsafe { sd_journal_process(self.j) })
    }

    /// `sd_journal_wait` (`u64::MAX` waits forever).
    pub fn wait(&mut self, timeout_usec: u64) -> std::io::Result<c_int> {
        // SAFETY: self.j is a live journal.
        check(unsafe { sd_journal_wait(self.j, timeout_usec) })
    }
}

impl Drop for RawJournal {
    fn drop(&mut self) {
        // SAFETY: closed exactly once; the pointer is not used afterwards.
        unsafe { sd_journal_close(self.j) }
    }
}
