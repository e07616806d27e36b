"""Import the dashboards bundle and set up the viewers and row-level security, inside Superset.

Run with `.venv-bi/bin/python` (by `hrss bi start`, or by the compose service) after `superset db
upgrade` and `superset init`. Idempotent: every run overwrites the bundle's objects with the files
of bi/superset/ and sets the roles, users and RLS rules to what is written here.

Environment: HRSS_SUPERSET_BUNDLE (the bundle folder), HRSS_BI_READER_DSN (the marts' DSN as
`bi_reader`, injected into the database file so that no password is in the repository),
HRSS_SUPERSET_ADMIN_PASSWORD and HRSS_SUPERSET_<VIEWER>_PASSWORD for the logins.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

DATABASE_FILE = "databases/hrss_marts.yaml"
# Provincial viewers: role and login -> the 6-digit province code their rows must carry. Every
# dataset of the bundle has a `province_code` column, so one clause covers them all.
PROVINCIAL_VIEWERS = {"hubei_viewer": "420000"}
NATIONAL_VIEWER = "national_viewer"


def bundle_contents(folder: Path, dsn: str) -> dict[str, str]:
    contents = {path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
                for path in sorted(folder.rglob("*.yaml"))}
    database = yaml.safe_load(contents[DATABASE_FILE])
    database["sqlalchemy_uri"] = dsn.replace("postgresql://", "postgresql+psycopg2://", 1)
    contents[DATABASE_FILE] = yaml.safe_dump(database, allow_unicode=True)
    return contents


def import_bundle(contents: dict[str, str]) -> None:
    from flask import g
    from superset import security_manager
    from superset.commands.importers.v1.assets import ImportAssetsCommand

    g.user = security_manager.find_user(username="admin")  # the owner of what is imported
    # The assets import overwrites every database, dataset, chart and dashboard of the bundle (the
    # dashboards' import keeps existing datasets and charts as they are).
    ImportAssetsCommand(contents).run()


def ensure_user(username: str, role_names: list[str], password: str) -> None:
    from superset import db, security_manager

    roles = [security_manager.find_role(name) for name in role_names]
    user = security_manager.find_user(username=username)
    if user is None:
        security_manager.add_user(username, username, "HRSS", f"{username}@hrss.invalid", roles,
                                  password=password)
    else:
        user.roles = roles
        db.session.commit()
        security_manager.reset_password(user.id, password)


def set_up_viewers(dataset_uuids: list[str]) -> None:
    """Gamma's rights plus the bundle's datasets; one RLS rule per province."""
    from superset import db, security_manager
    from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable

    datasets = db.session.query(SqlaTable).filter(SqlaTable.uuid.in_(dataset_uuids)).all()
    for role_name in [*PROVINCIAL_VIEWERS, NATIONAL_VIEWER]:
        security_manager.copy_role("Gamma", role_name, merge=False)
        role = security_manager.find_role(role_name)
        for dataset in datasets:
            view = security_manager.add_permission_view_menu("datasource_access", dataset.perm)
            security_manager.add_permission_role(role, view)
    for role_name, province_code in PROVINCIAL_VIEWERS.items():
        rule_name = f"{role_name}: province {province_code}"
        rule = db.session.query(RowLevelSecurityFilter).filter_by(name=rule_name).one_or_none()
        if rule is None:
            rule = RowLevelSecurityFilter(name=rule_name)
            db.session.add(rule)
        rule.description = "A provincial viewer sees its province's rows only, in every dataset."
        rule.filter_type = "Regular"
        rule.group_key = "province"
        rule.clause = f"province_code = '{province_code}'"
        rule.roles = [security_manager.find_role(role_name)]
        rule.tables = datasets
    db.session.commit()


def main() -> None:
    from superset.app import create_app

    folder = Path(os.environ["HRSS_SUPERSET_BUNDLE"])
    contents = bundle_contents(folder, os.environ["HRSS_BI_READER_DSN"])
    dataset_uuids = [yaml.safe_load(text)["uuid"] for name, text in contents.items()
                     if name.startswith("datasets/")]
    app = create_app()
    with app.app_context():
        ensure_user("admin", ["Admin"], os.environ["HRSS_SUPERSET_ADMIN_PASSWORD"])
        import_bundle(contents)
        set_up_viewers(dataset_uuids)
        for username in [*PROVINCIAL_VIEWERS, NATIONAL_VIEWER]:
            ensure_user(username, [username], os.environ[f"HRSS_SUPERSET_{username.upper()}_PASSWORD"])
    viewers = ", ".join([*PROVINCIAL_VIEWERS, NATIONAL_VIEWER])
    print(f"imported {len(contents)} files of {folder}; viewers: {viewers}")


if __name__ == "__main__":
    main()
