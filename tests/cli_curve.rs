//! The tools with CURVE (issue 14): zre-keygen, and --curve / --allow on the commands.
//! Beacon ports 46450-46499. Without CURVE in the build, only the errors are checked
//! (the rest prints SKIPPED, or fails under ZRE_REQUIRE_CURVE).

mod cli_support;

use std::os::unix::fs::PermissionsExt;

use cli_support::*;

const KEYGEN: &str = env!("CARGO_BIN_EXE_zre-keygen");

fn curve_or_skip(test: &str) -> bool {
    if zre::curve::available() {
        return true;
    }
    assert!(
        std::env::var_os("ZRE_REQUIRE_CURVE").is_none(),
        "{test}: ZRE_REQUIRE_CURVE is set but this build has no CURVE"
    );
    println!("SKIPPED {test}: this build's libzmq has no CURVE (--config .cargo/curve.toml)");
    false
}

/// zre-keygen opens no socket, so it runs outside the harness (which insists on `lo`).
fn keygen(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(KEYGEN)
        .args(args)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

fn with(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = node_args(port);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn keygen_writes_a_pair_once_and_never_overwrites() {
    let dir = TempDir::new("keygen");
    let file = dir.0.join("me.cert");
    let f = file.to_str().unwrap();
    let (code, out, err) = keygen(&["--name", "me", f]);
    if !zre::curve::available() {
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("--config .cargo/curve.toml"), "{err}");
        assert!(!file.exists());
        curve_or_skip("keygen_writes_a_pair_once_and_never_overwrites");
        return;
    }
    assert_eq!(code, Some(0), "{err}");
    let secret = dir.0.join("me.cert_secret");
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let cert = zre::curve::Cert::load_secret(&file).unwrap();
    assert_eq!(out.trim(), cert.public.to_string());
    assert_eq!(cert.metadata, vec![("name".to_string(), "me".to_string())]);
    let public = zre::curve::Cert::load(&file).unwrap();
    assert_eq!(public.secret, None);
    let before = (
        std::fs::read(&file).unwrap(),
        std::fs::read(&secret).unwrap(),
    );
    let (code, _, err) = keygen(&[f]);
    assert_eq!(code, Some(1));
    assert!(err.contains("exists already"), "{err}");
    let after = (
        std::fs::read(&file).unwrap(),
        std::fs::read(&secret).unwrap(),
    );
    assert_eq!(before, after);
}

#[test]
fn bad_security_flags_are_usage_errors() {
    let (code, _, err) = run(
        LISTEN,
        &with(46450, &["--allow", "/tmp", "--timeout", "1s"]),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--curve"), "{err}");
    let (code, _, err) = run(LISTEN, &with(46450, &["--curve", "/nonexistent.cert"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent.cert"), "{err}");
    let golden = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/zcert/server.cert"
    );
    let (code, _, err) = run(
        LISTEN,
        &with(46450, &["--curve", golden, "--timeout", "1s"]),
    );
    if zre::curve::available() {
        // A real certificate: it runs until --timeout.
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(err, "");
    } else {
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("--config .cargo/curve.toml"), "{err}");
    }
}

#[test]
fn listen_and_shout_with_curve_and_an_allow_list() {
    if !curve_or_skip("listen_and_shout_with_curve_and_an_allow_list") {
        return;
    }
    let dir = TempDir::new("cli-curve");
    let allow = dir.0.join("allow");
    std::fs::create_dir_all(&allow).unwrap();
    let mut keys = Vec::new();
    for n in ["a", "b", "stranger"] {
        let file = dir.0.join(n);
        let (code, out, err) = keygen(&[file.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{err}");
        if n != "stranger" {
            std::fs::copy(&file, allow.join(n)).unwrap();
        }
        keys.push((file.to_str().unwrap().to_string(), out.trim().to_string()));
    }
    let port = 46460;
    let allow_s = allow.to_str().unwrap();
    let mut listener = Proc::spawn(
        LISTEN,
        &with(
            port,
            &[
                "-n", "a", "-g", "G", "--curve", &keys[0].0, "--allow", allow_s,
            ],
        ),
    );
    // The stranger (allowing anyone) shouts first: it never meets the listener.
    let (code, _, err) = run(
        SHOUT,
        &with(
            port,
            &[
                "-n", "s", "--curve", &keys[2].0, "--wait", "1500ms", "G", "x",
            ],
        ),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("nobody in group G"), "{err}");
    // b is on the list: its shout arrives, and the listener saw b's key in its HELLO.
    let (code, _, err) = run(
        SHOUT,
        &with(
            port,
            &[
                "-n",
                "b",
                "--curve",
                &keys[1].0,
                "--allow",
                allow_s,
                "G",
                "secret words",
            ],
        ),
    );
    assert_eq!(code, Some(0), "{err}");
    let enter = listener.expect("enter b", |v| kind(v) == "enter" && v["name"] == "b");
    assert_eq!(enter["headers"]["X-PUBLICKEY"], keys[1].1.as_str());
    let shout = listener.expect("shout", |v| kind(v) == "shout");
    assert_eq!(shout["text"], "secret words");
    listener.kill();
    let seen = listener.rest();
    assert!(!seen.iter().any(|v| v["name"] == "s"), "{seen:?}");
}
