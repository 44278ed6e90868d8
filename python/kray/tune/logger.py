# SPDX-License-Identifier: Apache-2.0
"""tune.logger.pretty_print: a result dict as indented YAML-like text (Ray's)."""


def _fmt(v):
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _lines(d, indent):
    out = []
    for k in sorted(d, key=str):
        v = d[k]
        if k == "config":
            continue
        if isinstance(v, dict):
            if not v:
                out.append(" " * indent + f"{k}: {{}}")
                continue
            out.append(" " * indent + f"{k}:")
            out.extend(_lines(v, indent + 2))
        elif isinstance(v, (list, tuple)) and len(v) > 8:
            out.append(" " * indent + f"{k}: [{', '.join(_fmt(x) for x in v[:8])}, ...]")
        elif v is not None:
            out.append(" " * indent + f"{k}: {_fmt(v)}")
    return out


def pretty_print(result, exclude=None):
    """The result without its config, one key per line, nested dicts indented."""
    d = {k: v for k, v in result.items() if not exclude or k not in exclude}
    return "\n".join(_lines(d, 0)) + "\n"
