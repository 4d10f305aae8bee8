//! The files module against the real things it refuses: FIFOs, devices, directories, files
//! over the limit, a file where a directory should be, a symbolic link that loops.

use super::*;

const SMALL: Limit = Limit {
    what: "a test file",
    bytes: 16,
};

#[test]
fn reads_a_regular_file_up_to_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    std::fs::write(&path, b"0123456789abcdef").expect("write");
    assert_eq!(
        read(&path, SMALL).expect("exactly the limit"),
        b"0123456789abcdef"
    );
    assert_eq!(read_text(&path, SMALL).expect("text"), "0123456789abcdef");
}

#[test]
fn a_file_over_the_limit_is_refused_naming_the_limit_and_the_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    std::fs::write(&path, [b'x'; 17]).expect("write");
    let error = read(&path, SMALL).expect_err("one byte over");
    assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
    assert_eq!(
        error.to_string(),
        "it is larger than 16 bytes, the limit for a test file"
    );
    std::fs::write(&path, vec![b'x'; (MIB + 1) as usize]).expect("write");
    assert_eq!(
        read(&path, FACTS).expect_err("over 1 MiB").to_string(),
        "it is larger than 1 MiB, the limit for a facts file"
    );
}

#[test]
fn text_that_is_not_utf8_names_the_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    std::fs::write(&path, b"abc\xffdef").expect("write");
    let error = read_text(&path, SMALL).expect_err("not UTF-8");
    assert_eq!(error.to_string(), "it is not UTF-8 text (byte 3)");
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = read(dir.path(), SMALL).expect_err("a directory");
    assert!(error.to_string().contains("directory"), "{error}");
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    // No writer is ever opened: a blocking open would hang this test forever.
    let error = read(&path, SMALL).expect_err("a FIFO");
    assert_eq!(
        error.to_string(),
        "it is a FIFO (named pipe), not a regular file"
    );
}

#[cfg(unix)]
#[test]
fn a_device_is_refused() {
    for device in ["/dev/zero", "/dev/null"] {
        let error = read(Path::new(device), SMALL).expect_err(device);
        assert_eq!(error.to_string(), "it is a device, not a regular file");
    }
}

#[test]
fn an_open_regular_file_is_blocking_and_writable_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal");
    let mut file = open_regular(&path, OpenOptions::new().create(true).append(true))
        .expect("a new regular file");
    std::io::Write::write_all(&mut file, b"line\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd as _;
        // SAFETY: F_GETFL on an open descriptor.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "O_NONBLOCK cleared");
    }
    assert_eq!(std::fs::read(&path).expect("read back"), b"line\n");
}

#[test]
fn create_dir_makes_parents_and_accepts_an_existing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b/c");
    create_dir(&nested).expect("create");
    create_dir(&nested).expect("exists already");
    assert!(nested.is_dir());
}

#[test]
fn create_dir_says_a_file_is_in_the_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal");
    std::fs::write(&path, b"").expect("write");
    let error = create_dir(&path).expect_err("a file");
    assert_eq!(
        error.to_string(),
        "it exists and is not a directory (a file is in its place)"
    );
}

#[cfg(unix)]
#[test]
fn create_dir_says_a_symlink_loops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::os::unix::fs::symlink(&b, &a).expect("a -> b");
    std::os::unix::fs::symlink(&a, &b).expect("b -> a");
    let error = create_dir(&a).expect_err("a loop");
    assert!(
        error
            .to_string()
            .starts_with("it is a symbolic link that loops or leads nowhere ("),
        "{error}"
    );
}

#[test]
fn sizes_read_as_people_write_them() {
    assert_eq!(CONFIG.size(), "1 MiB");
    assert_eq!(SECRET.size(), "64 KiB");
    assert_eq!(REGISTRY_DUMP.size(), "32 MiB");
    assert_eq!(SMALL.size(), "16 bytes");
}

/// The README's table of files and limits is this module's [`LIMITS`], row for row.
#[test]
fn the_readme_states_every_limit() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("### Files the agent reads")
        .nth(1)
        .expect("README has the section");
    let rows: Vec<&str> = section
        .lines()
        .skip_while(|line| !line.starts_with("| file | limit |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .collect();
    assert_eq!(rows.len(), LIMITS.len(), "{rows:#?}");
    for (row, limit) in rows.iter().zip(LIMITS) {
        assert!(
            row.starts_with(&format!("| {}: ", limit.what))
                && row.ends_with(&format!("| {} |", limit.size())),
            "README row {row:?} should state {} at {}",
            limit.what,
            limit.size()
        );
    }
}
