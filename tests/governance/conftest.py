from tests.store.conftest import admin, vigil  # noqa: F401  (shared fixtures)
