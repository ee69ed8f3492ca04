#!/usr/bin/env bash
# The seed's drill Job start, as its manifest runs it (seed 004: `pip install kubernetes pyyaml
# aiohttp requests && python /scripts/network-partition.py`): pip install into the fresh venv $1
# with no cache (a new pod has none, and no local wheel directory either), then the modules such a
# script imports, then its first HTTP request, to BENCH_URL. Timed by scripts/bench/first-request.py.
set -euo pipefail
venv=$1
env -u PIP_FIND_LINKS "$venv/bin/pip" install --no-cache-dir --quiet kubernetes pyyaml aiohttp requests
exec "$venv/bin/python" -c '
import asyncio, json, logging, os, time
import aiohttp, requests, yaml
from kubernetes import client, config
requests.get(os.environ["BENCH_URL"], timeout=10)
'
