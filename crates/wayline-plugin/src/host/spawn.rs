//! Starting a plugin executable that may have just been written.
//!
//! `exec` of a file fails with `ETXTBSY` ("Text file busy") while any process holds it open for
//! writing. A plugin copied into place a moment ago (by an installer, or by a test in another
//! thread) can hit that: another thread's `fork` copies the writer's descriptor into a child
//! that holds it until its own `exec`. The window is that short, so a few quick retries see the
//! file free; any other error is returned at once.

use std::io;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Retries after 5, 10, 20, 40 and 80 ms: 155 ms in all, then the error stands.
const BUSY_RETRIES: u32 = 5;

/// [`Command::spawn`], retrying while the executable is busy being written.
pub async fn spawn_executable(cmd: &mut Command) -> io::Result<Child> {
    let mut attempt = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && attempt < BUSY_RETRIES => {
                tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_executable_fails_with_its_own_error_and_a_real_one_starts() {
        let err = spawn_executable(&mut Command::new("/nonexistent/wayline-plugin-x"))
            .await
            .unwrap_err();
        // Any error but a busy file is the spawn's own.
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let status = spawn_executable(&mut Command::new("true"))
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert!(status.success());
    }

    #[tokio::test]
    async fn a_file_open_for_writing_is_retried_until_it_is_closed() {
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugin");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Busy while open for writing, as a plain spawn shows ...
        let busy = Command::new(&path).spawn().unwrap_err();
        assert_eq!(busy.kind(), io::ErrorKind::ExecutableFileBusy);
        // ... and started once the writer closes it, while the attempts go on.
        let closer = std::thread::spawn(move || drop(f));
        let status = spawn_executable(&mut Command::new(&path))
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        closer.join().unwrap();
        assert!(status.success());
    }
}
