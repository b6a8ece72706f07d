"""Creates the Airflow admin account, or sets its password, through FAB's security manager in this process.

Run as ``python -m fraudops.stack.airflow_admin USERNAME`` with the stack's Airflow configuration in the
environment and the password on stdin: unlike ``airflow users create --password``, the password never
appears on a command line, where any local user could read it in ``ps``.
"""

from __future__ import annotations

import sys

ROLE = "Admin"


def ensure_admin(username: str, password: str) -> str:
    """Create ``username`` with the Admin role, or reset its password (and add the role) if it exists.
    Returns what was done."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        role = sm.find_role(ROLE)
        if role is None:
            raise SystemExit(f"role {ROLE} is missing: has `airflow db migrate` run?")
        user = sm.find_user(username=username)
        if user is None:
            created = sm.add_user(username, "FraudOps", "Admin", f"{username}@fraudops.local", role, password)
            if not created:
                raise SystemExit(f"could not create the Airflow user {username!r}")
            return "created"
        if not sm.reset_password(user.id, password):
            raise SystemExit(f"could not set the password of the Airflow user {username!r}")
        if role not in user.roles:
            user.roles.append(role)
            sm.update_user(user)
        return "password set"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m fraudops.stack.airflow_admin USERNAME  (password on stdin)")
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise SystemExit("no password on stdin")
    print(f"Airflow admin {args[0]!r}: {ensure_admin(args[0], password)}")


if __name__ == "__main__":
    main()
