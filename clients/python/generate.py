"""Generates the client with openapi-python-client, as `openapi-python-client generate` does,
but counts the generator's warnings and errors instead of only printing them.

    python generate.py OPENAPI_JSON CONFIG_YAML OUTPUT_DIR

Prints every warning and `generator warnings: N`; exits 1 on any warning or error.
"""

from __future__ import annotations

import sys
from pathlib import Path

from openapi_python_client import generate
from openapi_python_client.config import Config, ConfigFile, MetaType
from openapi_python_client.parser.errors import ErrorLevel


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: generate.py OPENAPI_JSON CONFIG_YAML OUTPUT_DIR", file=sys.stderr)
        return 2
    document, config_file, output = Path(argv[1]), Path(argv[2]), Path(argv[3])
    config = Config.from_sources(
        ConfigFile.load_from_path(config_file),
        MetaType.POETRY,
        document_source=document,
        file_encoding="utf-8",
        overwrite=True,
        output_path=output,
    )
    problems = generate(config=config)
    errors = [p for p in problems if p.level == ErrorLevel.ERROR]
    for problem in problems:
        print(f"{problem.level.name.lower()}: {problem.header}", file=sys.stderr)
        if problem.detail:
            print(f"    {problem.detail}", file=sys.stderr)
    print(f"generator warnings: {len(problems) - len(errors)}, errors: {len(errors)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
