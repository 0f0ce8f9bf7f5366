//! Zyre C scenario 3 (issue 15): multi-frame binary content, whisper and shout both ways.

use crate::support::*;
use crate::zyre::*;

/// Empty frames (first, middle, last), every byte value, non-UTF-8 bytes, UTF-8 text, a
/// frame over 64 KiB and one of 100 KiB.
fn content() -> Vec<Vec<u8>> {
    let mut c = tricky_content();
    c.push((0..100 * 1024u32).map(|i| (i * 7 % 256) as u8).collect());
    c.push(vec![0xff, 0xfe, 0x80]);
    c
}

#[test]
fn z3_zyre_c_and_zre_carry_multi_frame_binary_content_both_ways() {
    let Some((_one, z)) = begin_zyre("z3") else {
        return;
    };
    let port = 48130;
    let t = Timers::new(0.1, 3.0, 10.0);
    let mut lab = Lab::new("z3", 23);
    let hz = lab.add_host();
    let hr = lab.add_host();
    let mut zy = zyre_peer(&lab, &hz, z, port, "zyre-c", t, &["--group", "G"]);
    let mut rs = peer(&lab, &hr, port, "rusty", t, &["--group", "G"]);
    let (zu, ru) = (zy.uuid, rs.uuid);
    zy.expect("ENTER rusty", js("enter", ru));
    rs.expect("ENTER zyre", js("enter", zu));
    zy.expect("JOIN rusty G", jsg("join", ru, "G"));
    rs.expect("JOIN zyre G", jsg("join", zu, "G"));

    let big = content();
    let bytes: usize = big.iter().map(Vec::len).sum();
    // (content, what it tests): one empty frame is `text: ""`, one UTF-8 frame has `text`.
    let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
        (big, "multi-frame binary"),
        (vec![Vec::new()], "one empty frame"),
        (vec!["plain ✓".as_bytes().to_vec()], "one UTF-8 frame"),
        (vec![vec![0x00, 0xc3, 0x28]], "one non-UTF-8 frame"),
    ];
    let t0 = Instant::now();
    for (c, what) in &cases {
        zy.whisper(ru, c);
        let e = rs.expect(&format!("WHISPER zyre->rusty {what}"), js("whisper", zu));
        assert_eq!(&frames_of(&e), c, "{what}");
        assert_eq!(e["name"], "zyre-c");
        rs.whisper(zu, c);
        let e = zy.expect(&format!("WHISPER rusty->zyre {what}"), js("whisper", ru));
        assert_eq!(&frames_of(&e), c, "{what}");
        assert_eq!(e["name"], "rusty");
        zy.shout("G", c);
        let e = rs.expect(&format!("SHOUT zyre->G {what}"), jsg("shout", zu, "G"));
        assert_eq!(&frames_of(&e), c, "{what}");
        rs.shout("G", c);
        let e = zy.expect(&format!("SHOUT rusty->G {what}"), jsg("shout", ru, "G"));
        assert_eq!(&frames_of(&e), c, "{what}");
    }
    figure!(
        "z3 {} contents (the largest {} frames, {bytes} bytes) whispered and shouted both ways in {}",
        cases.len(),
        cases[0].0.len(),
        secs(t0.elapsed())
    );
    for x in [&mut zy, &mut rs] {
        let rest = x.drain_for(Duration::from_millis(300));
        let odd = of_kind(&rest, &["whisper", "shout", "exit", "enter"]);
        assert!(odd.is_empty(), "{}: {odd:?}", x.label);
    }
}
