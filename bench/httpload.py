#!/usr/bin/env python3
"""A small closed-loop HTTP/1.1 keep-alive load generator (stand-in for wrk where it is not
installed): C connections, each sending GET PATH_TEMPLATE with {uid} = user-0 … user-(USERS-1)
in turn, for DURATION seconds. Prints: WRKRESULT requests duration_us p50_us p99_us errors
  httpload.py URL PATH_TEMPLATE AUTH DURATION_S CONNECTIONS USERS"""
import asyncio, sys, time
from urllib.parse import urlsplit

url, tmpl, auth, dur, conns, users = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
u = urlsplit(url)
host, port = u.hostname, u.port
reqs = [f"GET {tmpl.replace('{uid}', f'user-{i}')} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {auth}\r\n\r\n".encode() for i in range(users)]
lat, errors, count = [], 0, 0

async def worker(k, deadline):
    global errors, count
    r, w = await asyncio.open_connection(host, port)
    i = (k * 397) % users
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        w.write(reqs[i]); i = (i + 1) % users
        head = await r.readuntil(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                n = int(line[15:])
        if n:
            await r.readexactly(n)
        if not head.startswith(b"HTTP/1.1 200"):
            errors += 1
        lat.append(time.perf_counter() - t); count += 1
    w.close()

async def main():
    t0 = time.perf_counter(); deadline = t0 + dur
    await asyncio.gather(*(worker(k, deadline) for k in range(conns)))
    d = time.perf_counter() - t0
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * (len(lat) - 1) + 0.5))] * 1e6 if lat else 0
    print(f"WRKRESULT {count} {d * 1e6:.0f} {pct(50):.0f} {pct(99):.0f} {errors}")

asyncio.run(main())
