"""The live dashboard: a web page on loopback for a running formation.

A client of the control socket like ``procrunner ps`` and ``events``, never a second owner
of state: ``link`` follows the socket, ``picture`` keeps what the page shows, ``guard`` and
``httpd`` answer HTTP, and ``server`` ties them together. ``command`` registers
``procrunner dashboard`` and stays light, since the CLI imports it for every command.
"""
