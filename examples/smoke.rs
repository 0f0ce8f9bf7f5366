use std::time::{Duration, Instant};
fn main() -> Result<(), zre::Error> {
    let t0 = Instant::now();
    let a = zre::Node::builder()
        .name("a")
        .interface("lo")
        .port(45999)
        .verbose(true)
        .start()?;
    let b = zre::Node::builder()
        .name("b")
        .interface("lo")
        .port(45999)
        .start()?;
    a.join("G")?;
    b.join("G")?;
    while let Some(e) = a.recv_timeout(Duration::from_secs(3))? {
        println!("{:?} a: {e:?}", t0.elapsed());
        if let zre::Event::Join { peer, .. } = e {
            a.whisper_str(peer, "hi")?;
            b.shout_str("G", "yo")?;
        }
        if let zre::Event::Shout { .. } = e {
            break;
        }
    }
    while let Some(e) = b.recv_timeout(Duration::from_millis(500))? {
        println!("{:?} b: {e:?}", t0.elapsed());
    }
    drop(a);
    while let Some(e) = b.recv_timeout(Duration::from_millis(500))? {
        println!("{:?} b: {e:?}", t0.elapsed());
    }
    Ok(())
}
