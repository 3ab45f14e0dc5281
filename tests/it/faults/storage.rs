//! The token store disappears between commands, and the file system of the outputs or of the
//! CA directory fills up during the write.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::sandbox::*;
use super::*;

// ------------------------------------------------------------------------------------------------
// The token store disappears
// ------------------------------------------------------------------------------------------------

#[test_needs(softhsm2)]
fn token_directory_removed_between_commands() {
    let t = with_root();
    // The token's own directory goes (tokens/<uuid>/), then the whole token store.
    let token_dirs: Vec<PathBuf> = fs::read_dir(t.path("tokens"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(token_dirs.len(), 1, "{token_dirs:?}");
    fs::remove_dir_all(&token_dirs[0]).unwrap();
    let before = t.snapshot();
    let stderr = assert_fails(&t.run(sign_args("gone")));
    assert_mentions(&stderr, &["Root CA", "token"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_same_files(&before, &t.snapshot());
    assert_log_verifies(&t);

    fs::remove_dir_all(t.path("tokens")).unwrap();
    let stderr = assert_fails(&t.run(sign_args("gone")));
    assert_mentions(&stderr, &["token", "C_Initialize"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_same_files(&before, &t.snapshot());
    assert_log_verifies(&t);
    assert!(leftover_temp_files(t.dir()).is_empty());
}

// ------------------------------------------------------------------------------------------------
// A full file system
// ------------------------------------------------------------------------------------------------

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `at` (as root: the tests that call this need `root`).
    fn mount(at: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let out = run_command(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(at),
        );
        assert!(
            out.status.success(),
            "cannot mount a tmpfs at {}, although the tests were built by root: {}",
            at.display(),
            stderr_of(&out).trim()
        );
        Tmpfs(at.to_path_buf())
    }

    /// Fills the file system: a file grown until the kernel says ENOSPC.
    fn fill(&self) {
        use std::io::Write;
        let mut f = fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
                    break;
                }
            }
        }
    }

    /// Frees the space again.
    fn drain(&self) {
        fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test_needs(softhsm2, root)]
fn output_file_system_fills_during_the_write() {
    let t = with_root();
    let fs_out = Tmpfs::mount(&t.path("out"), "64k");
    fs_out.fill();
    let before = recorded_serials(&t.path("ca"));
    let mut args = sign_args("x");
    let n = args.len();
    args[n - 3] = "out/inter.crt".into();
    args[n - 1] = "out/chain.pem".into();
    let stderr = assert_fails(&t.run(&args));
    assert_mentions(&stderr, &["space", "out/inter.crt"]);
    let left: Vec<_> = files_in(&t.path("out")).into_keys().collect();
    assert_eq!(left, [PathBuf::from("filler")], "partial output left");
    assert!(leftover_temp_files(t.dir()).is_empty());
    assert_log_verifies(&t);
    // Record first, output second: the certificate is in the log and exports once there is room.
    let after = recorded_serials(&t.path("ca"));
    assert_eq!(
        after.len(),
        before.len() + 1,
        "the signed certificate is recorded"
    );
    let serial = after.last().unwrap();
    fs_out.drain();
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "export",
        "--serial",
        serial,
        "--out",
        "out/inter.crt",
    ]));
    openssl_x509(&t.path("out/inter.crt"), &["-serial"]);
}

#[test_needs(softhsm2, root)]
fn ca_directory_file_system_fills_during_the_write() {
    let t = with_root();
    let ca_fs = Tmpfs::mount(&t.path("cafs"), "256k");
    copy_tree(&t.path("ca"), &t.path("cafs/ca"));
    ca_fs.fill();
    let before = recorded_serials(&t.path("cafs/ca"));
    let mut args = sign_args("full");
    args[1] = "cafs/ca".into();
    let stderr = assert_fails(&t.run(&args));
    assert_mentions(&stderr, &["space", "audit", "cafs"]);
    assert!(!t.path("inter-full.crt").exists() && !t.path("chain-full.pem").exists());
    assert!(leftover_temp_files(t.dir()).is_empty());
    // Whatever the append managed to write, the log must still read and verify, and the next
    // command must work once there is room again.
    let verify = t.run(["--ca-dir", "cafs/ca", "log", "verify"]);
    assert!(
        verify.status.success(),
        "a failed append must not break the log:\n{}",
        stderr_of(&verify)
    );
    let after = recorded_serials(&t.path("cafs/ca"));
    assert!(after.starts_with(&before), "{before:?} -> {after:?}");
    assert_ok(&t.run(["--ca-dir", "cafs/ca", "log", "verify"]));
    ca_fs.drain();
    let mut again = sign_args("again");
    again[1] = "cafs/ca".into();
    assert_ok(&t.run(&again));
    assert_ok(&t.run(["--ca-dir", "cafs/ca", "log", "verify"]));
}
