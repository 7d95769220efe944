// Runs the graphql-http package's server audits (the GraphQL over HTTP specification) against a
// running gateway. Prints every audit that did not pass and the count passed; exits non-zero when
// any MUST audit fails. Usage: node audit.mjs http://127.0.0.1:8000/graphql
import { serverAudits } from "graphql-http";

const url = process.argv[2];
const audits = serverAudits({ url });
let passed = 0;
const failed = { MUST: [], SHOULD: [], MAY: [] };
for (const audit of audits) {
  const result = await audit.fn();
  if (result.status === "ok") {
    passed += 1;
  } else {
    const level = audit.name.split(" ")[0];
    (failed[level] ?? failed.MAY).push(`${audit.name}: ${result.reason}`);
  }
}
for (const [level, names] of Object.entries(failed)) {
  for (const name of names) console.log(`${level === "MUST" ? "FAIL" : "warn"} ${name}`);
}
console.log(
  `graphql-http audits: ${passed} of ${audits.length} passed ` +
    `(${failed.MUST.length} MUST, ${failed.SHOULD.length} SHOULD, ${failed.MAY.length} MAY not passed)`,
);
process.exit(failed.MUST.length > 0 ? 1 : 0);
