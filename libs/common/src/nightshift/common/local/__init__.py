"""Running the platform on one machine without containers."""
