"""Order round trips through the gateway: a socket client sends `new_order` one at a time and
waits for its `order.accepted` event. Prints the round trips (us)."""

from __future__ import annotations

import argparse
import json
import socket
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--orders", type=int, required=True)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args.socket)
    sock.sendall(b'{"id":0,"op":"subscribe","topics":["orders"]}\n')
    buffer = b""
    while b'"id":0' not in buffer:
        buffer += sock.recv(65536)
    buffer = b""
    rtts: list[float] = []
    for i in range(args.orders):
        cl_ord_id = f"gw-{i}".encode()
        request = (
            b'{"id":%d,"op":"new_order","symbol":"LTC/USD","side":"buy","type":"limit",'
            b'"qty":"1","price":"1","cl_ord_id":"%s"}\n' % (i + 1, cl_ord_id)
        )
        wanted = b'"order.accepted","ts":'
        start = time.perf_counter()
        sock.sendall(request)
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                buffer += sock.recv(65536)
                continue
            line, buffer = buffer[:end], buffer[end + 1 :]
            if wanted in line and b'"%s"' % cl_ord_id in line:
                break
        rtts.append((time.perf_counter() - start) * 1e6)
    print(json.dumps({"rtt_us": rtts}), flush=True)


if __name__ == "__main__":
    main()
