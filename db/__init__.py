"""The SQL store: SQLAlchemy 2.0 models, engine, repository functions, Alembic migrations."""
