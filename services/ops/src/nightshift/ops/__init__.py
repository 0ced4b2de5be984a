"""Operators' dashboard, JSON API, inspect/control commands and backlog metrics of the platform."""
