// The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
// `anomaly serve`: an alert raised before the page opened is shown from the store; a series is
// fitted and an anomalous point predicted through the API, and the page must show it in the feed
// and on the chart within 5 seconds without reloading; then the server is killed and restarted,
// an alert is raised before the page has reconnected, and the page must show it once it has,
// exactly once, and then the next live anomaly.
//
//   node test/browser.mjs <anomaly binary> [screenshot path]
import { resolve } from "node:path";

import { SETUP_MS, launchBrowser, server, until, watchedPage } from "./harness.mjs";

const [binary, screenshot = "../target/dashboard.png"] = process.argv.slice(2);
if (!binary) throw new Error("usage: node test/browser.mjs <anomaly binary> [screenshot path]");
/** The acceptance bound: an anomaly is on the page this soon after `predict` answers. */
const SHOWN_WITHIN_MS = 5000;

const gateway = await server(binary, "dashboard");
const base = gateway.base;

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

const browser = await launchBrowser();
let consoleErrors = [];
try {
  await gateway.start();
  // A steady series around 10; z-score does not learn from the points it scores.
  const points = Array.from({ length: 40 }, (_, i) => ({ timestamp: tick(), value: 10 + Math.sin(i) * 0.5 }));
  await api("/graphql", {
    query: `mutation Fit($points: [PointInput!]!) {
      fit(seriesId: "${series}", points: $points, detector: { kind: ZSCORE }) { version }
    }`,
    variables: { points },
  });
  const before = await predict(1000);
  if (!before.alert) throw new Error(`1000 should raise an alert: ${JSON.stringify(before)}`);
  await predict(10.1);

  const watched = await watchedPage(browser, gateway);
  const { page, foreign } = watched;
  consoleErrors = watched.consoleErrors;
  await page.goto(`${base}/dashboard`);
  await page.evaluate(() => (window.loadedOnce = true));
  await page.waitForSelector('#link[data-state="live"]', { timeout: SETUP_MS });
  await page.waitForSelector(`#feed li[data-series="${series}"][data-timestamp="${before.timestamp}"]`, { timeout: SETUP_MS });
  console.log("dashboard: an alert stored before the page opened is in the feed");

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

  await gateway.kill();
  await page.waitForSelector('#link[data-state="reconnecting"]', { timeout: SETUP_MS });
  await gateway.start();
  // Raised while the page is still disconnected (its retries wait at least half a second).
  const missed = await predict(1000);
  if (!missed.alert) throw new Error(`1000 should raise an alert after the restart: ${JSON.stringify(missed)}`);
  const stillAway = await page.evaluate(() => document.querySelector("#link")?.dataset.state !== "live");
  await predict(10.1);
  await page.waitForSelector('#link[data-state="live"]', { timeout: SETUP_MS });
  const missedEntry = `#feed li[data-series="${series}"][data-timestamp="${missed.timestamp}"]`;
  await page.waitForSelector(missedEntry, { timeout: SETUP_MS });
  console.log(`dashboard: an alert raised while the page was ${stillAway ? "disconnected" : "reconnecting"} is in the feed after the reconnection`);
  await until(SETUP_MS, "the chart shows a live prediction after the restart", steadyPointShown);
  await anomalyShown("after a server restart");

  if (!(await page.evaluate(() => window.loadedOnce === true))) throw new Error("the page reloaded");
  const once = await page.locator(missedEntry).count();
  if (once !== 1) throw new Error(`the alert raised while disconnected is shown ${once} times`);
  const entries = await page.locator(`#feed li[data-series="${series}"]`).count();
  if (entries !== 4) throw new Error(`the feed should hold 4 anomalies of ${series}, holds ${entries}`);
  if (foreign.length) throw new Error(`the page reached beyond the gateway: ${foreign.join(", ")}`);
  if (consoleErrors.length) console.log(`dashboard: console errors (expected while the server was down): ${consoleErrors.length}`);
  console.log(`dashboard: browser test passed; screenshot ${resolve(screenshot)}`);
} catch (error) {
  console.error(gateway.logTail());
  throw error;
} finally {
  await browser.close();
  await gateway.kill();
}
