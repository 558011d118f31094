"""Reading stage outputs back in tests."""

from difffake_ray import schema, storage


def read_scores(uri: str):
    """A score output folder as one Arrow table."""
    return storage.read_parquet_dir(uri, schema=schema.SCORES_SCHEMA)
