//! zre-dir: files appear on enter, change on join, disappear on exit and at a clean exit;
//! stale files of a crashed run go at start, and nothing else; one zre-dir per
//! directory; the zyredir layout; a DIR it cannot write, a FILE that is not a DIR.

mod cli_support;

use std::path::Path;
use std::time::{Duration, Instant};

use cli_support::*;
use serde_json::{json, Value};

fn with(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = node_args(port);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Waits until `pred` holds for the directory's peer files (name -> parsed contents).
fn wait_files(
    dir: &Path,
    what: &str,
    pred: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut files = Vec::new();
        // zre-dir may not have created it yet.
        let entries = std::fs::read_dir(dir).into_iter().flatten();
        for e in entries {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                // Written atomically: a file is either absent or complete JSON.
                if let Ok(bytes) = std::fs::read(dir.join(&name)) {
                    let v: Value = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("{name} is not complete JSON: {e}"));
                    files.push((name, v));
                }
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        if pred(&files) {
            return files;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}: {files:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn files_appear_change_and_disappear() {
    let port = 46050;
    let tmp = TempDir::new("dir");
    let dir = tmp.0.join("peers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "not ours").unwrap();

    // A run killed outright leaves its files; the next run removes them at start.
    let mut crashed = Proc::spawn(DIR, &with(port, &[dir.to_str().unwrap()]));
    let mut dave = Proc::spawn(LISTEN, &with(port, &["--name", "dave"]));
    wait_files(&dir, "dave", |f| f.len() == 1);
    crashed.signal("KILL");
    crashed.wait();
    dave.signal("TERM");
    dave.assert_exit(0);
    assert_eq!(
        wait_files(&dir, "dave's stale file", |f| f.len() == 1)[0].1["name"],
        "dave"
    );

    let mut zdir = Proc::spawn(DIR, &with(port, &[dir.to_str().unwrap()]));
    wait_files(&dir, "stale file removed", |f| f.is_empty());
    assert!(dir.join("keep.txt").exists());

    let mut alice = Proc::spawn(
        LISTEN,
        &with(
            port,
            &[
                "--name",
                "alice",
                "--header",
                "Role=test",
                "--group",
                "G1",
                "--group",
                "G2",
            ],
        ),
    );
    let files = wait_files(&dir, "alice with her groups", |f| {
        f.len() == 1 && f[0].1["groups"] == json!(["G1", "G2"])
    });
    let (name, v) = &files[0];
    let uuid = v["uuid"].as_str().unwrap();
    assert!(is_uuid_hex(uuid));
    assert_eq!(name, &format!("{uuid}.json"));
    assert_eq!(v["name"], "alice");
    assert_eq!(v["headers"], json!({"Role": "test"}));
    assert!(v["endpoint"].as_str().unwrap().starts_with("tcp://127."));
    assert!(humantime::parse_rfc3339(v["since"].as_str().unwrap()).is_ok());

    let _bob = Proc::spawn(LISTEN, &with(port, &["--name", "bob"]));
    wait_files(&dir, "bob too", |f| f.len() == 2);

    alice.signal("TERM");
    alice.assert_exit(0);
    let files = wait_files(&dir, "alice gone", |f| f.len() == 1);
    assert_eq!(files[0].1["name"], "bob");

    zdir.signal("TERM");
    zdir.assert_exit(0);
    assert_eq!(zdir.stderr(), "");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec!["keep.txt".to_string()],
        "only what is not ours remains"
    );
}

#[test]
fn zyredir_layout() {
    let port = 46051;
    let tmp = TempDir::new("zyredir");
    let dir = tmp.0.join("missing").join("still");
    let _zdir = Proc::spawn(
        DIR,
        &with(port, &["--format", "zyredir", dir.to_str().unwrap()]),
    );
    let _carol = Proc::spawn(LISTEN, &with(port, &["--name", "carol", "--header", "K=V"]));
    let files = wait_files(&dir, "carol", |f| f.len() == 1);
    let v = &files[0].1;
    assert_eq!(v[0], "carol");
    assert!(v[1].as_str().unwrap().starts_with("tcp://127."));
    assert_eq!(v[2], json!({"K": "V"}));
}

#[test]
fn a_dir_it_cannot_create_is_an_error() {
    let tmp = TempDir::new("notdir");
    let file = tmp.0.join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let target = file.join("sub");
    let (code, _, err) = run(DIR, &with(46052, &[target.to_str().unwrap()]));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("zre-dir: error: cannot create"), "{err}");
}

/// Every name in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_second_zre_dir_on_the_same_directory_is_refused() {
    let port = 46250;
    let tmp = TempDir::new("dirlock");
    let dir = tmp.0.join("peers");
    let mut first = Proc::spawn(DIR, &with(port, &[dir.to_str().unwrap()]));
    let _erin = Proc::spawn(LISTEN, &with(port, &["--name", "erin"]));
    let files = wait_files(&dir, "erin", |f| f.len() == 1);

    // Before: the second ran beside the first, and its clean exit wiped the first's files.
    let mut second = Proc::spawn(DIR, &with(port, &[dir.to_str().unwrap()]));
    second.assert_exit(1);
    let err = second.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("zre-dir: error: ") && err.contains("kept by another zre-dir"),
        "{err}"
    );
    assert_eq!(
        wait_files(&dir, "erin still there", |f| f.len() == 1),
        files
    );

    // Once the first is gone, the directory is free again.
    first.signal("TERM");
    first.assert_exit(0);
    assert_eq!(names(&dir), Vec::<String>::new());
    let mut third = Proc::spawn(DIR, &with(port, &[dir.to_str().unwrap()]));
    wait_files(&dir, "erin again", |f| f.len() == 1);
    third.signal("TERM");
    third.assert_exit(0);
    assert_eq!(third.stderr(), "");
}

#[test]
fn the_users_files_are_left_alone() {
    let port = 46251;
    let tmp = TempDir::new("dirmine");
    let dir = tmp.0.join("peers");
    std::fs::create_dir_all(&dir).unwrap();
    // Files that merely look like ours: a peer file and a temporary file of the user's.
    let mine = [
        "0123456789ABCDEF0123456789ABCDEF.json",
        ".zre-dir.notes",
        ".zre-dir.0123456789ABCDEF0123456789ABCDEF.42",
    ];
    for m in mine {
        std::fs::write(dir.join(m), "{\"mine\": true}").unwrap();
    }
    let mut zdir = Proc::spawn(DIR, &with(port, &[dir.to_str().unwrap()]));
    let _fay = Proc::spawn(LISTEN, &with(port, &["--name", "fay"]));
    wait_files(&dir, "fay beside the user's file", |f| {
        f.iter().any(|(_, v)| v["name"] == "fay")
    });
    zdir.signal("TERM");
    zdir.assert_exit(0);
    let mut want: Vec<String> = mine.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names(&dir), want, "only what zre-dir wrote is gone");
}

#[test]
fn a_file_is_not_a_directory() {
    let tmp = TempDir::new("dirfile");
    let file = tmp.0.join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let (code, _, err) = run(DIR, &with(46252, &[file.to_str().unwrap()]));
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        format!("zre-dir: error: {}: not a directory\n", file.display())
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}
