// Lists every cast in the scenario's sources, found by the TypeScript parser: `x as T`,
// `<T>x`, `x!`, `any`, and @ts-ignore/@ts-expect-error/@ts-nocheck comments.
// The scenario must need none: a place that needs one is a gap in the document.
//   node no-casts.mjs src/a.ts src/b.ts   (exit status 1 when any is found)
import { readFileSync } from "node:fs";
import ts from "typescript";

let found = 0;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const report = (node, what) => {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
    console.log(`${file}:${line + 1}: ${what}: ${node.getText(source).slice(0, 80)}`);
    found += 1;
  };
  const visit = (node) => {
    if (ts.isAsExpression(node) && !(ts.isTypeReferenceNode(node.type) && node.type.getText(source) === "const")) {
      report(node, "cast (as)");
    } else if (ts.isTypeAssertionExpression(node)) {
      report(node, "cast (<T>)");
    } else if (ts.isNonNullExpression(node)) {
      report(node, "non-null assertion (!)");
    } else if (node.kind === ts.SyntaxKind.AnyKeyword) {
      report(node, "any");
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  for (const match of text.matchAll(/@ts-(ignore|expect-error|nocheck)/g)) {
    const { line } = source.getLineAndCharacterOfPosition(match.index ?? 0);
    console.log(`${file}:${line + 1}: ${match[0]}`);
    found += 1;
  }
}
console.log(`casts, non-null assertions and any in the scenario: ${found}`);
process.exit(found === 0 ? 0 : 1);
