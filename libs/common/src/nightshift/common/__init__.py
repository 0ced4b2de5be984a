"""Nightshift's shared library: what every service builds on."""
