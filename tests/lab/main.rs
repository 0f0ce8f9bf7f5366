//! The multi-host lab (issue 4): our nodes as separate hosts in Linux network namespaces,
//! joined by veth pairs to a bridge in a namespace of its own, so discovery runs over real
//! broadcast and links can be cut, made lossy, or attacked. See `tests/lab/netns.rs`.
//!
//! Needs root and iproute2 (nftables for the lossy link). Without them each test prints
//! `SKIPPED ...` and passes, unless `ZRE_REQUIRE_LAB=1` (CI), which makes them fail.
//! Scenarios run one at a time (a lock), each on its own beacon ports (48010-48099, the Zyre
//! C scenarios 48110-48189) and subnet (10.77.N.0/24), with timers shortened to keep the
//! whole lab under a few minutes.
//! Every figure measured is printed (`cargo test --test lab -- --nocapture` to see them).
//!
//! Nodes are the test doubles `zre-test-peer` (tests/doubles/peer.rs; the tools' NDJSON,
//! read through `tests/common`), `tests/interop/pyre_peer.py` (stock pyre interface
//! selection), `tests/interop/zyre_peer.c` (Zyre C, the reference, with the same line
//! protocol; see `zyre.rs`), Zyre's own `zpinger`, and `zre-test-rogue`
//! (tests/doubles/rogue.rs, hostile input).
//!
//! One file per scenario (`s1_discovery.rs` ... `s9_sequence_wrap.rs`; CURVE,
//! `c1_curve.rs`, `c2_zyre_curve.rs`; against Zyre C, `z1_zyre_discovery.rs` ... `z8_zyre_options.rs`;
//! IPv6, `i1_ipv6.rs`, `i2_ipv6_zyre.rs` on ports 48400-48412, over `ipv6.rs`) over
//! `support.rs` and `zyre.rs`; `netns.rs` builds the network. The Zyre C scenarios also
//! need a Zyre C build (`../shared/zyre-c/build.sh target/zyre-c`): without it they print
//! `SKIPPED ...` and pass, unless `ZRE_REQUIRE_ZYRE=1` (CI).

#[path = "../common/mod.rs"]
mod common;
mod netns;
#[macro_use]
mod support;

mod c1_curve;
mod c2_zyre_curve;
mod s1_discovery;
mod s2_kill;
mod s3_partition;
mod s4_restart;
mod s5_loss;
mod s6_fifty_hosts;
mod s7_pyre;
mod s8_hostile;
mod s9_sequence_wrap;

mod g1_subnets;
mod g2_hub_restart;
mod g3_nat;
mod g4_static;
mod g5_hub_hostile;
mod g6_zyre_gossip;

mod e1_zyre_elect;

mod z1_zyre_discovery;
mod z2_zyre_zpinger;
mod z3_zyre_content;
mod z4_zyre_status_wrap;
mod z5_zyre_sequence_wrap;
mod z6_zyre_stop_kill;
mod z7_zyre_mixed;
mod z8_zyre_options;
mod zyre;

mod i1_ipv6;
mod i2_ipv6_zyre;
mod ipv6;
