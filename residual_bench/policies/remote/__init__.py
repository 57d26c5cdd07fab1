"""Base policies that run elsewhere: a websocket server and client speaking openpi's protocol
(``bench serve``, ``remote:ws://...``, ``octo``) and a client of OpenVLA's REST server
(``openvla-rest:http://...``). See ``docs/remote_policies.md``."""
