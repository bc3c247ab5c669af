//! The spool's file-system safety: a directory only this user can write,
//! files created new (`O_EXCL`, never through a symlink) with mode 0600,
//! published under their final name without replacing anything, and read
//! without following symlinks. Queued spans are private data, and a file
//! another user could plant or swap would be sent with the app's token.

use rustix::fs::OFlags;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Why a directory is not used as a spool.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("cannot create or read it: {0}")]
    Io(#[from] io::Error),
    #[error("it is not a directory")]
    NotADirectory,
    #[error("it belongs to uid {owner}, not to this process's uid {me}")]
    NotOwned { owner: u32, me: u32 },
    #[error("others may write to it (mode {mode:o})")]
    WritableByOthers { mode: u32 },
}

/// Creates the directory (0700, parents too) if missing, and accepts it only
/// when this user owns it and nobody else may write to it.
pub(crate) fn secure_dir(dir: &Path) -> Result<(), DirError> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(DirError::NotADirectory);
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(DirError::NotOwned {
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(DirError::WritableByOthers { mode });
    }
    Ok(())
}

/// A new file (never an existing one, never through a symlink), 0600.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(no_follow())
        .open(path)
}

/// Opens a spool file for reading and locking, refusing a symlink or
/// anything but a regular file.
pub(crate) fn open_existing(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(no_follow())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Writes `body` to a new temporary file, syncs it, and gives it its final
/// name only if that name is free: a crash leaves the whole file or none,
/// and nothing is replaced. The temporary file stays locked while it is
/// written, so that another `Spool` opening the directory does not take it
/// for a crash's leftover.
pub(crate) fn write_new(temporary: &Path, path: &Path, body: &[u8]) -> io::Result<()> {
    let written = (|| {
        let mut file = create_new(temporary)?;
        // Best effort: a file system without locks must not cost the batch.
        let _ = file.lock();
        file.write_all(body)?;
        file.sync_all()?;
        publish(temporary, path)
    })();
    if let Err(error) = written {
        // Not a request: the temporary name goes (if it was ever made).
        let _ = fs::remove_file(temporary);
        return Err(error);
    }
    if let Err(error) = sync_dir(path) {
        let _ = fs::remove_file(path);
        return Err(error);
    }
    Ok(())
}

/// Gives the temporary file its final name without replacing anything: a
/// hard link (which fails on an existing name, even a dangling symlink),
/// then the temporary name is dropped.
fn publish(temporary: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(temporary, path) {
        Ok(()) => {
            // A leftover temporary name is cleaned up by the next open.
            let _ = fs::remove_file(temporary);
            Ok(())
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Err(error),
        // A file system without hard links: the final name is this spool's
        // own, in a directory only this user may write, so a rename onto a
        // free name is as safe.
        Err(_) if fs::symlink_metadata(path).is_err() => fs::rename(temporary, path),
        Err(error) => Err(error),
    }
}

/// Syncs the directory holding `path`, so a rename or unlink is durable.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Whether `file` (open) is still what `path` names: another `Spool` may
/// have delivered and removed it since it was listed.
pub(crate) fn still_at(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

fn no_follow() -> i32 {
    // O_NOFOLLOW fits in an i32 on every Unix; the cast only changes the type.
    OFlags::NOFOLLOW.bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn scratch(tag: &str) -> io::Result<std::path::PathBuf> {
        let dir = std::env::temp_dir().join(format!(
            "otelite-files-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    #[test]
    fn a_new_directory_is_private_and_files_are_0600() -> Result<(), DirError> {
        let base = scratch("private")?;
        let dir = base.join("spool");
        secure_dir(&dir)?;
        assert_eq!(fs::metadata(&dir)?.mode() & 0o777, 0o700);
        write_new(&dir.join("a.tmp"), &dir.join("a"), b"body")?;
        assert_eq!(fs::metadata(dir.join("a"))?.mode() & 0o777, 0o600);
        assert!(!dir.join("a.tmp").exists());
        fs::remove_dir_all(base)?;
        Ok(())
    }

    #[test]
    fn a_directory_others_may_write_is_refused() -> Result<(), DirError> {
        let dir = scratch("shared")?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))?;
        assert!(matches!(
            secure_dir(&dir),
            Err(DirError::WritableByOthers { mode: 0o777 })
        ));
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn a_directory_of_another_user_is_refused() -> Result<(), DirError> {
        let me = rustix::process::geteuid();
        let dir = scratch("owner")?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        if me.is_root() {
            // Only root can hand a directory to someone else.
            std::os::unix::fs::chown(&dir, Some(65534), None)?;
            assert!(matches!(
                secure_dir(&dir),
                Err(DirError::NotOwned { owner: 65534, .. })
            ));
        } else {
            // A directory root owns stands in for another user's.
            assert!(matches!(
                secure_dir(Path::new("/")),
                Err(DirError::NotOwned { owner: 0, .. })
            ));
        }
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn a_planted_symlink_is_neither_followed_nor_replaced() -> Result<(), DirError> {
        let dir = scratch("symlink")?;
        let victim = dir.join("victim");
        fs::write(&victim, b"precious")?;
        // As the temporary name: creating it fails, the target is untouched.
        symlink(&victim, dir.join("t.tmp"))?;
        assert!(write_new(&dir.join("t.tmp"), &dir.join("t"), b"spans").is_err());
        // As the final name: the link stays a link, the target untouched.
        symlink(&victim, dir.join("f"))?;
        assert!(write_new(&dir.join("f.tmp"), &dir.join("f"), b"spans").is_err());
        assert_eq!(fs::read(&victim)?, b"precious");
        assert!(fs::symlink_metadata(dir.join("f"))?.is_symlink());
        // And a symlink is never read as a spool file.
        assert!(open_existing(&dir.join("f")).is_err());
        fs::remove_dir_all(dir)?;
        Ok(())
    }
}
