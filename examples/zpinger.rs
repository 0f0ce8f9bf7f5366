//! zpinger, Zyre's classic sample, against this library: join GLOBAL, whisper "Hello" to
//! every peer that enters, answer a "Hello" whisper with a "Hello" shout, log every event.
//!
//! Run two of them on loopback (never on a shared network by accident):
//!
//! ```sh
//! cargo run --example zpinger -- lo 45670
//! cargo run --example zpinger -- lo 45670   # in a second terminal
//! ```
//!
//! Arguments: interface (default `lo`) and beacon port (default 5670). It runs for 60
//! seconds, so a demo never runs unattended for long.

use std::time::{Duration, Instant};

use zre::{uuid_hex, Event, Node};

fn main() -> Result<(), zre::Error> {
    let mut args = std::env::args().skip(1);
    let interface = args.next().unwrap_or_else(|| "lo".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(5670);
    let node = Node::builder()
        .interface(interface)
        .port(port)
        .header("X-HELLO", "World")
        .start()?;
    node.join("GLOBAL")?;
    println!(
        "I: zpinger {} ({}) at {}",
        node.name(),
        uuid_hex(&node.uuid()),
        node.endpoint()
    );

    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        let Some(event) = node.recv_timeout(Duration::from_millis(200))? else {
            continue;
        };
        println!("I: [{}] {} {event:?}", event.name(), event.kind());
        match &event {
            Event::Enter { peer, .. } => node.whisper_str(*peer, "Hello")?,
            Event::Whisper { content, .. }
                if content.first().map(Vec::as_slice) == Some(b"Hello") =>
            {
                node.shout_str("GLOBAL", "Hello")?
            }
            _ => {}
        }
    }
    node.stop();
    Ok(())
}
