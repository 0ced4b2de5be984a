"""The notifications service: templated email through a pluggable provider, with a delivery log."""
