"""The load generator's yardstick: an asyncio server that answers every request with constant bytes.

    python -m benchmarks.constserver --port 8099

It does far less per request than any WSGI server, so what the load generator reaches against
it is a lower bound of the generator's own ceiling.
"""

from __future__ import annotations

import argparse
import asyncio

HOST = "127.0.0.1"
BODY = b'{"ok": true}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"


class ConstantAnswer(asyncio.Protocol):
    """Reads whole requests (headers and Content-Length body) and answers each at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(_HEADER_END)
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            at = head.find(_CONTENT_LENGTH)
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + len(_CONTENT_LENGTH) : stop if stop > 0 else None])
            total = end + len(_HEADER_END) + length
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            self.transport.write(RESPONSE)


async def serve(port: int) -> None:
    """Serve until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(ConstantAnswer, HOST, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
