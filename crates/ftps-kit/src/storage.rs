//! What the server's files are: the [`Storage`] trait and [`LocalFs`], a local directory tree
//! jailed to a root.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ftps_proto::codec::listing::{FtpTime, Permissions};
use ftps_proto::server::{DirEntry, DirEntryKind, FsError};

/// A download source.
pub type Download = Box<dyn Read + Send>;

/// An upload in progress. Bytes written are not visible under the target name until
/// [`commit`](Self::commit); [`abort`](Self::abort) (or dropping it) discards them.
pub trait Upload: Send {
    /// Appends `bytes`.
    fn write(&mut self, bytes: &[u8]) -> Result<(), FsError>;
    /// The upload is complete: make it visible under its name.
    fn commit(self: Box<Self>) -> Result<(), FsError>;
    /// The upload failed or was truncated: discard it.
    fn abort(self: Box<Self>);
}

/// The file system a server session works on. Paths are the session's bytes, absolute in the
/// session's view (`/` is the storage root) and not normalised: the backend resolves `.` and
/// `..` and keeps every path inside its root. Called from session threads.
pub trait Storage: Send + Sync {
    /// CWD: the canonical path of the directory `path`, if it exists.
    fn change_dir(&self, path: &[u8]) -> Result<Vec<u8>, FsError>;
    /// MKD: creates the directory; returns its canonical path.
    fn make_dir(&self, path: &[u8]) -> Result<Vec<u8>, FsError>;
    /// RMD: removes the (empty) directory.
    fn remove_dir(&self, path: &[u8]) -> Result<(), FsError>;
    /// DELE: removes the file.
    fn delete(&self, path: &[u8]) -> Result<(), FsError>;
    /// RNFR + RNTO.
    fn rename(&self, from: &[u8], to: &[u8]) -> Result<(), FsError>;
    /// The entry for `path` (SIZE, MDTM, MLST); its name is the canonical path.
    fn entry(&self, path: &[u8]) -> Result<DirEntry, FsError>;
    /// The entries of the directory `path` (or the one entry when `path` is a file), as an
    /// iterator the session pulls from as the client reads: a backend may stream a directory
    /// of any size.
    fn list(&self, path: &[u8]) -> Result<Listing, FsError>;
    /// RETR from `offset`.
    fn open_read(&self, path: &[u8], offset: u64) -> Result<Download, FsError>;
    /// STOR (from `offset`) or APPE (`append`).
    fn open_write(
        &self,
        path: &[u8],
        offset: u64,
        append: bool,
    ) -> Result<Box<dyn Upload>, FsError>;
    /// STOU: a new file with a unique name in the directory `dir`; returns its canonical path.
    fn open_unique(&self, dir: &[u8]) -> Result<(Vec<u8>, Box<dyn Upload>), FsError>;
}

/// The entries of a directory listing, produced as the client takes them.
pub type Listing = Box<dyn Iterator<Item = DirEntry> + Send>;

/// Marks the temporary files of uploads in progress; they are hidden from listings and cannot
/// be named by clients.
const PART_MARKER: &str = ".ftps-part-";

/// A local directory tree as [`Storage`], jailed to `root`: `..` stops at the root, absolute
/// paths are relative to it, symbolic links are never followed (refused with a permission
/// error, listed as links), NUL bytes are refused. Uploads go to a temporary file in the target
/// directory and are renamed over the target only when complete.
///
/// Not defended: another local process swapping a directory for a symlink between the check and
/// the use (the root must not be writable by untrusted local users).
#[derive(Debug, Clone)]
pub struct LocalFs {
    root: PathBuf,
    read_only: bool,
    sync_uploads: bool,
}

impl LocalFs {
    /// The entries of `path` sorted by name (a file: itself alone). Sorting needs the whole
    /// directory in memory; a backend streaming in `read_dir` order would not.
    fn sorted_entries(&self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        let (local, _) = self.resolve(path)?;
        let meta = fs::metadata(&local).map_err(|e| fs_error(&e))?;
        if !meta.is_dir() {
            let name = local
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                .unwrap_or_default();
            return Ok(vec![self.describe(name, &meta)]);
        }
        let mut entries = Vec::new();
        for item in fs::read_dir(&local).map_err(|e| fs_error(&e))? {
            let item = item.map_err(|e| fs_error(&e))?;
            let name = item.file_name();
            if name.as_bytes().starts_with(PART_MARKER.as_bytes()) {
                continue;
            }
            // Links are listed as links, never followed.
            let Ok(meta) = fs::symlink_metadata(item.path()) else {
                continue;
            };
            entries.push(self.describe(name.as_bytes().to_vec(), &meta));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// The tree under `root` (which must be an existing directory), writable.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = fs::canonicalize(root.into())?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "the storage root is not a directory",
            ));
        }
        Ok(Self {
            root,
            read_only: false,
            sync_uploads: true,
        })
    }

    /// Whether an upload's data reaches the disk (`fsync`) before it is committed, i.e.
    /// before the client gets its `226` (default: yes). With it, a `226` means the file
    /// survives a crash or power loss of the server; without it, the file may still sit in
    /// the page cache when the client is told it is stored — faster on a disk, the same on
    /// tmpfs. vsftpd and ProFTPD do not sync.
    pub fn sync_uploads(mut self, sync: bool) -> Self {
        self.sync_uploads = sync;
        self
    }

    /// Read-only mode: every write operation is refused with [`FsError::PermissionDenied`].
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    fn check_writable(&self) -> Result<(), FsError> {
        if self.read_only {
            Err(FsError::PermissionDenied)
        } else {
            Ok(())
        }
    }

    /// Normalises `path` to its components under the root (never above it).
    fn components(path: &[u8]) -> Result<Vec<&[u8]>, FsError> {
        if path.contains(&0) {
            return Err(FsError::InvalidName);
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        for part in path.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                name => {
                    if name.starts_with(PART_MARKER.as_bytes()) {
                        return Err(FsError::InvalidName);
                    }
                    parts.push(name);
                }
            }
        }
        Ok(parts)
    }

    /// The local path for `path`, refusing any symbolic link on the way (also the last
    /// component). The result may not exist.
    fn resolve(&self, path: &[u8]) -> Result<(PathBuf, Vec<u8>), FsError> {
        let parts = Self::components(path)?;
        let mut local = self.root.clone();
        let mut canonical = Vec::new();
        for part in &parts {
            local.push(OsStr::from_bytes(part));
            canonical.push(b'/');
            canonical.extend_from_slice(part);
            match fs::symlink_metadata(&local) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(FsError::PermissionDenied);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(fs_error(&e)),
            }
        }
        if canonical.is_empty() {
            canonical.push(b'/');
        }
        Ok((local, canonical))
    }

    fn is_root(&self, local: &Path) -> bool {
        local == self.root
    }

    fn describe(&self, name: Vec<u8>, meta: &fs::Metadata) -> DirEntry {
        let kind = if meta.file_type().is_symlink() {
            DirEntryKind::Symlink
        } else if meta.is_dir() {
            DirEntryKind::Directory
        } else {
            DirEntryKind::File
        };
        let mut permissions = match kind {
            DirEntryKind::Directory => Permissions::ENTER.union(Permissions::LIST),
            _ => Permissions::READ,
        };
        if !self.read_only {
            permissions = permissions.union(match kind {
                DirEntryKind::Directory => Permissions::CREATE
                    .union(Permissions::MAKE_DIR)
                    .union(Permissions::PURGE)
                    .union(Permissions::RENAME)
                    .union(Permissions::DELETE),
                _ => Permissions::WRITE
                    .union(Permissions::APPEND)
                    .union(Permissions::RENAME)
                    .union(Permissions::DELETE),
            });
        }
        DirEntry {
            name,
            kind,
            size: meta.len(),
            modified: FtpTime::from_unix_seconds(meta.mtime()),
            permissions,
            mode: Some(meta.mode() & 0o7777),
            unique: Some(format!("{:x}g{:x}", meta.dev(), meta.ino()).into_bytes()),
        }
    }

    fn open_upload(
        &self,
        target: PathBuf,
        offset: u64,
        append: bool,
        reserved: bool,
    ) -> Result<Box<dyn Upload>, FsError> {
        if let Ok(meta) = fs::symlink_metadata(&target) {
            if !meta.is_file() {
                return Err(FsError::WrongKind);
            }
        }
        let dir = target.parent().ok_or(FsError::InvalidName)?;
        let (temp_path, mut temp) = create_temp(dir)?;
        let cleanup = |e: FsError| {
            let _ = fs::remove_file(&temp_path);
            e
        };
        // A resumed or appended upload starts from the existing bytes, copied into the
        // temporary file, so the target stays whole until the new version is complete.
        let keep = if append { u64::MAX } else { offset };
        if keep > 0 {
            match File::open(&target) {
                Ok(existing) => {
                    let copied = io::copy(&mut existing.take(keep), &mut temp)
                        .map_err(|e| cleanup(fs_error(&e)))?;
                    if !append && copied < offset {
                        // REST beyond the end of the file.
                        return Err(cleanup(FsError::Local));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && append => {}
                Err(e) => return Err(cleanup(fs_error(&e))),
            }
        }
        Ok(Box::new(LocalUpload {
            file: Some(temp),
            temp: temp_path,
            target,
            reserved,
            sync: self.sync_uploads,
        }))
    }
}

/// Creates a new temporary file in `dir` with a random name.
fn create_temp(dir: &Path) -> Result<(PathBuf, File), FsError> {
    for _ in 0..16 {
        let path = dir.join(format!("{PART_MARKER}{:016x}", random_u64()?));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fs_error(&e)),
        }
    }
    Err(FsError::Local)
}

fn random_u64() -> Result<u64, FsError> {
    let mut bytes = [0u8; 8];
    ftps_proto::tls::crypto_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| FsError::Local)?;
    Ok(u64::from_le_bytes(bytes))
}

/// An upload into a temporary file, renamed over its target on commit.
struct LocalUpload {
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
    /// STOU: the target was created empty to reserve its name; remove it on failure.
    reserved: bool,
    /// `fsync` before the rename ([`LocalFs::sync_uploads`]).
    sync: bool,
}

impl Upload for LocalUpload {
    fn write(&mut self, bytes: &[u8]) -> Result<(), FsError> {
        let file = self.file.as_mut().ok_or(FsError::Local)?;
        file.write_all(bytes).map_err(|e| fs_error(&e))
    }

    fn commit(mut self: Box<Self>) -> Result<(), FsError> {
        // On any failure the temporary file goes (Drop, or below): nothing half-stored stays.
        let file = self.file.as_ref().ok_or(FsError::Local)?;
        if self.sync {
            file.sync_all().map_err(|e| fs_error(&e))?;
        }
        drop(self.file.take());
        fs::rename(&self.temp, &self.target).map_err(|e| {
            let _ = fs::remove_file(&self.temp);
            if self.reserved {
                let _ = fs::remove_file(&self.target);
            }
            fs_error(&e)
        })
    }

    fn abort(self: Box<Self>) {
        // Drop removes the temporary file.
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
            if self.reserved {
                let _ = fs::remove_file(&self.target);
            }
        }
    }
}

impl Storage for LocalFs {
    fn change_dir(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        let (local, canonical) = self.resolve(path)?;
        let meta = fs::metadata(&local).map_err(|e| fs_error(&e))?;
        if !meta.is_dir() {
            return Err(FsError::WrongKind);
        }
        Ok(canonical)
    }

    fn make_dir(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        self.check_writable()?;
        let (local, canonical) = self.resolve(path)?;
        fs::create_dir(&local).map_err(|e| fs_error(&e))?;
        Ok(canonical)
    }

    fn remove_dir(&self, path: &[u8]) -> Result<(), FsError> {
        self.check_writable()?;
        let (local, _) = self.resolve(path)?;
        if self.is_root(&local) {
            return Err(FsError::PermissionDenied);
        }
        fs::remove_dir(&local).map_err(|e| fs_error(&e))
    }

    fn delete(&self, path: &[u8]) -> Result<(), FsError> {
        self.check_writable()?;
        let (local, _) = self.resolve(path)?;
        if fs::metadata(&local).map_err(|e| fs_error(&e))?.is_dir() {
            return Err(FsError::WrongKind);
        }
        fs::remove_file(&local).map_err(|e| fs_error(&e))
    }

    fn rename(&self, from: &[u8], to: &[u8]) -> Result<(), FsError> {
        self.check_writable()?;
        let (from, _) = self.resolve(from)?;
        let (to, _) = self.resolve(to)?;
        if self.is_root(&from) || self.is_root(&to) {
            return Err(FsError::PermissionDenied);
        }
        fs::symlink_metadata(&from).map_err(|e| fs_error(&e))?;
        fs::rename(&from, &to).map_err(|e| fs_error(&e))
    }

    fn entry(&self, path: &[u8]) -> Result<DirEntry, FsError> {
        let (local, canonical) = self.resolve(path)?;
        let meta = fs::metadata(&local).map_err(|e| fs_error(&e))?;
        Ok(self.describe(canonical, &meta))
    }

    fn list(&self, path: &[u8]) -> Result<Listing, FsError> {
        self.sorted_entries(path)
            .map(|entries| Box::new(entries.into_iter()) as Listing)
    }

    fn open_read(&self, path: &[u8], offset: u64) -> Result<Download, FsError> {
        let (local, _) = self.resolve(path)?;
        let mut file = File::open(&local).map_err(|e| fs_error(&e))?;
        let meta = file.metadata().map_err(|e| fs_error(&e))?;
        if !meta.is_file() {
            return Err(FsError::WrongKind);
        }
        if offset > meta.len() {
            return Err(FsError::Local);
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| fs_error(&e))?;
        Ok(Box::new(file))
    }

    fn open_write(
        &self,
        path: &[u8],
        offset: u64,
        append: bool,
    ) -> Result<Box<dyn Upload>, FsError> {
        self.check_writable()?;
        let (local, _) = self.resolve(path)?;
        if self.is_root(&local) {
            return Err(FsError::WrongKind);
        }
        self.open_upload(local, offset, append, false)
    }

    fn open_unique(&self, dir: &[u8]) -> Result<(Vec<u8>, Box<dyn Upload>), FsError> {
        self.check_writable()?;
        let (local_dir, canonical_dir) = self.resolve(dir)?;
        if !fs::metadata(&local_dir).map_err(|e| fs_error(&e))?.is_dir() {
            return Err(FsError::WrongKind);
        }
        for _ in 0..16 {
            let name = format!("stou-{:016x}", random_u64()?);
            let target = local_dir.join(&name);
            // Reserve the name so a concurrent STOU cannot pick it; the upload replaces it.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
            {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(fs_error(&e)),
            }
            let mut canonical = canonical_dir.clone();
            if canonical.last() != Some(&b'/') {
                canonical.push(b'/');
            }
            canonical.extend_from_slice(name.as_bytes());
            return match self.open_upload(target.clone(), 0, false, true) {
                Ok(upload) => Ok((canonical, upload)),
                Err(e) => {
                    let _ = fs::remove_file(&target);
                    Err(e)
                }
            };
        }
        Err(FsError::Local)
    }
}

/// The session's error for a local I/O error.
fn fs_error(e: &io::Error) -> FsError {
    match e.kind() {
        io::ErrorKind::NotFound => FsError::NotFound,
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            FsError::PermissionDenied
        }
        io::ErrorKind::AlreadyExists => FsError::AlreadyExists,
        io::ErrorKind::NotADirectory
        | io::ErrorKind::IsADirectory
        | io::ErrorKind::DirectoryNotEmpty => FsError::WrongKind,
        io::ErrorKind::InvalidFilename | io::ErrorKind::InvalidInput => FsError::InvalidName,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => FsError::NoSpace,
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => FsError::Unavailable,
        _ => FsError::Local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With or without the sync before the rename, a committed upload is the whole file under
    /// its name and no temporary file is left.
    #[test]
    fn committed_upload_with_and_without_sync() {
        for sync in [true, false] {
            let root = tempfile::tempdir().unwrap();
            let fs = LocalFs::new(root.path()).unwrap().sync_uploads(sync);
            let mut upload = fs.open_write(b"/up.bin", 0, false).unwrap();
            upload.write(b"hello ").unwrap();
            upload.write(b"world").unwrap();
            upload.commit().unwrap();
            assert_eq!(
                fs::read(root.path().join("up.bin")).unwrap(),
                b"hello world"
            );
            let names: Vec<_> = fs::read_dir(root.path()).unwrap().collect();
            assert_eq!(names.len(), 1, "sync={sync}");
        }
    }
}
