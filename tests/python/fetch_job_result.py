"""Fetches a job's full result with a Python grpcio client on default
settings (4 MB receive limit): GetJob first (the result is too large to come
inline, so only its size does), then every page of GetJobResult.

Usage: fetch_job_result.py HOST:PORT JOB_ID
The API key is read from SPARES_API_KEY (sent as `x-api-key` metadata).
Prints one JSON line: total bytes, pages, and the result's top-level keys.
No generated stubs: the two small requests and the replies are encoded and
decoded here (protobuf wire format), so grpcio is the only dependency.
"""

import json
import os
import sys

import grpc


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def decode(message):
    """Field number -> last value (ints for varints, bytes for length-delimited)."""
    fields, i = {}, 0
    while i < len(message):
        key, i = read_varint(message, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], i = read_varint(message, i)
        elif wire == 2:
            length, i = read_varint(message, i)
            fields[number] = message[i : i + length]
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return fields


def read_varint(data, i):
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def main(address, job_id):
    channel = grpc.insecure_channel(address)  # default options: 4 MB receive limit
    key = os.environ.get("SPARES_API_KEY")
    metadata = (("x-api-key", key),) if key else None
    get_job = channel.unary_unary("/spares.v1.PlanningService/GetJob")
    job = decode(get_job(field_bytes(1, job_id.encode()), timeout=60, metadata=metadata))
    inline = len(job.get(11, b""))
    result_bytes = job.get(13, 0)
    get_page = channel.unary_unary("/spares.v1.PlanningService/GetJobResult")
    data, offset, pages, largest = bytearray(), 0, 0, 0
    while True:
        request = field_bytes(1, job_id.encode()) + field_varint(2, offset)
        reply = get_page(request, timeout=60, metadata=metadata)
        largest = max(largest, len(reply))
        page = decode(reply)
        chunk = page.get(3, b"")
        data += chunk
        pages += 1
        total, offset = page.get(4, 0), page.get(5, 0)
        if not chunk or offset >= total:
            break
    result = json.loads(data.decode("utf-8"))
    print(
        json.dumps(
            {
                "get_job_inline_bytes": inline,
                "get_job_result_bytes": result_bytes,
                "total_bytes": len(data),
                "pages": pages,
                "largest_message_bytes": largest,
                "keys": sorted(result.keys()),
                "grpcio": grpc.__version__,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
