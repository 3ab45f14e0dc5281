//! Gives the binary its commit for `hsmca --version` and the ceremony transcript: HSMCA_COMMIT
//! when set (scripts/release.sh sets it), else `git rev-parse HEAD`, else "unknown" (a source
//! tarball or vendored build without git).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HSMCA_COMMIT");
    let commit = std::env::var("HSMCA_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=HSMCA_COMMIT={commit}");
}

fn git_head() -> Option<String> {
    // Rerun when HEAD moves; only paths that exist (a missing one makes cargo rerun every build).
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && commit.len() == 40).then_some(commit)
}
