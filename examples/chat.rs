//! A group chat in a few dozen lines: every line you type is shouted to the group CHAT, and
//! what the others say is printed with their names.
//!
//! Run it twice on loopback, on a port of its own (never the default 5670 on a shared
//! network by accident):
//!
//! ```sh
//! cargo run --example chat -- alice lo 45671
//! cargo run --example chat -- bob lo 45671     # in a second terminal
//! ```
//!
//! Arguments: your name, the interface (default `lo`) and the beacon port (default 45671).
//! End with Ctrl-D: the others see you leave at once.

use std::io::BufRead;
use std::sync::Arc;

use zre::{Event, Node};

fn main() -> Result<(), zre::Error> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "anonymous".into());
    let interface = args.next().unwrap_or_else(|| "lo".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(45671);
    let node = Arc::new(
        Node::builder()
            .name(name)
            .interface(interface)
            .port(port)
            .start()?,
    );
    node.join("CHAT")?;

    // Print what arrives on a thread of its own while this one reads the keyboard.
    let listener = Arc::clone(&node);
    let printer = std::thread::spawn(move || {
        for event in listener.events() {
            match &event {
                Event::Join { name, group, .. } if group == "CHAT" => println!("* {name} joined"),
                Event::Exit { name, .. } => println!("* {name} left"),
                Event::Shout { name, content, .. } => {
                    let text: Vec<_> = content.iter().map(|f| String::from_utf8_lossy(f)).collect();
                    println!("{name}: {}", text.join(" "));
                }
                _ => {}
            }
        }
    });

    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if !line.is_empty() {
            node.shout_str("CHAT", &line)?;
        }
    }
    node.stop(); // the event iterator ends after STOP
    let _ = printer.join();
    Ok(())
}
