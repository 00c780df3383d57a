//! libnftables, loaded at run time with `dlopen("libnftables.so.1")`
//! (Debian package `libnftables1`; no -dev package needed to build). Used
//! for the control plane only: table, sets, chains and rules, written in nft
//! syntax and committed as one transaction per call.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

/// Why libnftables could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LibError {
    /// dlopen failed.
    #[error("cannot load {lib}: {reason} (install the Debian package libnftables1)")]
    Load {
        /// Library name tried.
        lib: String,
        /// dlerror() text.
        reason: String,
    },
    /// A required symbol is missing.
    #[error("{lib} lacks symbol {symbol}")]
    Symbol {
        /// Library name.
        lib: String,
        /// The missing symbol.
        symbol: &'static str,
    },
    /// nft_ctx_new returned NULL.
    #[error("nft_ctx_new failed")]
    Ctx,
}

type CtxNew = unsafe extern "C" fn(u32) -> *mut c_void;
type CtxFree = unsafe extern "C" fn(*mut c_void);
type CtxInt = unsafe extern "C" fn(*mut c_void) -> c_int;
type CtxStr = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type RunCmd = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

/// An open libnftables context. Not thread-safe; owned by one backend.
pub struct Nft {
    handle: *mut c_void,
    ctx: *mut c_void,
    ctx_free: CtxFree,
    run: RunCmd,
    get_out: CtxStr,
    get_err: CtxStr,
}

// SAFETY: the context is only ever used through &mut self by one owner at a
// time; libnftables has no thread affinity, only no internal locking.
unsafe impl Send for Nft {}

impl Drop for Nft {
    fn drop(&mut self) {
        // SAFETY: ctx came from nft_ctx_new and is freed once; the library
        // handle stays loaded for the process lifetime (no dlclose: other
        // contexts may still use it).
        unsafe { (self.ctx_free)(self.ctx) };
    }
}

unsafe fn sym<T: Copy>(handle: *mut c_void, lib: &str, name: &'static str) -> Result<T, LibError> {
    let c = CString::new(name).map_err(|_| LibError::Symbol {
        lib: lib.to_string(),
        symbol: name,
    })?;
    // SAFETY: handle is a live dlopen handle; c is NUL-terminated.
    let p = unsafe { libc::dlsym(handle, c.as_ptr()) };
    if p.is_null() {
        return Err(LibError::Symbol {
            lib: lib.to_string(),
            symbol: name,
        });
    }
    // SAFETY: the caller names T as the function pointer type of `name`.
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
}

impl Nft {
    /// Loads `lib` (default `libnftables.so.1`) and creates a context in the
    /// calling thread's network namespace.
    pub fn open(lib: &str) -> Result<Nft, LibError> {
        let cname = CString::new(lib).map_err(|_| LibError::Load {
            lib: lib.to_string(),
            reason: "NUL in name".into(),
        })?;
        // SAFETY: dlopen with a valid C string.
        let handle = unsafe { libc::dlopen(cname.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            // SAFETY: dlerror returns a thread-local C string or NULL.
            let reason = unsafe {
                let e = libc::dlerror();
                if e.is_null() {
                    "unknown".to_string()
                } else {
                    CStr::from_ptr(e).to_string_lossy().into_owned()
                }
            };
            return Err(LibError::Load {
                lib: lib.to_string(),
                reason,
            });
        }
        // SAFETY: symbol types match libnftables.h of libnftables 1.x.
        unsafe {
            let ctx_new: CtxNew = sym(handle, lib, "nft_ctx_new")?;
            let ctx_free: CtxFree = sym(handle, lib, "nft_ctx_free")?;
            let buf_out: CtxInt = sym(handle, lib, "nft_ctx_buffer_output")?;
            let buf_err: CtxInt = sym(handle, lib, "nft_ctx_buffer_error")?;
            let get_out: CtxStr = sym(handle, lib, "nft_ctx_get_output_buffer")?;
            let get_err: CtxStr = sym(handle, lib, "nft_ctx_get_error_buffer")?;
            let run: RunCmd = sym(handle, lib, "nft_run_cmd_from_buffer")?;
            let ctx = ctx_new(0);
            if ctx.is_null() {
                return Err(LibError::Ctx);
            }
            buf_out(ctx);
            buf_err(ctx);
            Ok(Nft {
                handle,
                ctx,
                ctx_free,
                run,
                get_out,
                get_err,
            })
        }
    }

    /// Runs an nft script (one transaction). Returns its output, or the
    /// error text libnftables produced.
    pub fn run(&mut self, script: &str) -> Result<String, String> {
        let c = CString::new(script).map_err(|_| "NUL byte in nft script".to_string())?;
        // SAFETY: ctx is live; c is NUL-terminated; buffers are read right
        // after the call, before the next one invalidates them.
        unsafe {
            let rc = (self.run)(self.ctx, c.as_ptr());
            let out = cstr((self.get_out)(self.ctx));
            let err = cstr((self.get_err)(self.ctx));
            if rc != 0 {
                return Err(if err.trim().is_empty() {
                    format!("nft returned {rc}")
                } else {
                    err.trim().to_string()
                });
            }
            Ok(out)
        }
    }

    /// The dlopen handle (kept for diagnostics).
    pub fn is_loaded(&self) -> bool {
        !self.handle.is_null()
    }
}

unsafe fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: libnftables returns NUL-terminated buffers it owns.
        unsafe { CStr::from_ptr(p).to_string_lossy().into_owned() }
    }
}
