// The REST API docs page (Swagger UI) in a real browser (Debian's Chromium through playwright-core) against a real
// `anomaly serve`: /docs must start under the gateway's Content-Security-Policy with nothing
// loaded from elsewhere and no console error (a CSP violation is one), and render every
// operation of /openapi.json.
//
//   node test/docs.mjs <anomaly binary>
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const [binary] = process.argv.slice(2);
if (!binary) throw new Error("usage: node test/docs.mjs <anomaly binary>");
const SETUP_MS = 30_000;

const port = await new Promise((done) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address();
    probe.close(() => done(port));
  });
});
const base = `http://127.0.0.1:${port}`;
const workdir = mkdtempSync(join(tmpdir(), "anomaly-docs-"));
const log = join(workdir, "server.log");
const out = openSync(log, "a");
const server = spawn(resolve(binary), ["serve"], {
  cwd: workdir,
  env: { ...process.env, APP_PORT: String(port), APP_HOST: "127.0.0.1" },
  stdio: ["ignore", out, out],
});
const deadline = Date.now() + SETUP_MS;
for (;;) {
  try {
    if ((await fetch(`${base}/healthcheck`)).ok) break;
  } catch {
    // not yet
  }
  if (Date.now() > deadline) throw new Error("the server did not answer /healthcheck");
  await new Promise((r) => setTimeout(r, 50));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const foreign = [];
const consoleErrors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(base) && !url.startsWith(`ws://127.0.0.1:${port}`) && !url.startsWith("data:")) foreign.push(url);
  });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  await page.goto(`${base}/docs`);
  const spec = await (await fetch(`${base}/openapi.json`)).json();
  const operations = Object.values(spec.paths).flatMap((item) => Object.keys(item)).length;
  await page.waitForSelector(".swagger-ui .opblock", { timeout: SETUP_MS });
  await page.waitForFunction(
    (n) => document.querySelectorAll(".swagger-ui .opblock").length === n,
    operations,
    { timeout: SETUP_MS },
  );

  if (foreign.length) throw new Error(`/docs reached beyond the gateway: ${foreign.join(", ")}`);
  if (consoleErrors.length) throw new Error(`/docs logged errors:\n${consoleErrors.join("\n")}`);
  console.log(`/docs: Swagger UI starts under the CSP and renders all ${operations} operations`);
} catch (error) {
  console.error(readFileSync(log, "utf8").split("\n").slice(-20).join("\n"));
  throw error;
} finally {
  await browser.close();
  server.kill("SIGKILL");
}
