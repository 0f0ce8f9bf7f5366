#!/usr/bin/env python3
"""A pyre (zeromq-pyre) node driven over stdin/stdout, for interop tests.

Usage:
  pyre_peer.py --port BEACON_PORT [--name NAME] [--header K=V ...] [--group G ...]
               [--loopback] [--evasive SEC] [--expired SEC] [--interval SEC]
               [--reap SEC] [--verbose]

--loopback   monkeypatches pyre (inside this process only) so that its beacon
             binds/sends ONLY to 127.255.255.255:PORT and its mailbox binds on
             127.0.0.1 (port 49152-49999). Without it, stock pyre interface
             selection is used; that is refused unless this process runs in a
             network namespace other than PID 1's (override: --allow-host-net).

stdout: one JSON object per line, flushed: after a ready line, every event as
zre-listen prints it (the tools' NDJSON, see src/cli/mod.rs), so the tests read
this and tests/doubles/peer.rs with the same predicates.
  {"type":"ready","uuid":HEX,"name":..,"endpoint":..,"port":BEACON_PORT}
  {"type":"enter","time":T,"peer":HEX,"name":..,"endpoint":..,"headers":{..}}
  {"type":"exit","time":T,"peer":HEX,"name":..}
  {"type":"join"|"leave","time":T,"peer":HEX,"name":..,"group":..}
  {"type":"whisper","time":T,"peer":HEX,"name":..,"frames":[F,..](,"text":..)}
  {"type":"shout","time":T,"peer":HEX,"name":..,"group":..,"frames":[F,..](,"text":..)}
  {"type":"stop","time":T}
  {"type":"peers","peers":[HEX,..]}           (reply to the peers command)
  {"type":"error","error":..}                  (bad command; pyre untouched)
  {"type":"crash","thread":..,"error":..}      (a pyre thread died: pyre is dead)
  HEX = 32 uppercase hex digits; T = RFC 3339 UTC with milliseconds; F = a frame,
  {"text":..} if it is UTF-8, else {"base64":..}; "text" only when the content is
  one UTF-8 frame. pyre itself never emits EVASIVE/SILENT.
stdin: one JSON object per line; content as zre-whisper --json reads it.
  {"cmd":"join","group":G}  {"cmd":"leave","group":G}
  {"cmd":"whisper","peer":HEX,"frames":[F,..]} (or "text":..)
  {"cmd":"shout","group":G,"frames":[F,..]}    (or "text":..)
  {"cmd":"peers"}  {"cmd":"stop"}   (EOF on stdin or SIGTERM = stop; exit 0)
exit status: 0 after a graceful stop; 2 if a pyre thread had crashed (pyre
cannot be stopped then); 3 if the loopback guard refused a non-127 UDP send.
"""
import argparse
import base64
import datetime
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid

import zmq
import pyre
from pyre import pyre_node, zbeacon
from pyre.pyre_peer import PyrePeer

_out_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def hexid(b):
    return uuid.UUID(bytes=b).hex.upper()


def now_rfc3339():
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def frame_json(f):
    try:
        return {"text": f.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(f).decode("ascii")}


def add_content(ev, frames):
    """frames, and text when the content is one UTF-8 frame (as zre-listen)."""
    ev["frames"] = [frame_json(f) for f in frames]
    if len(frames) == 1 and "text" in ev["frames"][0]:
        ev["text"] = ev["frames"][0]["text"]


def content_of(c):
    """A command's content, as zre-whisper --json reads it: frames, else text."""
    if "frames" in c:
        out = []
        for f in c["frames"]:
            if "text" in f:
                out.append(f["text"].encode("utf-8"))
            else:
                out.append(base64.b64decode(f["base64"], validate=True))
        return out
    return [c["text"].encode("utf-8")]


# ---------------------------------------------------------------- patches
LOOP_ADDR = ipaddress.IPv4Address("127.0.0.1")
LOOP_NET = ipaddress.IPv4Address("127.0.0.0")
LOOP_BCAST = ipaddress.IPv4Address("127.255.255.255")


def patch_loopback(mbox_min, mbox_max):
    """Replace pyre's interface discovery with a fixed loopback choice."""
    def _prepare_socket(self):
        self.address = LOOP_ADDR               # becomes the endpoint host
        self.network_address = LOOP_NET
        self.broadcast_address = LOOP_BCAST    # bind + sendto target (Linux)
        self.interface_name = "lo"
    zbeacon.ZBeacon._prepare_socket = _prepare_socket

    orig_send_beacon = zbeacon.ZBeacon.send_beacon

    def send_beacon(self):
        # belt and braces: never let a beacon leave for a non-loopback address
        if not ipaddress.IPv4Address(str(self.broadcast_address)).is_loopback:
            emit({"type": "crash", "thread": "beacon",
                  "error": "refused to beacon to %s" % self.broadcast_address})
            os._exit(3)
        return orig_send_beacon(self)
    zbeacon.ZBeacon.send_beacon = send_beacon

    orig_sendto = socket.socket.sendto

    def sendto(self, data, *rest):
        # process-wide guard: UDP may only go to 127.0.0.0/8
        addr = rest[-1]
        if not ipaddress.ip_address(addr[0]).is_loopback:
            emit({"type": "crash", "thread": "beacon",
                  "error": "refused UDP sendto %r" % (addr,)})
            os._exit(3)
        return orig_sendto(self, data, *rest)
    socket.socket.sendto = sendto

    orig_bind_random = zmq.Socket.bind_to_random_port

    def bind_to_random_port(self, addr, min_port=49152, max_port=65536, max_tries=100):
        if addr == "tcp://*":                  # pyre's mailbox bind
            addr, min_port, max_port = "tcp://127.0.0.1", mbox_min, mbox_max
        return orig_bind_random(self, addr, min_port, max_port, max_tries)
    zmq.Socket.bind_to_random_port = bind_to_random_port


def patch_timers(evasive, expired, interval, reap):
    if evasive is not None or expired is not None:
        ev = PyrePeer.PEER_EVASIVE if evasive is None else evasive
        ex = PyrePeer.PEER_EXPIRED if expired is None else expired

        # PyrePeer.refresh uses the class constants; PEER_EXPIRED is also used
        # (x100) as the DEALER SNDHWM, so replace refresh rather than the constant.
        def refresh(self):
            now = time.time()
            self.evasive_at = now + ev
            self.expired_at = now + ex
        PyrePeer.refresh = refresh
    if interval is not None:
        zbeacon.INTERVAL_DFLT = interval       # read when ZBeacon is created
    if reap is not None:
        pyre_node.REAP_INTERVAL = reap         # read by PyreNode.run each loop


def in_private_netns():
    try:
        return os.readlink("/proc/self/ns/net") != os.readlink("/proc/1/ns/net")
    except OSError:
        return False


def parse_event(f):
    """pyre's event frames as zre-listen prints the event (same keys, same order)."""
    kind = f[0].decode()
    ev = {"type": kind.lower(), "time": now_rfc3339()}
    if kind == "STOP":
        return ev
    ev["peer"] = hexid(f[1])
    ev["name"] = f[2].decode()
    if kind == "ENTER":
        ev["endpoint"] = f[4].decode()
        ev["headers"] = json.loads(f[3].decode())
    elif kind in ("JOIN", "LEAVE"):
        ev["group"] = f[3].decode()
    elif kind == "WHISPER":
        add_content(ev, f[3:])
    elif kind == "SHOUT":
        ev["group"] = f[3].decode()
        add_content(ev, f[4:])
    elif len(f) > 3:
        ev["extra"] = [frame_json(x) for x in f[3:]]
    return ev


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="UDP beacon port")
    ap.add_argument("--name")
    ap.add_argument("--header", action="append", default=[], metavar="K=V")
    ap.add_argument("--group", action="append", default=[])
    ap.add_argument("--loopback", action="store_true")
    ap.add_argument("--allow-host-net", action="store_true")
    ap.add_argument("--mailbox-ports", default="49152-49999", metavar="MIN-MAX",
                    help="mailbox port range in --loopback mode")
    ap.add_argument("--evasive", type=float, help="seconds (pyre default 10)")
    ap.add_argument("--expired", type=float, help="seconds (pyre default 30)")
    ap.add_argument("--interval", type=float, help="beacon interval, s (default 1)")
    ap.add_argument("--reap", type=float, help="reap interval, s (default 1)")
    ap.add_argument("--verbose", action="store_true", help="pyre debug log on stderr")
    ap.add_argument("--zpinger", action="store_true",
                    help="behave like Zyre's zpinger: join GLOBAL, whisper Hello to each "
                         "peer that enters, answer a Hello whisper with a Hello shout")
    args = ap.parse_args()

    if args.port == 5670:
        ap.error("refusing the default ZRE port 5670")
    if not args.loopback and not args.allow_host_net and not in_private_netns():
        ap.error("stock interface selection outside a private network namespace "
                 "would beacon on the host network; use --loopback")

    logging.basicConfig(stream=sys.stderr,
                        level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="pyre %(levelname)s %(name)s: %(message)s")

    crashed = threading.Event()

    def excepthook(a):
        crashed.set()
        emit({"type": "crash", "thread": a.thread.name if a.thread else None,
              "error": "%s: %s" % (a.exc_type.__name__, a.exc_value)})
        threading.__excepthook__(a)
    threading.excepthook = excepthook

    if args.loopback:
        lo, hi = (int(x) for x in args.mailbox_ports.split("-"))
        patch_loopback(lo, hi + 1)
    patch_timers(args.evasive, args.expired, args.interval, args.reap)

    node = pyre.Pyre(args.name)
    for h in args.header:
        k, _, v = h.partition("=")
        node.set_header(k, v)
    node.set_port(str(args.port).encode())
    for g in args.group:
        node.join(g)
    if args.zpinger:
        node.join("GLOBAL")
    node.start()
    own = node.uuid()
    emit({"type": "ready", "uuid": own.hex.upper(), "name": node.name(),
          "endpoint": node.endpoint(), "port": args.port})

    sock = node.socket()
    stdin_fd = sys.stdin.fileno()
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(stdin_fd, zmq.POLLIN)

    stopping = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__("flag", True))

    def handle_event():
        ev = parse_event(sock.recv_multipart())
        emit(ev)
        if args.zpinger and not crashed.is_set():
            if ev.get("type") == "enter":
                node.whisper(uuid.UUID(hex=ev["peer"]), [b"Hello"])
            elif ev.get("type") == "whisper" and ev["frames"][:1] == [{"text": "Hello"}]:
                node.shout("GLOBAL", [b"Hello"])

    def handle_cmd(line):
        try:
            c = json.loads(line)
            cmd = c["cmd"]
            if cmd == "stop":
                return True
            if crashed.is_set():
                raise RuntimeError("pyre node thread is dead (see crash event)")
            if cmd == "join":
                node.join(c["group"])
            elif cmd == "leave":
                node.leave(c["group"])
            elif cmd in ("whisper", "shout"):
                frames = content_of(c)
                if not frames:
                    # pyre's send_multipart([]) raises IndexError; refuse instead
                    raise ValueError("at least one content frame is required")
                if cmd == "whisper":
                    node.whisper(uuid.UUID(hex=c["peer"]), frames)
                else:
                    node.shout(c["group"], frames)
            elif cmd == "peers":
                emit({"type": "peers", "peers": [p.hex.upper() for p in node.peers()]})
            else:
                raise ValueError("unknown cmd %r" % cmd)
        except Exception as e:  # report, keep running
            emit({"type": "error", "error": "%s: %s" % (type(e).__name__, e),
                  "line": line})
        return False

    buf = b""
    done = False
    while not done and not stopping["flag"]:
        items = dict(poller.poll(200))
        if sock in items:
            while sock.get(zmq.EVENTS) & zmq.POLLIN:
                handle_event()
        if stdin_fd in items:
            chunk = os.read(stdin_fd, 65536)
            if not chunk:
                done = True                       # EOF = stop
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip() and handle_cmd(line.decode()):
                    done = True
                    break

    if crashed.is_set():
        # pyre's stop() would block forever on the dead actor
        sys.stdout.flush()
        os._exit(2)
    # graceful stop: pyre sends the port-0 beacon and a STOP event
    node.stop()
    deadline = time.time() + 1.0
    while time.time() < deadline:
        if sock.poll(100) & zmq.POLLIN:
            f = sock.recv_multipart()
            emit(parse_event(f))              # late events, then STOP
            if f[0] == b"STOP":
                break
    sys.stdout.flush()
    os._exit(0)  # don't wait on pyre's lingering sockets/threads


if __name__ == "__main__":
    main()
