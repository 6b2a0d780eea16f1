"""Refuse a stack whose ``deployer`` submitter is not fixed to one object id, before a CI
preview runs Pulumi as the CI identity (blueprints/deployer.py says why).

    python scripts/check_deployer.py stacks/Pulumi.<stack>.yaml

Exit code: 0 stable (a fixed ``deployerPrincipalId``, or no ``deployer`` submitter), 2 with
one line naming the fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blueprints.deployer import unstable_deployer  # noqa: E402
from blueprints.spec import load_stack_file  # noqa: E402
from blueprints.spec_base import ConfigError  # noqa: E402
from fl_jobs.cli.cli_errors import OneLineArgumentParser, bad_input  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack_file", type=Path, help="stacks/Pulumi.<stack>.yaml")
    args = parser.parse_args(argv)
    try:
        spec = load_stack_file(args.stack_file)
    except ConfigError as exc:
        bad_input(str(exc).split(". Fix: ", 1)[0], exc.fix)
    except OSError as exc:
        bad_input(f"cannot read {args.stack_file} ({exc.strerror})", "pass a stack file")
    problem = unstable_deployer(spec)
    if problem is not None:
        what, fix = problem.split(" - ", 1)
        bad_input(f"{args.stack_file}: {what}", fix)
    print(f"{args.stack_file}: deployer is {spec.deployer_principal_id or 'not a submitter'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
