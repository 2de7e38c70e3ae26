"""Order round trips through the gateway: a socket client sends `new_order` and waits for its
`order.accepted` event, one at a time, or paced (`--rate`, 0 = flat out; see pacing.py).
Prints the round trips (us)."""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time

from bench.pacing import Pacer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--orders", type=int, required=True)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--prefix", default="gw")
    parser.add_argument("--symbol", default="LTC/USD")
    args = parser.parse_args()
    if args.rate is not None:
        paced(args.socket, args.orders, args.rate or None, args.prefix, args.symbol)
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args.socket)
    sock.sendall(b'{"id":0,"op":"subscribe","topics":["orders"]}\n')
    buffer = b""
    while b'"id":0' not in buffer:
        buffer += sock.recv(65536)
    buffer = b""
    rtts: list[float] = []
    wanted = b'"order.accepted","ts":'
    cpu_start = time.process_time()
    for i in range(args.orders):
        cl_ord_id = b'"%s-%d"' % (args.prefix.encode(), i)
        start = time.perf_counter()
        sock.sendall(request(i, args.prefix, args.symbol))
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                buffer += sock.recv(65536)
                continue
            line, buffer = buffer[:end], buffer[end + 1 :]
            if b'"error"' in line:
                raise SystemExit(f"the gateway refused an order: {line.decode()}")
            if wanted in line and cl_ord_id in line:
                break
        rtts.append((time.perf_counter() - start) * 1e6)
    print(json.dumps({"rtt_us": rtts, "cpu_s": time.process_time() - cpu_start}), flush=True)


def request(i: int, prefix: str, symbol: str) -> bytes:
    return (
        b'{"id":%d,"op":"new_order","symbol":"%s","side":"buy","type":"limit",'
        b'"qty":"1","price":"1","cl_ord_id":"%s-%d"}\n'
        % (i + 1, symbol.encode(), prefix.encode(), i)
    )


def paced(path: str, orders: int, rate: float | None, prefix: str, symbol: str) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.sendall(b'{"id":0,"op":"subscribe","topics":["orders"]}\n')
    buffer = b""
    while b'"id":0' not in buffer:
        buffer += sock.recv(65536)
    pacer = Pacer(orders, rate)
    marker = b'"order.accepted","ts":'
    id_at = b'"cl_ord_id":"%s-' % prefix.encode()

    def read() -> None:
        data = b""
        answered = 0
        while answered < orders:
            data += sock.recv(262144)
            *lines, data = data.split(b"\n")
            for line in lines:
                if marker in line:
                    start = line.index(id_at) + len(id_at)
                    pacer.answered(int(line[start : line.index(b'"', start)]))
                    answered += 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    pacer.send_all(lambda i: sock.sendall(request(i, prefix, symbol)))
    pacer.wait(120)
    print(json.dumps(pacer.result()), flush=True)


if __name__ == "__main__":
    main()
