//! `umm.prom` in node_exporter's textfile collector directory: replaced
//! atomically (a temporary file in the same directory, whose name does not
//! end in `.prom`, so the collector never reads half a file), and only
//! where the directory exists: without node_exporter there is nothing to
//! write for, and umm never creates another package's directory.

use std::io;
use std::path::{Path, PathBuf};

use super::atomic::atomic_write;
use super::paths::Root;

/// The file's name in the directory.
pub const FILE: &str = "umm.prom";

/// Writes `text` as `<dir>/umm.prom` under `root`; `Ok(None)` when the
/// directory does not exist, else the file written.
pub fn write(root: &Root, dir: &Path, text: &str) -> io::Result<Option<PathBuf>> {
    let dir = root.join(dir);
    if !dir.is_dir() {
        return Ok(None);
    }
    let path = dir.join(FILE);
    atomic_write(&path, text.as_bytes(), 0o644)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_written_without_the_directory_and_the_file_replaced_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        let dir = Path::new("/var/lib/prometheus/node-exporter");
        assert_eq!(write(&root, dir, "a 1\n").unwrap(), None);
        assert!(!root.join(dir).exists());
        std::fs::create_dir_all(root.join(dir)).unwrap();
        let path = write(&root, dir, "a 1\n").unwrap().unwrap();
        assert_eq!(path, root.join(dir).join("umm.prom"));
        write(&root, dir, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
