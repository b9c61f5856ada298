"""Print how long each notebook took to execute in the last build, and the total.

Reads the execution cache that Jupyter Book keeps in _build/.jupyter_cache and
writes the same table to _build/exec_times.json.
"""
import json
import sys
from pathlib import Path

from jupyter_cache import get_cache

build = Path(sys.argv[1] if len(sys.argv) > 1 else "_build")
cache = get_cache(build / ".jupyter_cache")
root = Path.cwd().resolve()
times = {}
for record in cache.list_cache_records():
    seconds = record.data.get("execution_seconds")
    if seconds is not None:
        uri = Path(record.uri)
        times[str(uri.relative_to(root)) if uri.is_relative_to(root) else record.uri] = seconds
if not times:
    print("no executed notebooks in", build / ".jupyter_cache")
    sys.exit(0)
width = max(map(len, times))
print("\nexecution time per notebook (last build):")
for name, seconds in sorted(times.items()):
    print(f"  {name:<{width}}  {seconds:7.1f} s")
print(f"  {'total':<{width}}  {sum(times.values()):7.1f} s")
(build / "exec_times.json").write_text(json.dumps(
    {"per_notebook_seconds": times, "total_seconds": sum(times.values())}, indent=1))
