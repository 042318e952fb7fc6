"""gcircus-top: live per-watcher PID / CPU / MEMORY / AGE and socket hits from a
stats endpoint (circus-top's options; the logic lives in gcircus.stats.top)."""
import argparse
import sys

from gcircus import DEFAULT_STATS, __version__


def build_parser():
    parser = argparse.ArgumentParser(prog="gcircus-top", description="Runs gcircus top")
    parser.add_argument("--endpoint", default=DEFAULT_STATS,
                        help="the stats endpoint to read (default %(default)s)")
    parser.add_argument("--ssh", default=None, help="SSH server to tunnel through (user@host:port)")
    parser.add_argument("--process-timeout", type=float, default=3,
                        help="forget a process after this many seconds without news (default 3)")
    parser.add_argument("--refresh", type=float, default=1.0, help="seconds between repaints (default 1)")
    parser.add_argument("--iterations", "-n", type=int, default=None,
                        help="stop after this many repaints (default: until q or Ctrl-C)")
    parser.add_argument("--plain", action="store_true",
                        help="print plain text snapshots (the default when stdout is not a terminal)")
    parser.add_argument("--curve-server-key", default=None,
                        help="the daemon's public CurveZMQ key (Z85 or certificate file)")
    parser.add_argument("--curve-client-key", default=None, help="this client's secret certificate file")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.version:
        print(__version__)
        return 0
    from gcircus.stats.top import CursesScreen, PlainScreen, StatsClient, TopBoard, run_top
    client = StatsClient(args.endpoint, ssh_server=args.ssh, green=False,
                         curve_server_key=args.curve_server_key, curve_client_key=args.curve_client_key)
    board = TopBoard(args.process_timeout)
    live = not args.plain and sys.stdout.isatty() and sys.stdin.isatty()
    screen = CursesScreen() if live else PlainScreen(sys.stdout)
    try:
        # plain snapshots wait for one full round of stats; the live screen says it waits
        run_top(client, screen, board, args.refresh, args.iterations,
                key_fd=sys.stdin.fileno() if live else None,
                first_paint=0.0 if live else args.refresh + 0.5)
    except KeyboardInterrupt:
        pass
    finally:
        screen.close()
        client.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
