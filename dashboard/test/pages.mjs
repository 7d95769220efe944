// GraphiQL and the REST API docs page (Swagger UI) in a real browser against a real
// `anomaly serve`: each must start under the gateway's Content-Security-Policy with nothing loaded
// from elsewhere and no console error (a CSP violation is one). GraphiQL must load the schema by
// introspection (its documentation explorer lists QueryRoot) and run a query; /docs must render
// every operation of /openapi.json.
//
//   node test/pages.mjs <anomaly binary>
import { SETUP_MS, launchBrowser, server, watchedPage } from "./harness.mjs";

const [binary] = process.argv.slice(2);
if (!binary) throw new Error("usage: node test/pages.mjs <anomaly binary>");

const gateway = await server(binary, "pages");
await gateway.start();
const browser = await launchBrowser();

async function check(name, path, exercise) {
  const { page, foreign, consoleErrors } = await watchedPage(browser, gateway);
  await page.goto(`${gateway.base}${path}`);
  const outcome = await exercise(page);
  if (foreign.length) throw new Error(`${name} reached beyond the gateway: ${foreign.join(", ")}`);
  if (consoleErrors.length) throw new Error(`${name} logged errors:\n${consoleErrors.join("\n")}`);
  console.log(`${name}: starts under the CSP and ${outcome}`);
  await page.close();
}

try {
  await check("GraphiQL", "/graphql", async (page) => {
    await page.waitForSelector(".graphiql-container", { timeout: SETUP_MS });
    await page.click('[aria-label="Show Documentation Explorer"]', { timeout: SETUP_MS });
    await page.getByText("QueryRoot").first().waitFor({ timeout: SETUP_MS });
    // Replace the editor's text with a query and run it.
    await page.click(".graphiql-query-editor .CodeMirror");
    await page.keyboard.press("Control+A");
    await page.keyboard.type("{ health { seriesTrained } }");
    await page.click(".graphiql-execute-button");
    await page.locator(".graphiql-response").getByText("seriesTrained").waitFor({ timeout: SETUP_MS });
    return "loads the schema by introspection and runs a query";
  });
  await check("/docs", "/docs", async (page) => {
    const spec = await (await fetch(`${gateway.base}/openapi.json`)).json();
    const operations = Object.values(spec.paths).flatMap((item) => Object.keys(item)).length;
    await page.waitForFunction(
      (n) => document.querySelectorAll(".swagger-ui .opblock").length === n,
      operations,
      { timeout: SETUP_MS },
    );
    return `renders all ${operations} operations of /openapi.json`;
  });
} catch (error) {
  console.error(gateway.logTail());
  throw error;
} finally {
  await browser.close();
  await gateway.kill();
}
