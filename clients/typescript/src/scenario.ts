// The end-to-end scenario of issue #13 (point 5), run by scripts/client-typescript.sh against a
// fresh server with a client generated from openapi/openapi.json by openapi-typescript and
// called through openapi-fetch, as a third-party frontend would. Nothing here casts an API
// result (`as`, `any`): every value is read through the generated types, so a gap in the
// document shows up as a type error at `tsc --strict`, or as a failed assertion here.
//   SF_URL, SF_OPERATOR_PASSWORD: set by scripts/lib/test-server.sh
import assert from "node:assert/strict";
import createClient from "openapi-fetch";
import { conformance } from "./conformance.js";
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
type Client = ReturnType<typeof createClient<paths>>;

const baseUrl = requiredEnv("SF_URL");
const operatorPassword = requiredEnv("SF_OPERATOR_PASSWORD");
const runTag = Date.now().toString(36);
const { middleware, checked } = conformance(new URL("../../../openapi/openapi.json", import.meta.url));

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Error(`${name} is not set (run scripts/client-typescript.sh)`);
  }
  return value;
}

/** What openapi-fetch answers: `data` on a documented success, `error` otherwise. */
interface Outcome<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The typed body of a response that must have the given status. */
function expect<T>(what: string, outcome: Outcome<T>, status: number): T {
  const { data, error, response } = outcome;
  if (response.status !== status || data === undefined) {
    throw new Error(
      `${what}: expected ${status}, got ${response.status} ${JSON.stringify(error ?? data)}`,
    );
  }
  return data;
}

function etag(what: string, response: Response): string {
  const tag = response.headers.get("ETag");
  assert.ok(tag !== null && /^"\d+"$/.test(tag), `${what}: an ETag with the version, got ${tag}`);
  return tag;
}

function client(token?: string): Client {
  const created = createClient<paths>({
    baseUrl,
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  });
  created.use(middleware);
  return created;
}

async function signIn(username: string, password: string, tenant?: string): Promise<Client> {
  const body: Schemas["TokenRequest"] =
    tenant === undefined ? { username, password } : { tenant, username, password };
  const token = expect(
    `sign in ${username}`,
    await client().POST("/api/v1/auth/token", { body }),
    200,
  );
  assert.equal(token.token_type, "Bearer");
  assert.ok(token.expires_in > 0);
  return client(token.access_token);
}

const timings: [string, number][] = [];
async function step<T>(name: string, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await run();
  const ms = performance.now() - started;
  timings.push([name, ms]);
  console.log(`ok ${timings.length} ${name} (${ms.toFixed(0)} ms)`);
  return result;
}

const slug = `acme-${runTag}`;
const adminPassword = "tenant-passphrase-1";
const agentPassword = "agent-passphrase-1";
const title = "メールが送信できない";
const resolution = "SMTP サーバ証明書を更新";

// 1. The operator creates a plan, an account on it and a tenant with its first admin.
const tenant = await step("operator: plan, account, tenant with admin", async () => {
  const operator = await signIn("operator", operatorPassword);
  const plan = expect(
    "create plan",
    await operator.POST("/api/v1/plans", {
      body: { name: `Standard ${runTag}`, max_tenants: 3, max_processes: 20, max_users: 50 },
    }),
    201,
  );
  assert.equal(plan.max_users, 50);
  const account = expect(
    "create account",
    await operator.POST("/api/v1/accounts", {
      body: { name: "Example Corp.", plan_id: plan.id },
    }),
    201,
  );
  assert.equal(account.plan_id, plan.id);
  const created = expect(
    "create tenant",
    await operator.POST("/api/v1/tenants", {
      body: {
        account_id: account.id,
        slug,
        name: "ACME",
        time_zone: "Asia/Tokyo",
        admin: { username: "admin", password: adminPassword },
      },
    }),
    201,
  );
  assert.equal(created.slug, slug);
  assert.equal(created.account_id, account.id);
  return created;
});

// 2. The tenant admin installs the ITIL incident process, creates the agent and its group.
const groupId = await step("tenant admin: catalog install, group, agent", async () => {
  const admin = await signIn("admin", adminPassword, tenant.slug);
  const installed = expect(
    "install itil_incident",
    await admin.POST("/api/v1/catalog/{key}/install", {
      params: { path: { key: "itil_incident" } },
    }),
    201,
  );
  assert.equal(installed.template.key, "itil_incident");
  assert.equal(installed.version.status, "published");
  for (const dependency of ["itil_problem", "itil_change"]) {
    assert.ok(installed.templates_created.includes(dependency), `${dependency} installed too`);
  }
  assert.ok(installed.libraries_created.includes("knowledge_base"));
  const group = expect(
    "create group",
    await admin.POST("/api/v1/groups", { body: { name: "service_desk" } }),
    201,
  );
  const agent = expect(
    "create agent",
    await admin.POST("/api/v1/users", {
      body: {
        username: "alice",
        display_name: "Alice",
        password: agentPassword,
        roles: ["agent"],
      },
    }),
    201,
  );
  assert.deepEqual(agent.roles, ["agent"]);
  const member = expect(
    "add agent to group",
    await admin.POST("/api/v1/groups/{group_id}/members", {
      params: { path: { group_id: group.id } },
      body: { user_id: agent.id },
    }),
    201,
  );
  assert.equal(member.user_id, agent.id);
  return group.id;
});

const agent = await signIn("alice", agentPassword, slug);

// 3. The agent files an incident; the same request again answers the same ticket.
const filed = await step("agent: file an incident, replay with the Idempotency-Key", async () => {
  const file = () =>
    agent.POST("/api/v1/tickets", {
      params: { header: { "Idempotency-Key": `mail-${runTag}` } },
      body: {
        template: "itil_incident",
        fields: { title, description: "送信エラー 0x800CCC0F", impact: "high" },
      },
    });
  const first = await file();
  const ticket = expect("file incident", first, 201);
  assert.equal(ticket.title, title);
  assert.equal(ticket.fields["impact"], "high");
  assert.equal(ticket.state, "new");
  assert.equal(ticket.template, "itil_incident");
  assert.match(ticket.key, /^INC-\d+$/);
  assert.equal(first.response.headers.get("Idempotent-Replayed"), null);
  assert.equal(etag("file incident", first.response), `"${ticket.version}"`);
  const again = await file();
  const replayed = expect("replay", again, 201);
  assert.equal(replayed.id, ticket.id);
  assert.equal(replayed.key, ticket.key);
  assert.equal(again.response.headers.get("Idempotent-Replayed"), "true");
  return ticket;
});
const ticketPath = { params: { path: { ticket_id: filed.id } } };

// 4. The transitions the agent may fire, with the reasons for the others.
let tag = await step("agent: transitions with explain", async () => {
  const listed = await agent.GET("/api/v1/tickets/{ticket_id}/transitions", {
    params: { path: { ticket_id: filed.id }, query: { explain: true } },
  });
  const choices = expect("transitions", listed, 200);
  assert.equal(choices.state, "new");
  assert.equal(choices.ticket_version, filed.version);
  const triage = choices.items.find((choice) => choice.key === "start_triage");
  assert.ok(triage, "start_triage is listed");
  assert.equal(triage.available, true);
  assert.equal(triage.to, "in_triage");
  assert.deepEqual(triage.reasons, []);
  assert.ok(triage.label.ja.length > 0 && triage.label.en.length > 0, "a label in both languages");
  const refused = choices.items.filter((choice) => !choice.available);
  assert.ok(refused.length > 0, "some transition is unavailable");
  for (const choice of refused) {
    assert.ok(choice.reasons.length > 0, `${choice.key}: unavailable with a reason`);
  }
  const assignWork = refused.find((choice) => choice.key === "assign_work");
  assert.ok(assignWork, "assign_work is refused");
  // `code` tells the reasons apart: narrowing on it gives each reason its own members.
  const wrongState = assignWork.reasons.flatMap((reason) =>
    reason.code === "wrong_state" ? [reason] : [],
  );
  assert.equal(wrongState.length, 1, "assign_work is refused as wrong_state");
  assert.equal(wrongState[0]?.current, "new");
  assert.deepEqual(wrongState[0]?.from, ["in_triage"]);
  return etag("transitions", listed.response);
});

// 5. start_triage → assign_work → resolve, each with If-Match on the version just seen.
async function fire(
  transition: string,
  fields: Schemas["FireTransition"]["fields"],
  to: string,
): Promise<Schemas["TransitionResult"]> {
  const fired = await agent.POST("/api/v1/tickets/{ticket_id}/transitions", {
    params: { path: { ticket_id: filed.id }, header: { "If-Match": tag } },
    body: fields === undefined ? { transition } : { transition, fields },
  });
  const result = expect(transition, fired, 200);
  assert.equal(result.dry_run, false);
  assert.equal(result.ticket.state, to);
  tag = etag(transition, fired.response);
  assert.equal(tag, `"${result.ticket.version}"`);
  assert.equal(result.plan.transition, transition);
  assert.equal(result.plan.to, to);
  assert.deepEqual(
    result.events.map((event) => [event.ticket_id, event.transition, event.to_state]),
    [[filed.id, transition, to]],
  );
  return result;
}
const resolved = await step("agent: start_triage, assign_work, resolve (If-Match)", async () => {
  // A stale tag is refused before anything changes.
  const stale = await agent.POST("/api/v1/tickets/{ticket_id}/transitions", {
    params: { path: { ticket_id: filed.id }, header: { "If-Match": `"${filed.version + 7}"` } },
    body: { transition: "start_triage" },
  });
  assert.equal(stale.response.status, 412);
  assert.equal(stale.error?.type, "/problems/precondition-failed");
  await fire(
    "start_triage",
    { source: "email", category: "service.email", impact: "high", urgency: "medium" },
    "in_triage",
  );
  const assigned = await fire(
    "assign_work",
    { priority: "p2", assignment_group: groupId },
    "in_progress",
  );
  assert.equal(assigned.ticket.group, groupId);
  // The plan's actions are told apart by `type`, an assignee by `kind`.
  const assignees = assigned.plan.actions.flatMap((action) =>
    action.type === "assign" && action.assignee.kind === "group" ? [action.assignee.id] : [],
  );
  assert.deepEqual(assignees, [groupId]);
  const done = await fire(
    "resolve",
    { resolution_code: "config_change", resolution },
    "resolved",
  );
  assert.equal(done.ticket.stage, "resolution");
  assert.deepEqual(
    done.events.map((event) => event.event),
    ["incident.resolved"],
  );
  return done;
});

// 6. An attachment goes up as multipart/form-data and comes back byte for byte.
await step("agent: upload and download an attachment", async () => {
  const content = "送信ログ\r\nSMTP 0x800CCC0F — 証明書の期限切れ\n";
  const uploaded = expect(
    "upload",
    await agent.POST("/api/v1/tickets/{ticket_id}/attachments", {
      ...ticketPath,
      // `file` is `format: binary`, which openapi-typescript types as `string`: the form is
      // built here from that string.
      body: { file: content },
      bodySerializer(body) {
        const form = new FormData();
        form.append("file", new Blob([body.file], { type: "text/plain" }), "smtp.log");
        return form;
      },
    }),
    201,
  );
  const bytes = new TextEncoder().encode(content);
  assert.equal(uploaded.ticket_id, filed.id);
  assert.equal(uploaded.file_name, "smtp.log");
  assert.equal(uploaded.size, bytes.byteLength);
  assert.equal(uploaded.internal, false);
  const downloaded = await agent.GET("/api/v1/attachments/{attachment_id}/content", {
    params: { path: { attachment_id: uploaded.id } },
    parseAs: "arrayBuffer",
  });
  const body = expect("download", downloaded, 200);
  assert.deepEqual(new Uint8Array(body), bytes);
  assert.match(downloaded.response.headers.get("Content-Type") ?? "", /^text\/plain/);
});

// 7. Found by a custom-field filter (deepObject) and a Japanese keyword; not by another value.
await step("agent: list with field[impact] and q=メール", async () => {
  const found = expect(
    "list matching",
    await agent.GET("/api/v1/tickets", {
      params: { query: { field: { impact: "high" }, q: "メール", state: "resolved" } },
    }),
    200,
  );
  assert.deepEqual(
    found.items.map((ticket) => ticket.id),
    [filed.id],
  );
  const first = found.items[0];
  assert.ok(first);
  assert.equal(first.title, title);
  const none = expect(
    "list not matching",
    await agent.GET("/api/v1/tickets", {
      params: { query: { field: { impact: "low" }, q: "メール" } },
    }),
    200,
  );
  assert.deepEqual(none.items, []);
  assert.equal(none.next_cursor ?? null, null);
});

// 8. The history has the walk, old and new state.
await step("agent: history", async () => {
  const history = expect(
    "history",
    await agent.GET("/api/v1/tickets/{ticket_id}/history", {
      params: { path: { ticket_id: filed.id }, query: { limit: 500 } },
    }),
    200,
  );
  const walk = history.items
    .filter((entry) => entry.kind === "transition")
    .map((entry) => [entry.transition, entry.from_state, entry.to_state]);
  assert.deepEqual(walk, [
    ["start_triage", "new", "in_triage"],
    ["assign_work", "in_triage", "in_progress"],
    ["resolve", "in_progress", "resolved"],
  ]);
  assert.ok(history.items.some((entry) => entry.kind === "created"));
  const urgency = history.items.find(
    (entry) => entry.kind === "field_changed" && entry.field === "urgency",
  );
  assert.ok(urgency, "the urgency set in triage is in the history");
  assert.equal(urgency.old_value, null);
  assert.equal(urgency.new_value, "medium");
  for (const entry of history.items) {
    assert.equal(entry.actor.kind, "user");
    assert.equal(entry.actor.name, "alice");
  }
});

// 9. The knowledge article the resolution wrote, by the ticket's link and the change record.
await step("agent: the knowledge article written by resolve", async () => {
  const [change] = resolved.library_changes;
  assert.ok(change, "resolve wrote a library record");
  assert.equal(resolved.library_changes.length, 1);
  assert.equal(change.library, "knowledge_base");
  assert.equal(change.operation, "created");
  assert.equal(change.record_field, "knowledge_article");
  assert.equal(resolved.ticket.fields["knowledge_article"], change.record_id);
  const ticket = expect("get ticket", await agent.GET("/api/v1/tickets/{ticket_id}", ticketPath), 200);
  assert.equal(ticket.fields["knowledge_article"], change.record_id);
  const article = expect(
    "get article",
    await agent.GET("/api/v1/libraries/{key}/records/{record_id}", {
      params: { path: { key: "knowledge_base", record_id: change.record_id } },
    }),
    200,
  );
  assert.equal(article.library, "knowledge_base");
  assert.equal(article.title, title);
  assert.equal(article.fields["title"], title);
  assert.equal(article.fields["body"], resolution);
  assert.equal(article.origin?.ticket_id, filed.id);
  assert.equal(article.version, change.record_version);
});

assert.deepEqual(checked.problems, [], "every response is documented");
const total = timings.reduce((sum, [, ms]) => sum + ms, 0);
console.log(
  `scenario passed: ${timings.length} steps in ${total.toFixed(0)} ms, ` +
    `${checked.responses} responses checked against the document`,
);
