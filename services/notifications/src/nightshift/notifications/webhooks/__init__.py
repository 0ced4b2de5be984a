"""Outgoing webhooks: endpoints, Standard Webhooks signatures, SSRF-safe delivery with a breaker per endpoint."""
