"""gcircusctl: drive an arbiter from the command line (Circus's circusctl).

    gcircusctl [options] command [args]

Exit codes: 0 success, 3 the arbiter answered with an error, 1 timeout or
client error, 2 usage error, 4 `health` answered "unhealthy". Without a
command, an interactive shell.
Unlike circusctl, `--json` also exits 3 on an error reply, `rm` sends its
flags, `set ... env A=1,B=2` works and `status <unknown>` says why.
"""
import argparse
import cmd
import json
import os
import shlex
import signal
import sys

from gcircus import DEFAULT_ENDPOINT, DEFAULT_PUBSUB, __version__
from gcircus.client import CircusClient, CircusConsumer
from gcircus.commands import get_command, get_commands
from gcircus.exc import CallError

PROG = "gcircusctl"
EXIT_OK, EXIT_CLIENT_ERROR, EXIT_USAGE, EXIT_ERROR_REPLY = 0, 1, 2, 3
TIMEOUT_HINT = """\
The arbiter did not answer within the timeout. Is it running, and listening
on this endpoint? Long operations (--waiting, graceful stops) need a larger
--timeout."""


class UsageError(Exception):
    """A command line that cannot be turned into a request (exit 2)."""


def _global_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, usage="%(prog)s [options] command [args]", add_help=False,
        description="Controls a gcircus (or Circus) daemon",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_commands_listing())
    parser.add_argument("--endpoint", help="connection endpoint (default: $CIRCUSCTL_ENDPOINT or %s)"
                        % DEFAULT_ENDPOINT)
    parser.add_argument("--timeout", type=float, default=5.0, help="connection timeout in seconds")
    parser.add_argument("--json", action="store_true", help="output to JSON")
    parser.add_argument("--prettify", action="store_true", help="prettify the JSON output")
    parser.add_argument("--ssh", help="SSH server in the format user@host:port")
    parser.add_argument("--ssh_keyfile", help="the path to the keyfile to authorise the user")
    parser.add_argument("--curve-server-key", default=os.environ.get("GCIRCUSCTL_CURVE_SERVER_KEY"),
                        help="the arbiter's CurveZMQ public key (Z85 or certificate file)")
    parser.add_argument("--curve-client-key", default=os.environ.get("GCIRCUSCTL_CURVE_CLIENT_KEY"),
                        help="this client's CurveZMQ secret certificate file")
    parser.add_argument("--help", nargs="?", const=True, metavar="COMMAND", help="show help and exit")
    parser.add_argument("--version", action="store_true", help="display version and exit")
    parser.add_argument("command", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _commands_listing():
    lines = ["Commands:"]
    for name, command in sorted(get_commands().items()):
        lines.append("  %-22s%s" % (name, command.summary))
    return "\n".join(lines)


def command_parser(command):
    """The argparse parser of one command's arguments."""
    parser = argparse.ArgumentParser(prog="%s %s" % (PROG, command.name), description=command.summary)
    command.add_arguments(parser)
    return parser


def build_message(command, words):
    """The request for a command and its words; UsageError when they do not parse."""
    parser = command_parser(command)
    try:
        args = parser.parse_args(words)
    except SystemExit as exit_:
        if exit_.code == 0:      # <command> --help: printed already
            raise
        raise UsageError("") from None
    try:
        return command.message(args), args
    except ValueError as error:
        parser.print_usage(sys.stderr)
        raise UsageError("%s: error: %s" % (parser.prog, error)) from None


class Controller:
    """Sends requests for the CLI and the shell, and prints their replies."""

    def __init__(self, options, out=sys.stdout, err=sys.stderr):
        self.options = options
        self.out, self.err = out, err
        self.endpoint = (options.endpoint or os.environ.get("GCIRCUSCTL_ENDPOINT")
                         or os.environ.get("CIRCUSCTL_ENDPOINT") or DEFAULT_ENDPOINT)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = CircusClient(endpoint=self.endpoint, timeout=self.options.timeout,
                                        ssh_server=self.options.ssh, ssh_keyfile=self.options.ssh_keyfile,
                                        curve_server_key=self.options.curve_server_key,
                                        curve_client_key=self.options.curve_client_key, green=False)
        return self._client

    def run(self, name, words):
        """Run one command line; returns the exit code."""
        command = get_command(name.lower())
        if command is None:
            raise UsageError("%s: error: unknown command: %s" % (PROG, name))
        message, args = build_message(command, words)
        if command.name == "listen":
            return self.listen(args.topics)
        try:
            reply = self.client.call(message)
        except CallError as error:
            print(str(error), file=self.err)
            if str(error) == "Timed out.":
                print(TIMEOUT_HINT, file=self.err)
            return EXIT_CLIENT_ERROR
        return self.print_reply(command, reply)

    def print_reply(self, command, reply):
        failed = not isinstance(reply, dict) or reply.get("status") == "error"
        if self.options.json:
            if self.options.prettify:
                print(json.dumps(reply, indent=2, sort_keys=True), file=self.out)
            else:
                print(json.dumps(reply), file=self.out)
        elif failed:
            print("error: %s" % (reply.get("reason") if isinstance(reply, dict) else reply), file=self.err)
        else:
            print(command.console(reply), file=self.out)
        return EXIT_ERROR_REPLY if failed else command.exit_status(reply)

    def listen(self, topics):
        """Print events until interrupted (SIGINT or SIGTERM): b'<topic>': b'<body>' per line."""
        endpoint = self.options.endpoint or DEFAULT_PUBSUB
        consumer = CircusConsumer(topics or None, endpoint=endpoint, ssh_server=self.options.ssh,
                                  ssh_keyfile=self.options.ssh_keyfile,
                                  curve_server_key=self.options.curve_server_key,
                                  curve_client_key=self.options.curve_client_key, green=False)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            for topic, body in consumer:
                print("%r: %r" % (topic, body), file=self.out, flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            consumer.stop()
        return EXIT_OK

    def close(self):
        if self._client is not None:
            self._client.stop()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Shell(cmd.Cmd):
    """The interactive shell: one verb per command, plus help and EOF."""

    prompt = "(%s) " % PROG

    def __init__(self, controller, **kw):
        super().__init__(**kw)
        self.controller = controller

    def preloop(self):
        print("%s %s" % (PROG, __version__), file=self.stdout)
        self.onecmd("status")

    def emptyline(self):
        return False

    def default(self, line):
        print("*** unknown command: %s" % line.split()[0], file=self.stdout)

    def do_EOF(self, line):
        """Leave the shell (Ctrl-D)."""
        print(file=self.stdout)
        return True

    def run_command(self, name, line):
        try:
            words = shlex.split(line)
            self.controller.run(name, words)
        except UsageError as error:
            if str(error):
                print(error, file=self.controller.err)
        except SystemExit:
            pass   # `<command> --help` inside the shell
        except ValueError as error:
            print("error: %s" % error, file=self.controller.err)


def _install_shell_verbs():
    for name, command in get_commands().items():
        def do(self, line, _name=name):
            self.run_command(_name, line)
        do.__doc__ = command.summary

        def help_(self, _command=command):
            print(_command.reference, file=self.stdout)
        setattr(Shell, "do_" + name, do)
        setattr(Shell, "help_" + name, help_)


_install_shell_verbs()


def main(argv=None):
    """Entry point of the gcircusctl console script; exits with the status code."""
    sys.exit(run(sys.argv[1:] if argv is None else argv))


def run(argv, out=None, err=None):
    out, err = out or sys.stdout, err or sys.stderr
    parser = _global_parser()
    try:
        options = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code
    if options.version:
        print("%s %s" % (PROG, __version__), file=out)
        return EXIT_OK
    if options.help is not None:
        return _print_help(parser, options, out, err)
    controller = Controller(options, out, err)
    try:
        if options.command is None:
            Shell(controller, stdout=out).cmdloop()
            return EXIT_OK
        return controller.run(options.command, options.args)
    except UsageError as error:
        if str(error):
            parser.print_usage(err)
            print(error, file=err)
        return EXIT_USAGE
    except SystemExit as exit_:
        return exit_.code
    finally:
        controller.close()


def _print_help(parser, options, out, err):
    # `--help` alone, or `--help <command>` (argparse put the command name in options.help)
    if options.help is True and options.command is None:
        parser.print_help(out)
        return EXIT_OK
    name = options.help if options.help is not True else options.command
    command = get_command(name.lower())
    if command is None:
        print("%s: error: unknown command: %s" % (PROG, name), file=err)
        return EXIT_USAGE
    print(command.summary, file=out)
    print("=" * len(command.summary), file=out)
    print(file=out)
    print(command.reference, file=out)
    return EXIT_OK


if __name__ == "__main__":
    main()
