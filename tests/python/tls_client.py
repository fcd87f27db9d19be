"""Calls a spares server over TLS with a Python grpcio client: the health
check and ListLocations, trusting only the given CA file, optionally with a
client certificate (mutual TLS). Then tries the same call in plaintext,
which the TLS server must refuse.

Usage: tls_client.py HOST:PORT CA_PEM [CLIENT_CERT_PEM CLIENT_KEY_PEM]
Prints one JSON line: health status (1 = SERVING), the location ids, and
whether the plaintext call was refused. No generated stubs: requests and
replies are encoded and decoded here (protobuf wire format), so grpcio is
the only dependency.
"""

import json
import sys

import grpc


def read_varint(data, i):
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def fields(message):
    """Every (field number, value) in order: ints for varints, bytes for
    length-delimited fields."""
    out, i = [], 0
    while i < len(message):
        key, i = read_varint(message, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(message, i)
        elif wire == 2:
            length, i = read_varint(message, i)
            value = message[i : i + length]
            i += length
        elif wire == 1:
            value, i = message[i : i + 8], i + 8
        elif wire == 5:
            value, i = message[i : i + 4], i + 4
        else:
            raise ValueError("unexpected wire type %d" % wire)
        out.append((number, value))
    return out


def calls(channel):
    health = channel.unary_unary("/grpc.health.v1.Health/Check")
    status = dict(fields(health(b"", timeout=30))).get(1, 0)
    list_locations = channel.unary_unary("/spares.v1.NetworkService/ListLocations")
    reply = list_locations(b"", timeout=30)
    ids = [
        dict(fields(location)).get(1, b"").decode()
        for number, location in fields(reply)
        if number == 1
    ]
    return status, ids


def main(address, ca_path, cert_path=None, key_path=None):
    with open(ca_path, "rb") as f:
        ca = f.read()
    key = cert = None
    if cert_path:
        with open(cert_path, "rb") as f:
            cert = f.read()
        with open(key_path, "rb") as f:
            key = f.read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )
    # The test certificate names localhost; the address is 127.0.0.1.
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(address, credentials, options=options) as channel:
        status, ids = calls(channel)
    try:
        with grpc.insecure_channel(address) as channel:
            calls(channel)
        plaintext_refused = False
    except grpc.RpcError as error:
        plaintext_refused = error.code() == grpc.StatusCode.UNAVAILABLE
    print(
        json.dumps(
            {
                "health_status": status,
                "locations": ids,
                "plaintext_refused": plaintext_refused,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
