"""Who may use the dashboard, the API and /metrics, and from which page.

Credentials (all optional; with none set, the server relies on binding to loopback):

- ``httpd_token`` (or ``httpd_token_file``, whose first line is the token): sent as ``Authorization: Bearer T``,
  as the password of HTTP basic auth (any user name: the browser's own prompt works), or once in the page's
  address (``/?token=T``), which sets an HttpOnly, SameSite=Strict cookie holding a value derived from the token.
- ``httpd_user`` + ``httpd_password``: HTTP basic auth with exactly these.
- ``httpd_metrics_token``: accepted on GET /metrics only (a Prometheus scraper needs nothing more).

Besides credentials, every request is checked for where it comes from: a state-changing request (POST) whose
``Origin``, ``Referer`` or ``Sec-Fetch-Site`` says it was sent by another site's page is refused, so a page open
in the operator's browser cannot press the dashboard's buttons; and while the server listens on loopback only, a
``Host`` that is not a loopback name is refused, so a DNS-rebound name cannot reach it from a browser either.
"""
import base64
import binascii
import hashlib
import hmac
import ipaddress
from http.cookies import SimpleCookie

COOKIE = "gcircus_session"
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


class AuthConfigError(ValueError):
    """The [circus] httpd_* credentials cannot be used (unreadable token file, user without password...)."""


def _read_token_file(path):
    try:
        with open(path) as handle:
            token = handle.readline().strip()
    except OSError as error:
        raise AuthConfigError("httpd_token_file %s cannot be read: %s" % (path, error.strerror)) from None
    if not token:
        raise AuthConfigError("httpd_token_file %s holds no token (its first line is empty)" % path)
    return token


class Auth:
    """The credentials in force; check() tells whether a request carries one of them."""

    def __init__(self, token=None, metrics_token=None, user=None, password=None):
        self.token = token or None
        self.metrics_token = metrics_token or None
        self.user = user or None
        self.password = password or None
        if (self.user is None) != (self.password is None):
            raise AuthConfigError("httpd_user and httpd_password go together: set both or neither")
        self.session = None
        if self.token is not None:
            self.session = hmac.new(self.token.encode(), b"gcircus-dashboard-session", hashlib.sha256).hexdigest()

    @classmethod
    def from_options(cls, options):
        """From the arbiter's options (httpd_token, httpd_token_file, httpd_metrics_token, httpd_user,
        httpd_password); AuthConfigError names what is wrong."""
        token = options.get("httpd_token")
        path = options.get("httpd_token_file")
        if token and path:
            raise AuthConfigError("set httpd_token or httpd_token_file, not both")
        if path:
            token = _read_token_file(path)
        return cls(token, options.get("httpd_metrics_token"), options.get("httpd_user"),
                   options.get("httpd_password"))

    @property
    def required(self):
        return self.token is not None or self.user is not None

    def allows(self, environ, metrics=False):
        """True if the request may go on: no credential required, or it carries a valid one."""
        if metrics and self.metrics_token is not None:
            if _same(_bearer(environ), self.metrics_token) or _same(_basic(environ)[1], self.metrics_token):
                return True
            if not self.required:
                return False    # a metrics token alone guards /metrics only, and it was not given
        if not self.required:
            return True
        if self.token is not None:
            if _same(_bearer(environ), self.token) or _same(_basic(environ)[1], self.token):
                return True
            if _same(_cookie(environ), self.session):
                return True
        if self.user is not None:
            user, password = _basic(environ)
            if _same(user, self.user) & _same(password, self.password):
                return True
        return False

    def login_cookie(self, token):
        """The Set-Cookie value for a page opened with ?token=T, or None if T is wrong."""
        if self.token is None or not _same(token, self.token):
            return None
        return "%s=%s; HttpOnly; SameSite=Strict; Path=/" % (COOKIE, self.session)


def _same(given, expected):
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


def _bearer(environ):
    header = environ.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def _basic(environ):
    header = environ.get("HTTP_AUTHORIZATION", "")
    if header[:6].lower() != "basic ":
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (None, None)


def _cookie(environ):
    cookies = SimpleCookie()
    try:
        cookies.load(environ.get("HTTP_COOKIE", ""))
    except Exception:   # a malformed Cookie header is the client's problem: treat it as absent
        return None
    morsel = cookies.get(COOKIE)
    return morsel.value if morsel is not None else None


# -- where a request comes from ------------------------------------------------------------------------------------

def is_loopback(host):
    host = host.strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host_header):
    """'example:8080' -> 'example'; '[::1]:8080' -> '::1'."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def foreign_host(environ, bound_host):
    """A reason to refuse the request's Host header, or None: on a loopback-only server only loopback names."""
    if not is_loopback(bound_host):
        return None
    host = host_name(environ.get("HTTP_HOST", ""))
    if not host or is_loopback(host) or host.lower() == bound_host.lower():
        return None
    return "unexpected Host header %r: this server only answers to loopback names" % host


def cross_site(environ):
    """A reason to refuse a state-changing request sent by another site's page, or None."""
    if environ.get("HTTP_SEC_FETCH_SITE", "") in ("cross-site", "same-site"):
        return "cross-site request refused (Sec-Fetch-Site: %s)" % environ["HTTP_SEC_FETCH_SITE"]
    host = environ.get("HTTP_HOST", "")
    allowed = ("http://" + host, "https://" + host)
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None:
        if origin not in allowed:
            return "cross-site request refused (Origin %s)" % origin
        return None
    referer = environ.get("HTTP_REFERER")
    if referer is not None and not any(referer == base or referer.startswith(base + "/") for base in allowed):
        return "cross-site request refused (Referer %s)" % referer
    return None     # no browser header at all: a script or curl, which no other site can drive
