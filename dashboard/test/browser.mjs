// The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
// `anomaly serve`: a series is fitted and an anomalous point predicted through the API, and the
// page must show it in the feed and on the chart within 5 seconds without reloading; then the
// server is killed and restarted, and the page must reconnect and show the next anomaly.
//
//   node test/browser.mjs <anomaly binary> [screenshot path]
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const [binary, screenshot = "../target/dashboard.png"] = process.argv.slice(2);
if (!binary) throw new Error("usage: node test/browser.mjs <anomaly binary> [screenshot path]");
/** The acceptance bound: an anomaly is on the page this soon after `predict` answers. */
const SHOWN_WITHIN_MS = 5000;
/** Generous bound for everything else (server start, reconnection). */
const SETUP_MS = 30_000;

const port = await new Promise((done) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address();
    probe.close(() => done(port));
  });
});
const base = `http://127.0.0.1:${port}`;
const workdir = mkdtempSync(join(tmpdir(), "anomaly-dashboard-"));
const log = join(workdir, "server.log");
let server;

function startServer() {
  const out = openSync(log, "a");
  server = spawn(resolve(binary), ["serve"], {
    cwd: workdir,
    env: { ...process.env, APP_PORT: String(port), APP_HOST: "127.0.0.1" },
    stdio: ["ignore", out, out],
  });
  return until(SETUP_MS, "the server answers /healthcheck", async () => (await fetch(`${base}/healthcheck`)).ok);
}

async function until(ms, what, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function api(path, body) {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok || answer.errors) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(answer)}`);
  return answer;
}

const series = `browser-test-${process.pid}`;
const start = Math.floor(Date.now() / 1000) - 3600;
let clock = start;
const tick = () => (clock += 60);
const predict = (value) => api(`/predict/${series}`, { timestamp: tick(), value }).then((p) => ({ ...p, timestamp: clock }));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const foreign = [];
const consoleErrors = [];
try {
  await startServer();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(base) && !url.startsWith(`ws://127.0.0.1:${port}`) && !url.startsWith("data:")) foreign.push(url);
  });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  await page.goto(`${base}/dashboard`);
  await page.evaluate(() => (window.loadedOnce = true));
  await page.waitForSelector('#link[data-state="live"]', { timeout: SETUP_MS });

  // A steady series around 10; z-score does not learn from the points it scores.
  const points = Array.from({ length: 40 }, (_, i) => ({ timestamp: tick(), value: 10 + Math.sin(i) * 0.5 }));
  await api("/graphql", {
    query: `mutation Fit($points: [PointInput!]!) {
      fit(seriesId: "${series}", points: $points, detector: { kind: ZSCORE }) { version }
    }`,
    variables: { points },
  });
  await page.click(`#series button[data-series="${series}"]`, { timeout: SETUP_MS });

  // The chart's subscription is live once a normal point shows up on it.
  async function steadyPointShown() {
    const normal = await predict(10.1);
    if (normal.anomaly) throw new Error(`10.1 should be normal: ${JSON.stringify(normal)}`);
    await page.waitForSelector(`#chart circle.point[data-timestamp="${normal.timestamp}"]`, { timeout: 1000 });
    return true;
  }
  async function anomalyShown(label) {
    const spike = await predict(1000);
    if (!spike.anomaly) throw new Error(`1000 should be anomalous: ${JSON.stringify(spike)}`);
    const since = Date.now();
    await page.waitForSelector(`#feed li[data-series="${series}"][data-timestamp="${spike.timestamp}"]`, { timeout: SHOWN_WITHIN_MS });
    await page.waitForSelector(`#chart circle.anomaly[data-timestamp="${spike.timestamp}"]`, { timeout: SHOWN_WITHIN_MS - (Date.now() - since) });
    console.log(`dashboard: ${label}: anomaly in the feed and on the chart ${Date.now() - since} ms after predict answered`);
  }

  await until(SETUP_MS, "the chart shows a live prediction", steadyPointShown);
  for (let i = 0; i < 20; i++) await predict(10 + Math.sin(i / 2) * 0.4);
  await anomalyShown("first anomaly");
  // The health panel (refreshed every 5 s) lists the series and every role of `serve`.
  await page.waitForFunction(
    () => document.querySelector('#health [data-figure="series-trained"]')?.textContent === "1",
    null,
    { timeout: SETUP_MS },
  );
  for (const role of ["gateway", "trainer", "predictor", "metrics-consumer", "training-data-consumer"]) {
    await page.locator("#health td", { hasText: new RegExp(`^${role}$`) }).waitFor({ timeout: SETUP_MS });
  }
  await page.screenshot({ path: screenshot, fullPage: true });

  server.kill("SIGKILL");
  await new Promise((r) => server.once("exit", r));
  await page.waitForSelector('#link[data-state="reconnecting"]', { timeout: SETUP_MS });
  await startServer();
  await page.waitForSelector('#link[data-state="live"]', { timeout: SETUP_MS });
  await until(SETUP_MS, "the chart shows a live prediction after the restart", steadyPointShown);
  await anomalyShown("after a server restart");

  if (!(await page.evaluate(() => window.loadedOnce === true))) throw new Error("the page reloaded");
  const entries = await page.locator(`#feed li[data-series="${series}"]`).count();
  if (entries !== 2) throw new Error(`the feed should hold 2 anomalies of ${series}, holds ${entries}`);
  if (foreign.length) throw new Error(`the page reached beyond the gateway: ${foreign.join(", ")}`);
  if (consoleErrors.length) console.log(`dashboard: console errors (expected while the server was down): ${consoleErrors.length}`);
  console.log(`dashboard: browser test passed; screenshot ${resolve(screenshot)}`);
} catch (error) {
  console.error(readFileSync(log, "utf8").split("\n").slice(-20).join("\n"));
  throw error;
} finally {
  await browser.close();
  server?.kill("SIGKILL");
}
