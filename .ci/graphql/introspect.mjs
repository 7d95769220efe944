// Sends graphql-js's own getIntrospectionQuery() (the default and every option on, as GraphiQL
// and codegen tools do) to a running gateway and checks the schema it answers is schema.graphql;
// then checks the GraphiQL page loads nothing from outside the gateway.
// Usage: node introspect.mjs http://127.0.0.1:8000/graphql ../../schema.graphql
import { readFileSync } from "node:fs";
import {
  GraphQLSchema,
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  lexicographicSortSchema,
  printSchema,
} from "graphql";

const [url, sdlPath] = process.argv.slice(2);
const expected = printSchema(lexicographicSortSchema(buildSchema(readFileSync(sdlPath, "utf8"))));

const variants = {
  default: {},
  "every option": {
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
  },
};
for (const [name, options] of Object.entries(variants)) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query: getIntrospectionQuery(options) }),
  });
  const body = await response.json();
  if (body.errors) {
    console.error(`introspection (${name}) refused:`, JSON.stringify(body.errors));
    process.exit(1);
  }
  // async-graphql answers `__schema { description }` with the description of the __Schema type
  // itself (not a schema description of ours); leave it out of the comparison.
  const client = buildClientSchema(body.data);
  const withoutDescription = new GraphQLSchema({ ...client.toConfig(), description: undefined });
  const answered = printSchema(lexicographicSortSchema(withoutDescription));
  if (answered !== expected) {
    console.error(`introspection (${name}) answered a schema other than schema.graphql`);
    process.exit(1);
  }
  console.log(`getIntrospectionQuery (${name}): the full schema, equal to schema.graphql`);
}

const page = await fetch(url, { headers: { accept: "text/html" } });
const html = await page.text();
const csp = page.headers.get("content-security-policy") ?? "";
if (page.status !== 200 || !csp.includes("default-src 'self'")) {
  console.error(`GraphiQL page: status ${page.status}, CSP ${JSON.stringify(csp)}`);
  process.exit(1);
}
if (/(https?:)?\/\/[a-z0-9]/i.test(html.replace(/<!--[\s\S]*?-->/g, ""))) {
  console.error("GraphiQL page references an outside URL:\n" + html);
  process.exit(1);
}
const assets = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]);
for (const asset of assets) {
  const answer = await fetch(new URL(asset, url));
  if (answer.status !== 200) {
    console.error(`GraphiQL asset ${asset}: ${answer.status}`);
    process.exit(1);
  }
}
console.log(`GraphiQL: the page and its ${assets.length} assets come from the gateway, under a CSP`);
