//! One server per database: an exclusive lock on `<database>.lock`, held for the life of the
//! store. Two servers on one SQLite file would each send the same deliveries and log calls
//! the other made as interrupted; the second one refuses to start instead, naming the file and
//! the process holding it. The lock is the operating system's (`flock`), so it goes with the
//! process, also on `kill -9`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{StoreError, StoreResult};

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub(super) struct DatabaseLock {
    _file: File,
}

/// `<database>.lock`.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl DatabaseLock {
    /// Takes the lock of `database`, or says who holds it.
    pub(super) fn acquire(database: &Path) -> StoreResult<Self> {
        let path = lock_path(database);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::InUse(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another process".to_string(),
                    pid => format!("another process (pid {pid})"),
                };
                return Err(StoreError::InUse(format!(
                    "the database {} is in use by {holder}, which holds {}; stop it, or give \
                     this server another `database`",
                    database.display(),
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::InUse(format!("cannot lock {}: {e}", path.display())))
            }
        }
        let pid = std::process::id().to_string();
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()));
        if let Err(e) = written {
            tracing::warn!(error = %e, path = %path.display(), "cannot write the pid into the lock file");
        }
        Ok(Self { _file: file })
    }
}
