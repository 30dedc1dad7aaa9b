#!/usr/bin/env python
"""Generate a new Alembic migration from the difference between the schema and the
migrations so far:  python scripts/make_migration.py "message"."""

import sys
import tempfile
from pathlib import Path

from alembic import command

from vigil.store.db import alembic_config, make_engine, upgrade


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "schema change"
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'm.db'}")
        upgrade(engine)
        cfg = alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=message, autogenerate=True,
                             rev_id=f"{len(list((Path(__file__).parents[1] / 'src/vigil/store/migrations/versions').glob('0*.py'))) + 1:04d}")


if __name__ == "__main__":
    main()
