//! Sending a file to another node: the receiver announces itself with a header, the sender
//! waits for it to enter, whispers the file's name and bytes as two frames, and makes sure
//! they were taken before it says goodbye.
//!
//! On loopback, on a port of its own (never the default 5670 on a shared network by
//! accident):
//!
//! ```sh
//! mkdir -p /tmp/inbox
//! cargo run --example send_file -- receive /tmp/inbox lo 45672
//! cargo run --example send_file -- send Cargo.toml lo 45672   # in a second terminal
//! ```
//!
//! Arguments: `receive DIR` or `send FILE`, then the interface (default `lo`) and the
//! beacon port (default 45672). The receiver keeps only the file name of what it is sent
//! (no directories) and runs until Ctrl-C.

use std::path::Path;
use std::time::Duration;

use zre::{Event, Node};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(path)) = (args.first(), args.get(1)) else {
        return Err("usage: send_file receive DIR | send FILE [INTERFACE] [PORT]".into());
    };
    let interface = args.get(2).map_or("lo", String::as_str);
    let port = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(45672);
    let builder = Node::builder().interface(interface).port(port);

    if mode == "receive" {
        let node = builder.header("X-FILES", "receive").start()?;
        for event in node.events() {
            if let Event::Whisper { name, content, .. } = event {
                let [file, bytes] = content.as_slice() else {
                    continue;
                };
                let file = Path::new(std::str::from_utf8(file)?)
                    .file_name()
                    .ok_or("no name")?;
                std::fs::write(Path::new(path).join(file), bytes)?;
                println!(
                    "{} bytes from {name}: {}",
                    bytes.len(),
                    file.to_string_lossy()
                );
            }
        }
        return Ok(());
    }

    let bytes = std::fs::read(path)?;
    let file = Path::new(path).file_name().ok_or("no file name")?;
    let node = builder.start()?;
    for event in node.events() {
        if let Event::Enter {
            peer,
            name,
            headers,
            ..
        } = event
        {
            if headers.get("X-FILES").map(String::as_str) == Some("receive") {
                node.whisper(peer, vec![file.as_encoded_bytes().to_vec(), bytes])?;
                // Taken by the receiver's node before we leave (or give up after a minute).
                let taken = node.flush(Duration::from_secs(60))?;
                println!(
                    "sent {path} to {name}{}",
                    if taken { "" } else { " (not confirmed)" }
                );
                break;
            }
        }
    }
    node.stop();
    Ok(())
}
