//! The process's allocator settings, applied first thing in `main`.
//!
//! glibc's malloc gives threads that contend for it arenas of their own, up to eight per core,
//! and memory freed into an arena mostly stays with the process. A node runs many short-lived
//! blocking threads (every database call is one), so its resident memory grew with the number
//! of arenas rather than with the work: at 1,000,000 tickets a SQLite node peaked at 191 MB
//! in the mixed load, and 125 MB with two arenas; the cap costs some read throughput (about a
//! tenth in an A/B at 20,000 tickets), which `MALLOC_ARENA_MAX` trades back
//! (docs/PERFORMANCE.md, "Memory: capped malloc arenas"; ADR-36). mimalloc was tried
//! instead and doubled the peak.
//!
//! This is the crate's one use of `unsafe` (a test holds it to this file).
#![allow(unsafe_code)]

/// Caps glibc's malloc at one arena per core (at least two) unless the operator chose a cap
/// with `MALLOC_ARENA_MAX`, which glibc has read already. Must run before the first thread
/// is spawned: the cap only stops new arenas. Does nothing off glibc.
pub fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only sets a tunable of glibc's allocator; it takes plain integers
        // and is called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
