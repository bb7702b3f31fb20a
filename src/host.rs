//! The machine mailout runs on: its name, and whether a process on it is still running.
//! Send workers register with both, so that a worker killed on this machine can have its
//! claims released at once by the next mailout that starts here.

use std::path::Path;

/// This machine's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether process `pid` on this machine is running (true when that cannot be known).
pub fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// Releases the claims of workers registered from this machine whose process has gone;
/// returns how many there were.
pub fn reap_dead_workers(store: &dyn crate::store::Journal) -> crate::error::Result<usize> {
    let host = hostname();
    let me = std::process::id();
    let mut reaped = 0;
    for w in store.workers()? {
        if w.host == host && w.pid != me && !process_alive(w.pid) {
            tracing::info!(
                "releasing the claims of worker {} (pid {} is gone)",
                w.id,
                w.pid
            );
            store.retire_worker(w.id)?;
            reaped += 1;
        }
    }
    Ok(reaped)
}
