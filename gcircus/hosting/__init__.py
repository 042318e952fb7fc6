"""How one gcircusd fits the engine that runs it: systemd's notify protocol and watchdog
(notify), the child subreaper role of a container's PID 1 (subreaper), the health
answer probes ask for (health), and the Host that gcircusd wires them through (host).

Sockets systemd passes in (LISTEN_FDS) are the sockets package's business
(gcircus.sockets.activation): a [socket:NAME] adopts them where it would bind.
"""
