// Validates the gateway's /openapi.json as OpenAPI 3.1 (@apidevtools/swagger-parser, pinned in
// package-lock.json) and checks the /docs page loads nothing from outside the gateway.
// Usage: node openapi.mjs http://127.0.0.1:8000
import SwaggerParser from "@apidevtools/swagger-parser";

const base = process.argv[2];
const document = await (await fetch(`${base}/openapi.json`)).json();
const api = await SwaggerParser.validate(structuredClone(document));
const operations = Object.values(api.paths).flatMap((item) => Object.keys(item)).length;
console.log(`OpenAPI ${api.openapi}: valid, ${Object.keys(api.paths).length} paths, ${operations} operations`);

const page = await fetch(`${base}/docs`, { headers: { accept: "text/html" } });
const html = await page.text();
const csp = page.headers.get("content-security-policy") ?? "";
if (page.status !== 200 || !csp.includes("default-src 'self'")) {
  console.error(`/docs: status ${page.status}, CSP ${JSON.stringify(csp)}`);
  process.exit(1);
}
if (/(https?:)?\/\/[a-z0-9]/i.test(html)) {
  console.error("/docs references an outside URL:\n" + html);
  process.exit(1);
}
for (const [, asset] of html.matchAll(/(?:src|href)="(\/[^"]+)"/g)) {
  const answer = await fetch(`${base}${asset}`);
  if (answer.status !== 200) {
    console.error(`/docs asset ${asset}: ${answer.status}`);
    process.exit(1);
  }
}
console.log("/docs: Swagger UI and its assets come from the gateway, under a CSP");
