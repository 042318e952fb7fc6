"""Human output shared by get, options and globaloptions: `key: value` lines."""


def format_value(value):
    if value is None:
        return ""
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return ",".join("%s=%s" % (k, v) for k, v in sorted(value.items()))
    if isinstance(value, bool):
        return str(value)
    return str(value)


def format_options(reply):
    if reply.get("status") == "error":
        return "error: %s" % reply.get("reason")
    options = reply.get("options") or {}
    # In the reply's order: `options` sends them sorted, `get` in the order asked for.
    return "\n".join("%s: %s" % (key, format_value(value)) for key, value in options.items())
