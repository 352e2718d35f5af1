"""Run a Python script (manage.py or a bench script) in this process, counting its SQL queries.

python bench/querycount.py OUT.json SCRIPT [ARGS...]   writes {"queries": N} to OUT.json
"""

import atexit
import json
import runpy
import sys
from pathlib import Path

from django.db.backends.signals import connection_created


def main() -> None:
    out, script, *args = sys.argv[1:]
    count = [0]

    def counter(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    def install(sender, connection, **kwargs):
        if counter not in connection.execute_wrappers:
            connection.execute_wrappers.append(counter)

    connection_created.connect(install, weak=False)

    def save() -> None:
        with open(out, "w") as f:
            json.dump({"queries": count[0]}, f)

    atexit.register(save)
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
