"""A TCP proxy that delays every byte by a fixed time each way, to stand for a distant server.

Real S3 is tens of milliseconds away, where moto and Swift on loopback answer in well under one:
what costs time on a real link (round trips, requests sent one after the other) does not show on
loopback. This proxy adds ``delay`` seconds to each direction (a round trip of ``2 * delay``),
without any bandwidth cap: each chunk read is written out ``delay`` seconds after it arrived, in
order. It runs in a process of its own (``start_proxy``) so its CPU is not the benchmark's.

Run alone: ``python bench/latency_proxy.py TARGET_HOST:PORT --delay-ms 10 [--port N]``; it prints
the port it listens on (127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import time

CHUNK = 256 * 1024


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward everything from ``reader`` to ``writer``, each chunk ``delay`` seconds after it came."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(CHUNK):
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((loop.time() + delay, b""))
    with contextlib.suppress(ConnectionError):
        await sender


async def _serve(target: tuple[str, int], delay: float, port: int) -> None:
    running: set[asyncio.Task] = set()  # asyncio keeps only weak references to tasks

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        task.add_done_callback(running.discard)
        await asyncio.sleep(delay)  # the client's SYN travelling out
        try:
            server_reader, server_writer = await asyncio.open_connection(*target)
        except OSError:
            client_writer.close()
            return
        await asyncio.sleep(delay)  # the SYN-ACK travelling back
        for w in (client_writer, server_writer):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(_pump(client_reader, server_writer, delay), _pump(server_reader, client_writer, delay))
        for w in (client_writer, server_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def start_proxy(target_url: str, delay_ms: float) -> tuple[subprocess.Popen, str]:
    """Start the proxy in front of ``target_url`` (``http://host:port``); return it and its URL."""
    hostport = target_url.split("://", 1)[1].split("/", 1)[0]
    proc = subprocess.Popen(
        [sys.executable, __file__, hostport, "--delay-ms", str(delay_ms)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="HOST:PORT to forward to")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="delay each way (default: %(default)s ms)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    asyncio.run(_serve((host, int(port)), args.delay_ms / 1000, args.port))


if __name__ == "__main__":
    main()
