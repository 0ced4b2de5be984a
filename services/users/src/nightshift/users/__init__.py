"""The users service: accounts, tokens and sessions, statistics, the welcome flow."""
