// Validates an SDL file with graphql-js (the reference implementation): it must parse, build
// and pass validateSchema. Usage: node validate.mjs path/to/schema.graphql
import { readFileSync } from "node:fs";
import { buildSchema, validateSchema } from "graphql";

const path = process.argv[2];
const schema = buildSchema(readFileSync(path, "utf8"));
const errors = validateSchema(schema);
if (errors.length > 0) {
  for (const error of errors) console.error(`${path}: ${error.message}`);
  process.exit(1);
}
const types = Object.keys(schema.getTypeMap()).filter((name) => !name.startsWith("__"));
const roots = [
  ["query", schema.getQueryType()],
  ["mutation", schema.getMutationType()],
  ["subscription", schema.getSubscriptionType()],
].map(([kind, type]) => `${kind} ${type ? Object.keys(type.getFields()).length : 0} fields`);
console.log(`${path}: valid (graphql-js): ${types.length} types; ${roots.join(", ")}`);
