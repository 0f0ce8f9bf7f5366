#!/usr/bin/env python3
"""Probe how stock pyre (via pyre_peer.py --loopback) reacts to odd input.
Run from the repo root: .venv/bin/python tests/interop/probe_pyre_quirks.py [CASE ...]
Loopback only (beacon port 45124, mailboxes on 127.0.0.1)."""
import json, os, socket, struct, subprocess, sys, time, uuid, zmq
from pyre.zre_msg import ZreMsg
PORT = 45124
def run(case):
    p = subprocess.Popen([sys.executable, "tests/interop/pyre_peer.py", "--loopback", "--port", str(PORT), "--name", "victim"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ready = json.loads(p.stdout.readline()); ep = ready["endpoint"]
    ctx = zmq.Context(); me = uuid.uuid4()
    r = ctx.socket(zmq.ROUTER); rport = r.bind_to_random_port("tcp://127.0.0.1", 49152, 50000)
    d = ctx.socket(zmq.DEALER); d.setsockopt(zmq.IDENTITY, b"\x01" + me.bytes); d.setsockopt(zmq.LINGER, 0); d.connect(ep)
    h = ZreMsg(ZreMsg.HELLO); h.set_sequence(1); h.set_endpoint("tcp://127.0.0.1:%d" % rport); h.set_name("probe"); h.set_groups([]); h.send(d)
    time.sleep(0.3)
    if case == "whisper_no_content":
        d.send(bytes.fromhex("aaa102020002"))
    elif case == "join_bad_status":
        d.send(bytes.fromhex("aaa10402000206474c4f42414c05"))  # status 5, expected 1
    elif case == "join_good_status":
        d.send(bytes.fromhex("aaa10402000206474c4f42414c01"))
    elif case == "id8_elect":
        d.send(bytes.fromhex("aaa10802000206474c4f42414c03616263"))
    elif case == "bad_signature":
        d.send(bytes.fromhex("aaa206020002"))
    elif case == "truncated_join":
        d.send(bytes.fromhex("aaa10402000206474c4f"))
    elif case == "trailing_bytes_ping":
        d.send(bytes.fromhex("aaa106020002ffff"))
        time.sleep(0.2); d.send(bytes.fromhex("aaa106020003"))
    elif case == "beacon54":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        u.sendto(b"ZRE\x03" + uuid.uuid4().bytes + b"\xc0\x00" + b"k"*32, ("127.255.255.255", PORT))
    elif case == "seq_gap":
        d.send(bytes.fromhex("aaa106020003"))
    time.sleep(1.0)
    # does pyre still answer a ping? check router for PING_OK
    p.stdin.write(b'{"cmd":"peers"}\n'); p.stdin.flush(); time.sleep(0.5)
    out = p.communicate(b'', timeout=10)[0].decode()
    rx = []
    while r.poll(0): rx.append(r.recv_multipart()[1][:4].hex())
    print("==", case, "| exit", p.returncode, "| pyre->probe frame heads:", rx)
    for l in out.splitlines(): print("   ", l[:140])
    r.close(0); d.close(0); ctx.term()
CASES = ["join_good_status", "whisper_no_content", "join_bad_status", "id8_elect",
         "bad_signature", "truncated_join", "trailing_bytes_ping", "seq_gap", "beacon54"]
for c in sys.argv[1:] or CASES: run(c)
