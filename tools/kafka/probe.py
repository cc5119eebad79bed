"""Ask a Kafka broker whether it serves clients, with one raw Metadata request.

A plain socket keeps ``driftloop kafka status`` free of an event loop and of client
retries. The broker is counted as answering only when its Metadata response lists at least
one broker: a KRaft broker accepts connections before it has registered with the controller,
and until then clients cannot create topics or produce.
"""

from __future__ import annotations

import socket
import struct

__all__ = ["broker_answers", "port_is_free"]

_METADATA_API_KEY = 3
_METADATA_VERSION = 1  # v1 accepts a null topic list ("no topics"), which keeps answers small
_CLIENT_ID = b"driftloop-probe"


def _metadata_request(correlation_id: int) -> bytes:
    header = struct.pack(">hhih", _METADATA_API_KEY, _METADATA_VERSION, correlation_id,
                         len(_CLIENT_ID)) + _CLIENT_ID
    body = struct.pack(">i", -1)  # topics: null
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def broker_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a broker on ``host:port`` answers Metadata and lists itself.

    >>> broker_answers("127.0.0.1", 1, timeout=0.2)
    False
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_metadata_request(correlation_id=7))
            (size,) = struct.unpack(">i", _read_exactly(sock, 4))
            if not 8 <= size <= 16 * 1024 * 1024:
                return False
            response = _read_exactly(sock, size)
    except (OSError, ConnectionError):
        return False
    correlation_id, broker_count = struct.unpack_from(">ii", response)
    return correlation_id == 7 and broker_count > 0


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (so a broker can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
