#!/usr/bin/env python3
"""Print ZRE golden vectors produced by pyre's own encoder (zeromq-pyre).

Output: one line per vector, `name hex`, on stdout. Each ZRE vector is the ZRE
frame exactly as it arrives at a ROUTER after the routing-identity frame, with
content frames excluded. Messages are really sent through pyre's
ZreMsg.send() over an inproc DEALER->ROUTER pair (no network use at all), so
the bytes are what pyre puts on the wire. Self-checks go to stderr.

Run:  .venv/bin/python tests/interop/golden.py > tests/golden/pyre.txt
"""
import socket
import struct
import sys
import uuid

import zmq
import pyre
from pyre import pyre_node
from pyre.zre_msg import ZreMsg

NODE_UUID = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
CONTENT = [b"part-1", b"\x00\xff\x01binary", b""]


def log(*a):
    print(*a, file=sys.stderr)


ctx = zmq.Context()
router = ctx.socket(zmq.ROUTER)
router.bind("inproc://golden")
dealer = ctx.socket(zmq.DEALER)
identity = b"\x01" + NODE_UUID.bytes        # as PyrePeer.connect sets it
dealer.setsockopt(zmq.IDENTITY, identity)
dealer.connect("inproc://golden")


def roundtrip(msg):
    """Send with pyre's encoder; return (zre_frame, content_frames)."""
    msg.send(dealer)
    frames = router.recv_multipart()
    assert frames[0] == identity, frames[0]
    return frames[1], frames[2:]


def decode(frame, content=()):
    """Decode with pyre's own decoder (needs a ROUTER-like source)."""
    class FakeRouter:
        type = zmq.ROUTER

        def recv_multipart(self):
            return [identity, frame] + list(content)
    m = ZreMsg()
    m.recv(FakeRouter())
    return m


vectors = []

# HELLO
m = ZreMsg(ZreMsg.HELLO)
m.set_sequence(1)
m.set_endpoint("tcp://127.0.0.1:49152")
m.set_groups(["GLOBAL", "robots"])
m.set_status(3)
m.set_name("node-a")
m.set_headers({"X-A": "1", "X-B": "two"})   # dict keeps insertion order
f, c = roundtrip(m)
assert c == []
d = decode(f)
assert (d.id, d.sequence, d.endpoint, d.groups, d.status, d.name, d.headers) == \
    (1, 1, "tcp://127.0.0.1:49152", ["GLOBAL", "robots"], 3, "node-a",
     {"X-A": "1", "X-B": "two"}), vars(d)
vectors.append(("hello", f))

# WHISPER (content as separate zmq frames; only the ZRE frame is the vector)
m = ZreMsg(ZreMsg.WHISPER)
m.set_sequence(2)
m.content = list(CONTENT)
f, c = roundtrip(m)
assert c == CONTENT, c     # each content frame arrives as its own zmq frame
d = decode(f, c)
assert (d.id, d.sequence, d.content) == (2, 2, CONTENT)
vectors.append(("whisper", f))
log("whisper: %d content frames sent as %d separate zmq frames" % (len(CONTENT), len(c)))

# SHOUT
m = ZreMsg(ZreMsg.SHOUT)
m.set_sequence(3)
m.set_group("GLOBAL")
m.content = list(CONTENT)
f, c = roundtrip(m)
assert c == CONTENT, c
d = decode(f, c)
assert (d.id, d.sequence, d.group, d.content) == (3, 3, "GLOBAL", CONTENT)
vectors.append(("shout", f))

# JOIN / LEAVE
for name, mid, seq, status in (("join", ZreMsg.JOIN, 4, 4), ("leave", ZreMsg.LEAVE, 5, 5)):
    m = ZreMsg(mid)
    m.set_sequence(seq)
    m.set_group("GLOBAL")
    m.set_status(status)
    f, c = roundtrip(m)
    d = decode(f)
    assert (d.id, d.sequence, d.group, d.status) == (mid, seq, "GLOBAL", status)
    vectors.append((name, f))

# PING / PING-OK
for name, mid, seq in (("ping", ZreMsg.PING, 6), ("ping_ok", ZreMsg.PING_OK, 7)):
    m = ZreMsg(mid)
    m.set_sequence(seq)
    f, c = roundtrip(m)
    d = decode(f)
    assert (d.id, d.sequence) == (mid, seq)
    vectors.append((name, f))

# ELECT / LEADER / GOODBYE: pyre's ZreMsg has no ids 8-10.
for attr in ("ELECT", "LEADER", "GOODBYE"):
    assert not hasattr(ZreMsg, attr), attr
log("pyre ZreMsg has no ELECT/LEADER/GOODBYE (ids 8-10): no vectors for them")

# BEACON, built exactly as PyreNode.start() does (pyre_node.py):
#   struct.pack('cccb16sH', b'Z', b'R', b'E', BEACON_VERSION,
#               self.identity.bytes, socket.htons(self.port))
beacon = struct.pack('cccb16sH', b'Z', b'R', b'E',
                     pyre_node.BEACON_VERSION, NODE_UUID.bytes,
                     socket.htons(49152))
assert len(beacon) == 22
vectors.append(("beacon", beacon))
# and the "I am leaving" beacon PyreNode.stop() sends (port 0)
beacon_stop = struct.pack('cccb16sH', b'Z', b'R', b'E',
                          pyre_node.BEACON_VERSION, NODE_UUID.bytes,
                          socket.htons(0))
vectors.append(("beacon_stop", beacon_stop))

for name, data in vectors:
    print(name, data.hex())

log("zeromq-pyre %s, pyzmq %s, libzmq %s" % (pyre.__version__, zmq.pyzmq_version(), zmq.zmq_version()))
dealer.close(0)
router.close(0)
ctx.term()
