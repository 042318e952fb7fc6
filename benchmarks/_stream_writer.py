"""The child of bench_stream: writes N MiB of reproducible data to stdout (or to a file), as fast as it can.

usage: _stream_writer.py --mb N --seed S --ready PATH --go FIFO --report PATH [--out PATH] [--write-size B]
                         [--data text|binary]

1. builds the data in memory (seeded, so every run and contender gets the same bytes) and its sha256;
2. writes its pid to --ready (atomically) and waits for one byte on the --go FIFO, so neither building the data
   nor the daemon's start-up is in the measured time;
3. writes the data in --write-size writes (default 64 KiB) to fd 1, or to --out when given (the direct reference);
4. writes {"bytes", "sha256", "seconds"} to --report and exits.

'text' data is random printable ASCII with a newline every 85 bytes on average (like a log); 'binary' is raw
random bytes (not valid UTF-8: it shows which supervisors keep bytes as they are).
"""
import argparse
import hashlib
import json
import os
import random
import string
import time

_PRINTABLE = (string.ascii_letters + string.digits + "+/").encode()


def build(mb, seed, kind):
    generator = random.Random(seed)
    data = b"".join(generator.randbytes(1 << 20) for _ in range(mb))  # randbytes() takes < 256 MiB at once
    if kind == "binary":
        return data
    table = bytes(b"\n"[0] if value < 3 else _PRINTABLE[value % len(_PRINTABLE)] for value in range(256))
    return data.translate(table)


def write_atomically(path, text):
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", choices=("text", "binary"), default="text")
    parser.add_argument("--write-size", type=int, default=64 * 1024)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--go", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--out")
    args = parser.parse_args()

    data = build(args.mb, args.seed, args.data)
    digest = hashlib.sha256(data).hexdigest()
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if args.out else 1
    write_atomically(args.ready, str(os.getpid()))
    with open(args.go, "rb") as go:
        go.read(1)
    started = time.monotonic()
    view = memoryview(data)
    size = args.write_size
    while view:
        view = view[os.write(fd, view[:size]):]
    if args.out:
        os.close(fd)
    write_atomically(args.report, json.dumps({"bytes": len(data), "sha256": digest,
                                              "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main()
