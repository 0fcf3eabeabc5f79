#!/usr/bin/env python3
"""A registry of N deployments for benchmarks of `ps`: one entry file each, every state folder
present (a `state.yaml` of one line), as the registry (src/registry.rs) writes them.

    python3 scripts/fake-registry.py REGISTRY_DIR APPS_DIR N

REGISTRY_DIR is `$TFGRID_COMPOSE_DATA_DIR/deployments`; APPS_DIR gets one app folder per entry.
"""
import json
import os
import sys

reg, apps, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(reg)
for i in range(count):
    id = "%016x" % (0x3fa2000000000000 + i)
    state = os.path.join(apps, id, ".tfgrid-compose", "default")
    os.makedirs(state)
    open(os.path.join(state, "state.yaml"), "w").write("schema_version: 1\n")
    json.dump({"schema_version": 1, "id": id, "app": "app%d" % (i % 40), "env": "pr-%d" % i, "pattern": "single-vm",
               "status": "running", "primary_ip": "10.20.%d.%d" % (i // 250, i % 250 + 2),
               "app_dir": os.path.join(apps, id), "state_dir": state, "created_at": 1795000000 + i,
               "updated_at": 1795000000 + i}, open(os.path.join(reg, id + ".json"), "w"))
