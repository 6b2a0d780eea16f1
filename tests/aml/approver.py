"""A real approval command for the tests: ``python approver.py MODE RECORD_FILE``.

Reads the request on stdin, saves it to RECORD_FILE, and answers according to MODE:
approve | refuse | fail (exit 3) | garbage (not JSON) | sleep (never answers in time).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> int:
    mode, record = sys.argv[1], Path(sys.argv[2])
    request = json.loads(sys.stdin.read())
    record.write_text(json.dumps(request))
    if mode == "approve":
        print(json.dumps({"approved": True, "reason": f"ok for {request['job_name']}"}))
    elif mode == "refuse":
        print(json.dumps({"approved": False, "reason": "compute not allowed on weekends"}))
    elif mode == "fail":
        print("policy store unavailable", file=sys.stderr)
        return 3
    elif mode == "garbage":
        print("yes please")
    elif mode == "sleep":
        time.sleep(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
