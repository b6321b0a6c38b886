"""Prepares a fresh Stageflow server for the schemathesis run and writes its configuration.

usage: setup.py BASE_URL OPERATOR_PASSWORD OUT_DIR

Through the API only: the operator creates a plan, an account and a tenant with its first
admin (plus a spare tenant the operator run may delete); the tenant admin installs the ITIL
incident process, creates users, a group, an organization, a master, an API key, and tickets
(one resolved, so the knowledge base has a record the resolution wrote) with comments,
watchers, links and an attachment. The ids go into schemathesis dictionaries, so that path
parameters hit existing resources part of the time (the rest stays generated: 404s are
checked too). Writes OUT_DIR/admin.toml and OUT_DIR/operator.toml (tokens, dictionaries),
OUT_DIR/ids.json and OUT_DIR/protected-users (the tenant admin's own id, for hooks.py).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import requests

TENANT = "acme"
ADMIN_PASSWORD = "tenant-passphrase-1"
AGENT_PASSWORD = "agent-passphrase-1"


class Api:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.token: str | None = None

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        response = self.session.request(
            method, self.base + path, headers=headers, timeout=30, **kwargs
        )
        if response.status_code != expect:
            raise SystemExit(
                f"setup: {method} {path}: expected {expect}, got {response.status_code}: "
                f"{response.text[:500]}"
            )
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response

    def sign_in(self, username: str, password: str, tenant: str | None = None) -> "Api":
        body = {"username": username, "password": password}
        if tenant:
            body["tenant"] = tenant
        self.token = self.call("POST", "/api/v1/auth/token", 200, json=body)["access_token"]
        return self


def platform(base: str, operator_password: str) -> dict[str, list[str]]:
    op = Api(base).sign_in("operator", operator_password)
    plan = op.call(
        "POST",
        "/api/v1/plans",
        201,
        json={"name": "Standard", "max_tenants": 10, "max_processes": 50, "max_users": 200},
    )["id"]
    account = op.call(
        "POST", "/api/v1/accounts", 201, json={"name": "Example Corp.", "plan_id": plan}
    )["id"]
    tenants = []
    for slug, name in ((TENANT, "ACME"), ("spare", "Spare")):
        tenants.append(
            op.call(
                "POST",
                "/api/v1/tenants",
                201,
                json={
                    "account_id": account,
                    "slug": slug,
                    "name": name,
                    "time_zone": "Asia/Tokyo",
                    "admin": {"username": "admin", "password": ADMIN_PASSWORD},
                },
            )["id"]
        )
    return {"plan_id": [plan], "account_id": [account], "tenant_id": tenants}


def directory(admin: Api) -> dict[str, Any]:
    me = admin.call("GET", "/api/v1/me", 200)
    # The run's own identity also works tickets, so that the ticket operations are reached.
    admin.call("PATCH", f"/api/v1/users/{me['id']}", 200, json={"roles": ["tenant_admin", "agent"]})
    admin.call("POST", "/api/v1/catalog/itil_incident/install", 201, json={})
    users = []
    for name in ("alice", "bob", "carol"):
        users.append(
            admin.call(
                "POST",
                "/api/v1/users",
                201,
                json={
                    "username": name,
                    "display_name": name.title(),
                    "password": AGENT_PASSWORD,
                    "roles": ["agent"],
                },
            )["id"]
        )
    group = admin.call(
        "POST", "/api/v1/groups", 201, json={"name": "Service Desk", "description": "First line"}
    )["id"]
    for member in (me["id"], users[0]):
        admin.call("POST", f"/api/v1/groups/{group}/members", 201, json={"user_id": member})
    organization = admin.call(
        "POST", "/api/v1/organizations", 201, json={"name": "Partner K.K.", "kind": "partner"}
    )["id"]
    admin.call(
        "POST",
        "/api/v1/masters",
        201,
        json={
            "key": "colour",
            "name": {"en": "Colour", "ja": "色"},
            "items": [{"code": "red", "label": {"en": "Red", "ja": "赤"}}],
        },
    )
    api_key = admin.call(
        "POST", "/api/v1/api-keys", 201, json={"name": "ESB", "roles": ["agent"]}
    )["id"]
    return {
        "me": me["id"],
        # The admin's own id too: hooks.py turns a PATCH or DELETE of it into one of an absent
        # user, so that the run cannot deactivate or delete its own identity.
        "user_id": users + [me["id"]],
        "group_id": [group],
        "organization_id": [organization],
        "api_key_id": [api_key],
    }


def tickets(admin: Api, group: str, user: str) -> dict[str, list[str]]:
    def file(title: str) -> str:
        return admin.call(
            "POST",
            "/api/v1/tickets",
            201,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={
                "template": "itil_incident",
                "fields": {"title": title, "description": "送信エラー", "impact": "high"},
            },
        )["id"]

    def fire(ticket: str, transition: str, fields: dict[str, Any] | None = None) -> Any:
        body: dict[str, Any] = {"transition": transition}
        if fields:
            body["fields"] = fields
        return admin.call("POST", f"/api/v1/tickets/{ticket}/transitions", 200, json=body)

    open_ticket, resolved = file("メールが送信できない"), file("プリンタが動かない")
    fire(resolved, "start_triage")
    fire(
        resolved,
        "assign_work",
        {
            "category": "network",
            "impact": "high",
            "urgency": "high",
            "priority": "p2",
            "assignment_group": group,
        },
    )
    fire(
        resolved,
        "resolve",
        {"resolution_code": "fixed", "resolution": "ドライバを再インストール"},
    )
    article = admin.call("GET", f"/api/v1/tickets/{resolved}", 200)["fields"]["knowledge_article"]
    admin.call(
        "POST", f"/api/v1/tickets/{open_ticket}/comments", 201, json={"body": "見ています"}
    )
    admin.call("POST", f"/api/v1/tickets/{open_ticket}/watchers", 204, json={"user": user})
    link = admin.call(
        "POST",
        f"/api/v1/tickets/{open_ticket}/links",
        201,
        json={"kind": "related", "ticket": resolved},
    )["id"]
    attachment = admin.call(
        "POST",
        f"/api/v1/tickets/{open_ticket}/attachments",
        201,
        files={"file": ("log.txt", b"smtp error 554\n", "text/plain")},
    )["id"]
    return {
        "ticket_id": [open_ticket, resolved],
        "record_id": [article],
        "link_id": [link],
        "attachment_id": [attachment],
    }


def draft_template(admin: Api) -> None:
    """A template left as a draft, so that the state/transition/field item operations can edit."""
    label = {"en": "Desk", "ja": "窓口"}
    admin.call(
        "POST",
        "/api/v1/templates",
        201,
        json={
            "key": "desk",
            "definition": {
                "name": label,
                "key_prefix": "HD",
                "fields": [{"key": "title", "type": "text", "required": True, "label": label}],
                "stages": [
                    {
                        "key": "open",
                        "label": label,
                        "states": [
                            {"key": "new", "label": label, "initial": True},
                            {"key": "closed", "label": label, "terminal": True},
                        ],
                    }
                ],
                "transitions": [
                    {
                        "key": "close",
                        "label": label,
                        "from": ["new"],
                        "to": "closed",
                        "allowed": {"roles": ["agent"]},
                    }
                ],
            },
        },
    )


# Values that name resources the setup created, offered for path parameters half of the time.
NAMED: dict[str, list[Any]] = {
    "template_key": ["itil_incident", "desk"],
    "master_key": ["impact", "colour"],
    "library_key": ["knowledge_base"],
    "catalog_key": ["itil_incident", "customer_inquiry"],
    "n": [1],
    "state_key": ["new", "in_triage", "closed"],
    "transition_key": ["start_triage", "close"],
    "field_key": ["title", "impact"],
    "code": ["high", "red"],
}
KEY_OWNERS = {
    "template_key": "^/api/v1/templates/",
    "master_key": "^/api/v1/masters/",
    "library_key": "^/api/v1/libraries/",
    "catalog_key": "^/api/v1/catalog/",
}


def toml_config(token: str, ids: dict[str, list[Any]]) -> str:
    """The schemathesis configuration of one identity (everything else is on the command line)."""
    stateful_examples = int(os.environ.get("SCHEMATHESIS_STATEFUL_EXAMPLES", "200"))
    # No state kept between runs (each run has a fresh server with fresh ids).
    lines = ["[cache]", "enabled = false", ""]
    lines += ["[auth.openapi.bearer]", f"bearer = {json.dumps(token)}", ""]
    # Stateful scenarios follow the links schemathesis infers (Location headers, ids in
    # responses); positive data, so that the first step creates something to follow.
    lines += [
        "[phases.stateful.generation]",
        'mode = "positive"',
        f"max-examples = {stateful_examples}",
        "",
    ]
    values = {**ids, **NAMED}
    for name, entries in sorted(values.items()):
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(entries, ensure_ascii=False)}", ""]
    lines.append("[parameters]")
    for name in sorted(values):
        if name not in KEY_OWNERS:
            lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}')
    lines.append("")
    for name, regex in sorted(KEY_OWNERS.items()):
        lines += [
            "[[operations]]",
            f'include-path-regex = "{regex}"',
            f'parameters = {{ "path.key" = {{ dictionary = "{name}", probability = 0.5 }} }}',
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    base, operator_password, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    ids = platform(base, operator_password)
    admin = Api(base).sign_in("admin", ADMIN_PASSWORD, TENANT)
    people = directory(admin)
    ids.update({k: v for k, v in people.items() if k != "me"})
    (out / "protected-users").write_text(people["me"])
    ids.update(tickets(admin, people["group_id"][0], people["user_id"][0]))
    draft_template(admin)
    (out / "ids.json").write_text(json.dumps(ids, indent=2))
    # Signed in again: the token carries the agent role added above.
    admin.sign_in("admin", ADMIN_PASSWORD, TENANT)
    assert admin.token
    (out / "admin.toml").write_text(toml_config(admin.token, ids))
    operator = Api(base).sign_in("operator", operator_password)
    assert operator.token
    # The operator may delete a tenant: only the spare one is offered.
    (out / "operator.toml").write_text(toml_config(operator.token, {**ids, "tenant_id": ids["tenant_id"][1:]}))
    print(f"setup: {sum(len(v) for v in ids.values())} resources; configuration in {out}")


if __name__ == "__main__":
    main()
