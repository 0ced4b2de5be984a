"""The posts service: hashtags, search, trending, engagement, content analytics and old-post cleanup."""
