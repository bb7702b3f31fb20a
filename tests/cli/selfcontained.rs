//! A clone of the repository runs its own suite: no tracked file refers to a folder beside
//! the checkout (the project once read its test mail and server scripts from one).

use std::process::Command;

use crate::harness::repo;

#[test]
fn no_tracked_file_refers_to_a_folder_beside_the_checkout() {
    // Spelt in two pieces, so that this file does not name it.
    let beside = ["..", "/shared"].concat();
    let out = Command::new("git")
        .arg("-C")
        .arg(repo())
        .args(["ls-files", "-z"])
        .output()
        .expect("git is needed to list the tracked files");
    assert!(
        out.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    assert!(files.len() > 100, "{} tracked files", files.len());
    let naming: Vec<&String> = files
        .iter()
        .filter(|f| {
            std::fs::read(repo().join(f))
                .is_ok_and(|bytes| bytes.windows(beside.len()).any(|w| w == beside.as_bytes()))
        })
        .collect();
    assert!(naming.is_empty(), "{beside} is named in {naming:?}");
}
