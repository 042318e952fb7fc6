"""The built-in web dashboard, JSON API and Prometheus /metrics, served by the arbiter's own hub (gevent.pywsgi).

Modules: ``server`` (the service and its routes), ``api`` (JSON views and actions through the wire commands),
``live`` (events, output and CPU/memory samples as the pages see them), ``sse`` (per-client capped event streams),
``metrics`` (the Prometheus text format), ``auth`` (credentials and cross-site checks); ``static/`` holds the
page (plain HTML, CSS and JavaScript, no build step).
"""
from gcircus.httpd.server import HttpServer

__all__ = ["HttpServer"]
