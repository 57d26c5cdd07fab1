"""Base policies that run elsewhere: a websocket server and client speaking openpi's protocol
(``bench serve``, ``remote:ws://...``, ``octo``) and a client of OpenVLA's REST server
(``openvla-rest:http://...``). See ``docs/remote_policies.md``."""

from __future__ import annotations


def server_url(name: str, prefix: str, schemes: tuple[str, ...]) -> str:
    """The URL of a server base named ``prefix`` + URL, checked against ``schemes``.

    Raises:
        ValueError: no URL, or one of another scheme.
    """
    url = name[len(prefix) :]
    if not url.startswith(schemes) or len(url) <= len(url.split("//")[0]) + 2:
        raise ValueError(f"base {name!r}: expected {prefix}{schemes[0]}HOST:PORT, got URL {url!r}")
    return url
