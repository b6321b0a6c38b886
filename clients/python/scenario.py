"""The end-to-end scenario of issue #13 point 5, run with the client that openapi-python-client
generates from openapi/openapi.json (no hand edits), against a real server.

    python scenario.py BASE_URL OPERATOR_PASSWORD

Every call goes through the generated functions with `raise_on_unexpected_status`, so an
undocumented status raises; every answer is checked as the documented type, and a response
object carrying a member the document does not declare fails the run (`documented`).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from io import BytesIO
from typing import Any, TypeVar

import attrs
from stageflow_client import AuthenticatedClient, Client
from stageflow_client.api.auth import create_token
from stageflow_client.api.directory import create_group, create_group_member, create_user
from stageflow_client.api.libraries import get_library_record
from stageflow_client.api.platform import create_account, create_plan, create_tenant
from stageflow_client.api.templates import install_catalog_entry
from stageflow_client.api.tickets import (
    create_ticket,
    create_ticket_attachment,
    get_attachment_content,
    get_ticket,
    list_ticket_history,
    list_ticket_transitions,
    list_tickets,
    transition_ticket,
)
from stageflow_client.models import (
    Account,
    AddGroupMember,
    Attachment,
    AttachmentUpload,
    CreateAccount,
    CreateGroup,
    CreatePlan,
    CreateTenant,
    CreateTicket,
    CreateTicketFields,
    CreateUser,
    FireTransition,
    FireTransitionFields,
    Group,
    GroupMember,
    HistoryKind,
    Installation,
    LibraryOperation,
    ListTicketsField,
    PageHistoryEntry,
    PageTicket,
    Plan,
    Record,
    Role,
    Tenant,
    TenantAdmin,
    Ticket,
    TokenRequest,
    TokenResponse,
    TransitionList,
    TransitionResult,
    User,
    WrongStateReason,
)
from stageflow_client.types import File, Response, Unset

T = TypeVar("T")

TITLE = "メールが送信できない"
RESOLUTION = "SMTP サーバの証明書を更新して送信が復旧"
CONTENT = "送信ログ: 550 5.7.1 relay denied\n".encode() * 40


def documented(value: object, where: str = "$") -> None:
    """Fails when a generated model kept members the document does not declare: a model with
    declared members puts unknown ones in `additional_properties`; free-form maps (a model with
    only `additional_properties`) are exempt."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            documented(item, f"{where}[{i}]")
        return
    cls = type(value)
    if not attrs.has(cls):
        return
    names = [f.name for f in attrs.fields(cls)]
    extra: dict[str, Any] = getattr(value, "additional_properties", {})
    if names != ["additional_properties"] and extra:
        raise AssertionError(f"{where} ({cls.__name__}): undocumented members {sorted(extra)}")
    for name in names:
        if name != "additional_properties":
            documented(getattr(value, name), f"{where}.{name}")


def expect(response: Response[Any], status: HTTPStatus, kind: type[T]) -> T:
    """The typed answer of a call that must succeed with `status`."""
    parsed = response.parsed
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.content[:500]!r}"
    assert isinstance(parsed, kind), f"expected {kind.__name__}, got {type(parsed).__name__}"
    documented(parsed, kind.__name__)
    return parsed


def sign_in(base_url: str, username: str, password: str, tenant: str | None = None) -> AuthenticatedClient:
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    body = TokenRequest(username=username, password=password)
    if tenant is not None:
        body.tenant = tenant
    token = expect(create_token.sync_detailed(client=anonymous, body=body), HTTPStatus.OK, TokenResponse)
    assert token.token_type == "Bearer" and token.expires_in > 0 and token.refresh_token
    return AuthenticatedClient(base_url=base_url, token=token.access_token, raise_on_unexpected_status=True)


def etag_of(response: Response[Any]) -> str:
    tag = response.headers.get("etag")
    assert tag is not None and tag.startswith('"'), f"no strong ETag: {tag!r}"
    return tag


def step(name: str, timings: list[tuple[str, float]], run: Callable[[], None]) -> None:
    started = time.perf_counter()
    run()
    timings.append((name, time.perf_counter() - started))
    print(f"ok  {name} ({(time.perf_counter() - started) * 1000:.0f} ms)", flush=True)


class Scenario:
    def __init__(self, base_url: str, operator_password: str) -> None:
        self.base_url = base_url
        self.operator_password = operator_password
        # Unique names, so that the scenario can run twice against one server.
        self.suffix = uuid.uuid4().hex[:8]
        self.slug = f"acme-{self.suffix}"
        self.admin: AuthenticatedClient | None = None
        self.agent: AuthenticatedClient | None = None
        self.group: Group | None = None
        self.ticket: Ticket | None = None
        self.etag = ""
        self.article_id: uuid.UUID | None = None

    def need_agent(self) -> AuthenticatedClient:
        assert self.agent is not None
        return self.agent

    def need_ticket(self) -> Ticket:
        assert self.ticket is not None
        return self.ticket

    # 1. The operator creates a plan, an account on it and a tenant with its first admin.
    def platform(self) -> None:
        operator = sign_in(self.base_url, "operator", self.operator_password)
        plan = expect(
            create_plan.sync_detailed(
                client=operator,
                body=CreatePlan(name=f"Standard {self.suffix}", max_tenants=3, max_processes=20, max_users=50),
            ),
            HTTPStatus.CREATED,
            Plan,
        )
        assert plan.name == f"Standard {self.suffix}" and plan.max_users == 50
        account = expect(
            create_account.sync_detailed(
                client=operator, body=CreateAccount(name=f"Example Corp. {self.suffix}", plan_id=plan.id)
            ),
            HTTPStatus.CREATED,
            Account,
        )
        assert account.plan_id == plan.id
        tenant = expect(
            create_tenant.sync_detailed(
                client=operator,
                body=CreateTenant(
                    account_id=account.id,
                    slug=self.slug,
                    name="ACME",
                    time_zone="Asia/Tokyo",
                    admin=TenantAdmin(username="admin", password="tenant-passphrase-1"),
                ),
            ),
            HTTPStatus.CREATED,
            Tenant,
        )
        assert tenant.slug == self.slug and tenant.account_id == account.id

    # 2. The tenant admin installs the ITIL incident process, creates a group and an agent in it.
    def tenant_setup(self) -> None:
        admin = sign_in(self.base_url, "admin", "tenant-passphrase-1", self.slug)
        installed = expect(
            install_catalog_entry.sync_detailed("itil_incident", client=admin),
            HTTPStatus.CREATED,
            Installation,
        )
        assert installed.template.key == "itil_incident"
        assert installed.template.published_version == 1
        assert sorted(installed.templates_created) == ["itil_change", "itil_problem"], installed.templates_created
        group = expect(
            create_group.sync_detailed(client=admin, body=CreateGroup(name="service_desk")),
            HTTPStatus.CREATED,
            Group,
        )
        agent = expect(
            create_user.sync_detailed(
                client=admin,
                body=CreateUser(
                    username="alice",
                    display_name="Alice",
                    password="agent-passphrase-1",
                    roles=[Role.AGENT],
                ),
            ),
            HTTPStatus.CREATED,
            User,
        )
        assert agent.roles == [Role.AGENT]
        member = expect(
            create_group_member.sync_detailed(group.id, client=admin, body=AddGroupMember(user_id=agent.id)),
            HTTPStatus.CREATED,
            GroupMember,
        )
        assert member.user_id == agent.id
        self.admin, self.group = admin, group

    # 3. The agent files an incident; the same request with the same Idempotency-Key replays it.
    def file_incident(self) -> None:
        agent = sign_in(self.base_url, "alice", "agent-passphrase-1", self.slug)
        body = CreateTicket(
            template="itil_incident",
            fields=CreateTicketFields.from_dict(
                {"title": TITLE, "description": "送信エラー 0x800CCC0F", "impact": "high"}
            ),
        )
        key = f"mail-{uuid.uuid4()}"
        first = create_ticket.sync_detailed(client=agent, body=body, idempotency_key=key)
        ticket = expect(first, HTTPStatus.CREATED, Ticket)
        assert ticket.title == TITLE and ticket.state == "new" and ticket.template == "itil_incident"
        assert ticket.fields["impact"] == "high"
        assert ticket.key.startswith("INC-")
        assert first.headers.get("location", "").endswith(f"/api/v1/tickets/{ticket.id}")
        assert "idempotent-replayed" not in first.headers
        again = create_ticket.sync_detailed(client=agent, body=body, idempotency_key=key)
        replayed = expect(again, HTTPStatus.CREATED, Ticket)
        assert replayed.id == ticket.id and replayed.key == ticket.key
        assert again.headers.get("idempotent-replayed") == "true", dict(again.headers)
        self.agent, self.ticket, self.etag = agent, ticket, etag_of(first)

    # 4. Its transitions, explained: start_triage is available, assign_work is not (and why).
    def explain(self) -> None:
        agent, ticket = self.need_agent(), self.need_ticket()
        choices = expect(
            list_ticket_transitions.sync_detailed(ticket.id, client=agent, explain=True),
            HTTPStatus.OK,
            TransitionList,
        )
        assert choices.state == "new" and choices.ticket_version == ticket.version
        by_key = {choice.key: choice for choice in choices.items}
        assert by_key["start_triage"].available and by_key["start_triage"].to == "in_triage"
        assert by_key["start_triage"].reasons == []
        assert by_key["start_triage"].label.ja and by_key["start_triage"].label.en
        blocked = by_key["assign_work"]
        assert not blocked.available
        wrong = [reason for reason in blocked.reasons if isinstance(reason, WrongStateReason)]
        assert len(wrong) == 1, [r.to_dict() for r in blocked.reasons]
        assert wrong[0].current == "new" and wrong[0].from_ == ["in_triage"], wrong[0].to_dict()

    def fire(self, transition: str, fields: dict[str, Any], to: str) -> TransitionResult:
        agent, ticket = self.need_agent(), self.need_ticket()
        response = transition_ticket.sync_detailed(
            ticket.id,
            client=agent,
            body=FireTransition(transition=transition, fields=FireTransitionFields.from_dict(fields)),
            if_match=self.etag,
        )
        result = expect(response, HTTPStatus.OK, TransitionResult)
        assert not result.dry_run
        assert result.ticket.state == to, (transition, result.ticket.state)
        assert result.plan.transition == transition and result.plan.to == to, result.plan.to_dict()
        assert [event.transition for event in result.events] == [transition], [e.to_dict() for e in result.events]
        assert all(event.ticket_id == ticket.id and event.to_state == to for event in result.events)
        self.etag = etag_of(response)
        assert self.etag == f'"{result.ticket.version}"', (self.etag, result.ticket.version)
        self.ticket = result.ticket
        return result

    # 5. start_triage, assign_work, resolve — each with If-Match; a stale tag is 412.
    def transitions(self) -> None:
        agent, ticket = self.need_agent(), self.need_ticket()
        assert self.group is not None
        stale = self.etag
        self.fire("start_triage", {"category": "network", "urgency": "high", "source": "email"}, "in_triage")
        refused = transition_ticket.sync_detailed(
            ticket.id, client=agent, body=FireTransition(transition="assign_work"), if_match=stale
        )
        assert refused.status_code == HTTPStatus.PRECONDITION_FAILED, refused.status_code
        assigned = self.fire("assign_work", {"priority": "p1", "assignment_group": str(self.group.id)}, "in_progress")
        assert assigned.ticket.group == self.group.id
        resolved = self.fire("resolve", {"resolution_code": "config_change", "resolution": RESOLUTION}, "resolved")
        assert len(resolved.library_changes) == 1, [c.to_dict() for c in resolved.library_changes]
        assert [event.event for event in resolved.events] == ["incident.resolved"]
        change = resolved.library_changes[0]
        assert change.library == "knowledge_base" and change.operation == LibraryOperation.CREATED
        assert change.record_field == "knowledge_article" and change.title == TITLE
        assert resolved.ticket.fields["knowledge_article"] == str(change.record_id)
        self.article_id = change.record_id

    # 6. An attachment goes up as multipart and comes back byte for byte.
    def attachment(self) -> None:
        agent, ticket = self.need_agent(), self.need_ticket()
        upload = AttachmentUpload(file=File(payload=BytesIO(CONTENT), file_name="送信ログ.txt", mime_type="text/plain"))
        attached = expect(
            create_ticket_attachment.sync_detailed(ticket.id, client=agent, body=upload),
            HTTPStatus.CREATED,
            Attachment,
        )
        assert attached.ticket_id == ticket.id and attached.size == len(CONTENT)
        assert attached.file_name == "送信ログ.txt" and not attached.internal
        downloaded = get_attachment_content.sync_detailed(attached.id, client=agent)
        content = expect(downloaded, HTTPStatus.OK, File)
        assert content.payload.read() == CONTENT
        assert downloaded.headers.get("content-type", "").startswith("text/plain"), downloaded.headers

    # 7. Found by a field filter and a Japanese keyword; not found by a filter that does not match.
    def search(self) -> None:
        agent, ticket = self.need_agent(), self.need_ticket()

        def find(q: str, impact: str) -> list[Ticket]:
            # openapi-python-client 0.29 ignores `style: deepObject`: it spreads the map into the
            # query as `impact=high`, which the server does not read. The keys therefore carry the
            # parameter name themselves (`field[impact]`); see docs/openapi.md.
            field = ListTicketsField.from_dict({"field[impact]": impact})
            page = expect(
                list_tickets.sync_detailed(client=agent, q=q, field=field, template="itil_incident"),
                HTTPStatus.OK,
                PageTicket,
            )
            assert isinstance(page.next_cursor, (type(None), Unset))
            return page.items

        found = find("メール", "high")
        assert [t.id for t in found] == [ticket.id], [t.key for t in found]
        assert find("メール", "low") == []
        assert find("プリンタ", "high") == []
        # The generator's own form of the filter: sent as `impact=low`, ignored, so it matches.
        spread = list_tickets.sync_detailed(client=agent, field=ListTicketsField.from_dict({"impact": "low"}))
        assert [t.id for t in expect(spread, HTTPStatus.OK, PageTicket).items] == [ticket.id]

    # 8. The history has the transitions with their old and new state.
    def history(self) -> None:
        agent, ticket = self.need_agent(), self.need_ticket()
        page = expect(
            list_ticket_history.sync_detailed(ticket.id, client=agent, limit=500),
            HTTPStatus.OK,
            PageHistoryEntry,
        )
        walk = [(e.transition, e.from_state, e.to_state) for e in page.items if e.kind == HistoryKind.TRANSITION]
        assert walk == [
            ("start_triage", "new", "in_triage"),
            ("assign_work", "in_triage", "in_progress"),
            ("resolve", "in_progress", "resolved"),
        ], walk
        changed = {e.field: e.new_value for e in page.items if e.kind == HistoryKind.FIELD_CHANGED}
        assert changed.get("resolution") == RESOLUTION, changed
        assert all(e.actor.name == "alice" for e in page.items if e.kind == HistoryKind.TRANSITION)

    # 9. The knowledge article the resolution wrote, reached from the ticket.
    def article(self) -> None:
        agent, ticket = self.need_agent(), self.need_ticket()
        assert self.article_id is not None
        expanded = expect(
            get_ticket.sync_detailed(ticket.id, client=agent, expand="references"),
            HTTPStatus.OK,
            Ticket,
        )
        assert not isinstance(expanded.references, (Unset, type(None)))
        reference = expanded.references["knowledge_article"]
        assert reference.id == self.article_id and reference.library == "knowledge_base", reference
        record = expect(
            get_library_record.sync_detailed(reference.library, reference.id, client=agent),
            HTTPStatus.OK,
            Record,
        )
        assert record.title == TITLE and record.library == "knowledge_base"
        assert record.fields["body"] == RESOLUTION and record.fields["title"] == TITLE
        assert not isinstance(record.origin, (Unset, type(None))) and record.origin.ticket_id == ticket.id

    def run(self) -> list[tuple[str, float]]:
        timings: list[tuple[str, float]] = []
        step("1 operator: plan, account, tenant", timings, self.platform)
        step("2 admin: catalog install, group, agent", timings, self.tenant_setup)
        step("3 agent: file with Idempotency-Key, replay", timings, self.file_incident)
        step("4 transitions with explain", timings, self.explain)
        step("5 start_triage, assign_work, resolve (If-Match)", timings, self.transitions)
        step("6 attachment upload and download", timings, self.attachment)
        step("7 list: field filter, Japanese keyword", timings, self.search)
        step("8 history", timings, self.history)
        step("9 knowledge article", timings, self.article)
        return timings


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: scenario.py BASE_URL OPERATOR_PASSWORD", file=sys.stderr)
        return 2
    started = time.perf_counter()
    Scenario(argv[1], argv[2]).run()
    print(f"scenario passed: 9 steps in {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
