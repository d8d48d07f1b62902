#!/usr/bin/env python3
"""tests/emulator/server.py with one benchmark-only change to moto: an indexed tag
lookup. Same arguments and the same `FLEETOPS_EMULATOR_READY <url>` line.

moto 5.2.5 finds a resource's tags by scanning every tag of the account with a
regex (`TaggedEC2Resource.get_tags` -> `describe_tags(resource-id filter)`), and
does so for every instance a DescribeInstances answer filters or renders. One
DescribeInstances call thus costs instances x tags: quadratic in the fleet
(10,000 instances with 4 tags each: minutes per page), and worst for a
server-side `tag-key` filter, which looks at every instance's tags on every
page. AWS indexes tags; so does this patch (same result: the resource's own
tags, same fields), which keeps the emulator's cost linear at 10,000.
`bench/run.py --stock-moto` runs the unpatched server instead.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "tests" / "emulator" / "server.py"


def index_tag_lookup() -> None:
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    def get_tags(self) -> list[dict[str, str]]:
        resource_id = getattr(self, "id", None)
        if not resource_id:
            return []
        tags = self.ec2_backend.tags.get(resource_id) or {}
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        return [{"resource_id": resource_id, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()]

    TaggedEC2Resource.get_tags = get_tags


if __name__ == "__main__":
    # server.py sets this before it imports moto; moto reads it at import time.
    os.environ.setdefault("MOTO_AMIS_PATH", str(SERVER.parent / "fleetops_emulator" / "amis.json"))
    index_tag_lookup()
    sys.argv = [str(SERVER)] + sys.argv[1:]
    runpy.run_path(str(SERVER), run_name="__main__")
