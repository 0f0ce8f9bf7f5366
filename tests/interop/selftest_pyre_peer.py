#!/usr/bin/env python3
"""Self-test of pyre_peer.py without any Rust: two pyre peers on loopback.

Run by tests/interop.rs (pyre_peer_selftest_two_pyre_nodes_on_loopback), or by hand:
  .venv/bin/python tests/interop/selftest_pyre_peer.py [BEACON_PORT]
Checks discovery, headers, join, multi-frame binary whisper/shout both ways in
the tools' NDJSON (frames as {"text"}/{"base64"}, "text" for one UTF-8 frame),
leave, stop -> exit, and that every socket of both peers is on 127.x (ss).
Exit status 0 when all of it holds.
"""
import base64
import json
import os
import queue
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 45123
PY = sys.executable


class Peer:
    def __init__(self, name, *extra):
        cmd = [PY, os.path.join(HERE, "pyre_peer.py"), "--loopback",
               "--port", str(PORT), "--name", name] + list(extra)
        self.name = name
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self.expect("ready", timeout=10)
        self.uuid = self.ready["uuid"]

    def _read(self):
        for line in self.p.stdout:
            ev = json.loads(line)
            print("  %-6s <- %s" % (self.name, line.decode().rstrip()), flush=True)
            self.q.put(ev)

    def send(self, **cmd):
        self.p.stdin.write((json.dumps(cmd) + "\n").encode())
        self.p.stdin.flush()

    def expect(self, typ, timeout=15, **match):
        end = time.time() + timeout
        while time.time() < end:
            try:
                ev = self.q.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                break
            assert ev["type"] not in ("crash", "error"), ev
            if ev["type"] == typ and all(ev.get(k) == v for k, v in match.items()):
                return ev
        raise AssertionError("%s: no %s %s within %ss" % (self.name, typ, match, timeout))


def sockets_of(pids):
    out = subprocess.run(["ss", "-uantpH"], capture_output=True, text=True).stdout
    rows = [l for l in out.splitlines() if any("pid=%d," % p in l for p in pids)]
    return rows


def check_loopback_only(pids):
    rows = sockets_of(pids)
    for r in rows:
        cols = r.split()                 # netid state recvq sendq local peer ...
        local, peer = cols[4], cols[5]
        assert local.startswith("127."), r
        assert peer.startswith("127.") or peer in ("0.0.0.0:*", "*:*"), r
    return rows


frames_a = [b"\x00\x01\x02", b"", bytes(range(256)), "héllo".encode()]
frames_b = [b"\xff" * 3, b"second", b"\x00"]
frames_c = ["one frame ✓".encode()]
enc = lambda fs: [{"base64": base64.b64encode(f).decode()} for f in fs]


def dec(ev):
    """The frames of an NDJSON event; checks text/base64 and the text field."""
    out = []
    for f in ev["frames"]:
        if "text" in f:
            out.append(f["text"].encode("utf-8"))
        else:
            b = base64.b64decode(f["base64"])
            try:
                b.decode("utf-8")
                raise AssertionError("UTF-8 frame as base64: %r" % ev)
            except UnicodeDecodeError:
                pass
            out.append(b)
    one_text = len(out) == 1 and "text" in ev["frames"][0]
    assert ("text" in ev) == one_text, ev
    assert list(ev)[:2] == ["type", "time"], ev
    return out

t0 = time.time()
a = Peer("alice", "--header", "X-A=1", "--header", "X-B=two", "--group", "GLOBAL")
b = Peer("bob", "--header", "X-ROLE=b")
print("ready:", a.ready, b.ready, flush=True)
ea = a.expect("enter", peer=b.uuid)
eb = b.expect("enter", peer=a.uuid)
t_disc = time.time() - t0
assert eb["headers"] == {"X-A": "1", "X-B": "two"}, eb
assert eb["endpoint"] == a.ready["endpoint"] and ea["endpoint"] == b.ready["endpoint"]
assert ea["endpoint"].startswith("tcp://127.0.0.1:")
b.expect("join", peer=a.uuid, group="GLOBAL")       # from alice's HELLO groups

b.send(cmd="join", group="GLOBAL")
a.expect("join", peer=b.uuid, group="GLOBAL")

a.send(cmd="whisper", peer=b.uuid, frames=enc(frames_a))
w = b.expect("whisper", peer=a.uuid)
assert dec(w) == frames_a, w
b.send(cmd="whisper", peer=a.uuid, frames=enc(frames_b))
w = a.expect("whisper", peer=b.uuid)
assert dec(w) == frames_b, w

a.send(cmd="shout", group="GLOBAL", frames=enc(frames_a))
s = b.expect("shout", peer=a.uuid, group="GLOBAL")
assert dec(s) == frames_a, s
b.send(cmd="shout", group="GLOBAL", frames=enc(frames_b))
s = a.expect("shout", peer=b.uuid, group="GLOBAL")
assert dec(s) == frames_b, s

a.send(cmd="whisper", peer=b.uuid, text="one frame ✓")
w = b.expect("whisper", peer=a.uuid)
assert dec(w) == frames_c and w["text"] == "one frame ✓", w

b.send(cmd="leave", group="GLOBAL")
a.expect("leave", peer=b.uuid, group="GLOBAL")

rows = check_loopback_only([a.p.pid, b.p.pid])
print("sockets of both peers (ss -uantp):")
for r in rows:
    print("   ", r)

t1 = time.time()
b.send(cmd="stop")
b.expect("stop")
a.expect("exit", peer=b.uuid)
t_exit = time.time() - t1
assert b.p.wait(5) == 0
a.p.stdin.close()                                    # EOF = stop
a.expect("stop")
assert a.p.wait(5) == 0
print("OK: discovery (both ENTER) %.2fs after start, EXIT %.2fs after stop"
      % (t_disc, t_exit))
