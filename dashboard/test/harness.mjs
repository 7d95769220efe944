// What the browser tests share: a free port, an `anomaly serve` process in its own directory
// (restartable), Debian's Chromium through playwright-core, and a page watcher that records every
// request leaving the gateway and every console error (a CSP violation is one).
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

/** Generous bound for setup steps (server start, page load, reconnection). */
export const SETUP_MS = 30_000;

/** Polls `check` until it returns true, failing after `ms`. */
export async function until(ms, what, check) {
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

async function freePort() {
  return new Promise((done) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/** `anomaly serve` on a free port; `start()` (again after `kill()`) waits until it answers. */
export async function server(binary, name) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const workdir = mkdtempSync(join(tmpdir(), `anomaly-${name}-`));
  const log = join(workdir, "server.log");
  let child;
  return {
    port,
    base,
    async start() {
      const out = openSync(log, "a");
      child = spawn(resolve(binary), ["serve"], {
        cwd: workdir,
        env: { ...process.env, APP_PORT: String(port), APP_HOST: "127.0.0.1" },
        stdio: ["ignore", out, out],
      });
      await until(SETUP_MS, "the server answers /healthcheck", async () => (await fetch(`${base}/healthcheck`)).ok);
    },
    async kill() {
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    },
    logTail() {
      return readFileSync(log, "utf8").split("\n").slice(-20).join("\n");
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

/** A page of `browser` whose requests beyond `gateway` and console errors are recorded. */
export async function watchedPage(browser, gateway) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const foreign = [];
  const consoleErrors = [];
  page.on("request", (request) => {
    const url = request.url();
    const own = url.startsWith(gateway.base) || url.startsWith(`ws://127.0.0.1:${gateway.port}`);
    if (!own && !url.startsWith("data:")) foreign.push(url);
  });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  return { page, foreign, consoleErrors };
}
