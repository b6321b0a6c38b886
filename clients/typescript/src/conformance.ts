// Checks every response the scenario receives against openapi/openapi.json: the status is
// documented for the operation, the media type is one the document lists for that status (none
// when it lists none), and the headers a client acts on are declared where they are sent.
// openapi-fetch does not check this itself: an undocumented answer would otherwise be read as
// whatever the generated type says.
import { readFileSync } from "node:fs";
import type { Middleware } from "openapi-fetch";

/** Headers whose presence a client relies on; each must be declared where it is sent. */
const DECLARED_HEADERS = ["ETag", "Location", "Idempotent-Replayed", "Retry-After", "X-Request-Id"];

function member(value: unknown, key: string): unknown {
  if (typeof value !== "object" || value === null) return undefined;
  return Object.entries(value).find(([name]) => name === key)?.[1];
}

function keys(value: unknown): string[] {
  return typeof value === "object" && value !== null ? Object.keys(value) : [];
}

export interface Checked {
  responses: number;
  problems: string[];
}

export function conformance(documentPath: URL): { middleware: Middleware; checked: Checked } {
  const document: unknown = JSON.parse(readFileSync(documentPath, "utf8"));
  const resolve = (node: unknown): unknown => {
    const ref = member(node, "$ref");
    if (typeof ref !== "string") return node;
    return ref
      .replace(/^#\//, "")
      .split("/")
      .reduce<unknown>((at, part) => member(at, part), document);
  };
  const checked: Checked = { responses: 0, problems: [] };
  const middleware: Middleware = {
    onResponse({ request, response, schemaPath }) {
      checked.responses += 1;
      const method = request.method.toLowerCase();
      const where = `${request.method} ${schemaPath} → ${response.status}`;
      const operation = member(member(member(document, "paths"), schemaPath), method);
      const responses = member(operation, "responses");
      const documented = resolve(
        member(responses, String(response.status)) ?? member(responses, "default"),
      );
      if (documented === undefined) {
        checked.problems.push(`${where}: status not documented`);
        return;
      }
      const mediaTypes = keys(member(documented, "content"));
      const sent = (response.headers.get("Content-Type") ?? "").split(";")[0]?.trim() ?? "";
      const listed = mediaTypes.some(
        (type) => type === sent || type === "*/*" || (type.endsWith("/*") && sent.startsWith(type.slice(0, -1))),
      );
      if (sent === "" ? mediaTypes.length > 0 : !listed) {
        checked.problems.push(`${where}: content type '${sent}' not among [${mediaTypes.join(", ")}]`);
      }
      const headers = keys(member(documented, "headers")).map((name) => name.toLowerCase());
      for (const name of DECLARED_HEADERS) {
        if (response.headers.has(name) && !headers.includes(name.toLowerCase())) {
          checked.problems.push(`${where}: header ${name} sent but not declared`);
        }
      }
    },
  };
  return { middleware, checked };
}
