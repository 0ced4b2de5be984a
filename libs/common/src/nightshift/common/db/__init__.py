"""PostgreSQL through SQLAlchemy 2.0 and psycopg 3."""
