"""An HTTP worker serving on a listening socket inherited from gcircus (--fd N).

Every worker of the watcher accepts from the same socket. SIGTERM is noticed
through a wakeup pipe between requests, so the request in flight always
finishes and a graceful reload drops nothing.
"""
import argparse
import os
import select
import signal
import socket


def respond(conn):
    conn.recv(65536)
    body = ("hello from worker %d\n" % os.getpid()).encode()
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)


def serve(listener, wakeup):
    while True:
        ready, _, _ = select.select([listener, wakeup], [], [])
        if wakeup in ready:
            return  # SIGTERM: stop accepting; queued connections go to the other workers
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            continue  # another worker took this connection
        with conn:
            conn.setblocking(True)
            respond(conn)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args()
    wakeup, notify = os.pipe()
    os.set_blocking(notify, False)
    signal.set_wakeup_fd(notify)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    listener = socket.socket(fileno=args.fd)
    listener.setblocking(False)
    serve(listener, wakeup)


if __name__ == "__main__":
    main()
