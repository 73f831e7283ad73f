#!/usr/bin/env python3
"""Regenerates src/cmd/server/commands.resp3 from a running redis-server 7.0.

kura answers COMMAND, COMMAND INFO and COMMAND DOCS with Redis 7.0.15's own metadata (ACL
categories, tips, key specs, summaries, arguments) for every command it implements. This script
captures that metadata from a real server, in RESP3 so that maps and sets keep their types:

    redis-server --port 23456 --save '' &
    python3 src/cmd/server/gen_command_meta.py 23456 > src/cmd/server/commands.resp3

The output is a RESP3 stream with LF line ends (readable, diffable): one 3-element array per
top-level command, sorted by name: [name, COMMAND INFO entry, COMMAND DOCS entry]. Command
groups kura will not implement are left out to keep the file small.
"""
import socket
import sys

SKIP_GROUPS = {b"sorted-set", b"set", b"geo", b"stream", b"hyperloglog",
               b"cluster", b"sentinel", b"bitmap"}


def enc(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        d = self.sock.recv(1 << 20)
        if not d:
            raise EOFError
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n")
        l, self.buf = self.buf[:i], self.buf[i + 2:]
        return l

    def exact(self, n):
        while len(self.buf) < n + 2:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d

    def read(self):
        l = self.line()
        t, rest = l[:1], l[1:]
        if t in b"+-:,#(_":
            return (t, rest)
        if t in b"$=!":
            return (t, self.exact(int(rest)))
        n = int(rest)
        if t == b"%":
            return (t, [(self.read(), self.read()) for _ in range(n)])
        return (t, [self.read() for _ in range(n)])


def ser(v, out):
    t, x = v
    if t in b"+-:,#(_":
        out.append(t + x + b"\n")
    elif t in b"$=!":
        out.append(t + b"%d\n" % len(x) + x + b"\n")
    elif t == b"%":
        out.append(b"%%%d\n" % len(x))
        for k, val in x:
            ser(k, out)
            ser(val, out)
    else:
        out.append(t + b"%d\n" % len(x))
        for i in x:
            ser(i, out)


def main():
    port = int(sys.argv[1])
    s = socket.create_connection(("127.0.0.1", port))
    r = Reader(s)
    s.sendall(enc([b"HELLO", b"3"]))
    r.read()
    s.sendall(enc([b"COMMAND"]))
    infos = {e[1][0][1]: e for e in r.read()[1]}
    s.sendall(enc([b"COMMAND", b"DOCS"]))
    docs = {k[1]: v for k, v in r.read()[1]}
    out = []
    for name in sorted(infos):
        doc = docs[name]
        group = dict((k[1], v[1]) for k, v in doc[1]).get(b"group")
        if group in SKIP_GROUPS:
            continue
        ser((b"*", [(b"$", name), infos[name], doc]), out)
    sys.stdout.buffer.write(b"".join(out))


main()
