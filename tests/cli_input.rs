//! What zre-shout and zre-whisper read (ports 46120-46129): NUL-separated records
//! (`-0`), all of stdin as one message (`--whole`), zre-listen's own output (`--json`
//! skips what is not a message), and bytes untouched (a trailing `\r` stays).

mod cli_support;

use std::process::{Command, Stdio};

use base64::Engine as _;
use cli_support::*;
use serde_json::json;

fn with(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = node_args(port);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn null_separated_records_and_a_kept_carriage_return() {
    // Before (issue 11, item 12): no -0, and "x\r\n" arrived as "x".
    let port = 46120;
    let mut listen = Proc::spawn(LISTEN, &with(port, &["--group", "Z"]));
    let mut shout = Proc::spawn_stdin(SHOUT, &with(port, &["-0", "Z"]));
    shout.write_stdin(b"one\0two\nlines\0last");
    shout.close_stdin();
    for want in ["one", "two\nlines", "last"] {
        let s = listen.expect(want, |v| kind(v) == "shout");
        assert_eq!(s["text"], want);
    }
    shout.assert_exit(0);

    let mut shout = Proc::spawn_stdin(SHOUT, &with(port, &["Z"]));
    shout.write_stdin(b"dos\r\n");
    shout.close_stdin();
    let s = listen.expect("the dos line", |v| kind(v) == "shout");
    assert_eq!(s["text"], "dos\r");
    shout.assert_exit(0);
}

#[test]
fn whole_sends_a_binary_file_as_one_message() {
    // Before (issue 11, item 12): a 300-byte random file arrived as 2 messages.
    let port = 46121;
    let mut data: Vec<u8> = (0..300u32).map(|i| (i * 7919 % 251) as u8).collect();
    data[10] = b'\n';
    data[20] = b'\r';
    data[30] = 0;
    let mut listen = Proc::spawn(LISTEN, &with(port, &["--name", "ear"]));
    let mut whisper = Proc::spawn_stdin(WHISPER, &with(port, &["--whole", "ear"]));
    whisper.write_stdin(&data);
    whisper.close_stdin();
    let w = listen.expect("the file", |v| kind(v) == "whisper");
    assert_eq!(w["frames"], json!([{ "base64": b64(&data) }]));
    whisper.assert_exit(0);
    // Nothing more: the whisperer's exit comes, no second whisper.
    while let Some(v) = listen.next_json(std::time::Duration::from_millis(500)) {
        assert_ne!(kind(&v), "whisper", "one message: {:?}", listen.seen);
    }
}

#[test]
fn listen_output_relays_through_shout_json_without_jq() {
    // Before (issue 11, item 12): zre-listen's enter and join lines were errors for
    // --json ("no text or frames"), and -g on zre-shout joined a group.
    let port = 46122;
    let mut observer = Proc::spawn(LISTEN, &with(port, &["--name", "obs", "--group", "B"]));
    let mut relay_in = Command::new(LISTEN)
        .args(with(port, &["--name", "relay-in", "--group", "A"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zre-listen");
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pipe = relay_in.stdout.take().expect("stdout");
    let mut relay_in = Reap(relay_in);
    let mut relay_out = Command::new(SHOUT)
        .args(with(port, &["--name", "relay-out", "--json", "-g", "B"]))
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zre-shout");
    let mut source = Proc::spawn(
        SHOUT,
        &with(port, &["--name", "source", "--peers", "1", "A", "relay me"]),
    );
    source.assert_exit(0);
    let s = observer.expect("the relayed shout", |v| kind(v) == "shout");
    assert_eq!(
        (&s["name"], &s["group"], &s["text"]),
        (&json!("relay-out"), &json!("B"), &json!("relay me"))
    );
    // Stop the listener: end of input, and zre-shout exits 0 (nothing failed).
    let _ = Command::new("kill")
        .args(["-s", "TERM", &relay_in.0.id().to_string()])
        .status();
    let _ = relay_in.0.wait();
    let status = relay_out.wait().expect("wait zre-shout");
    let mut err = String::new();
    use std::io::Read as _;
    let _ = relay_out.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(err, "");
}

#[test]
fn input_modes_exclude_each_other_and_a_message() {
    let port = "46123";
    for extra in [
        vec!["--json", "-0", "G"],
        vec!["--whole", "--json", "G"],
        vec!["-0", "G", "message"],
        vec!["-g", "G", "--whole", "message"],
    ] {
        let mut args = vec!["--interface", "lo", "--port", port];
        args.extend(&extra);
        let (code, _, err) = run(SHOUT, &args);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra:?}: {err}");
    }
}
