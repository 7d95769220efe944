// The dashboard page: wires the gateway (queries, one subscription socket) to the panels. State:
// the chosen series (in the URL hash, `#series=<id>`), the anomaly feed, the chart's points.
import "./style.css";
import { GatewayError, query, storeToken, storedToken, subscribe, subscriptions, type LinkState } from "./api";
import { Chart } from "./chart";
import { byId } from "./dom";
import type { ScoredPointFragment, SeriesListQuery } from "./generated/graphql";
import * as ops from "./operations";
import * as panels from "./panels";

const FEED_CAPACITY = 100;
const SERIES_REFRESH_MS = 3000;
const HEALTH_REFRESH_MS = 5000;
/** Pages of the series list fetched at most (100 series each). */
const SERIES_PAGES = 10;

const link = byId("link");
const seriesPanel = byId("series");
const feed = byId("feed");
const healthPanel = byId("health");
const chosenTitle = byId("chosen");
const notice = byId("notice");
const chart = new Chart(byId("chart"));

let series: panels.SeriesNode[] = [];
let chosen: string | null = null;
let stopPredictions: (() => void) | null = null;
/** The newest alerts (stored ones, then live), newest first: the feed, and the chart's anomalies. */
const alerts: ScoredPointFragment[] = [];
/** Cursors of the alerts shown: a replayed alert is never shown twice. */
const shown = new Set<string>();
/**
 * The anomalies subscription's variables. graphql-ws sends this object again on every
 * reconnection, so keeping `after` at the newest alert's cursor resumes from it: alerts raised
 * while the page was disconnected are replayed, once.
 */
const anomalyVariables: { minScore: number | null; after: string | null } = { minScore: null, after: null };

function showLink(state: LinkState): void {
  const text: Record<LinkState, string> = {
    connecting: "connecting…",
    live: "live",
    reconnecting: "reconnecting…",
    unauthorized: "token refused",
  };
  link.textContent = text[state];
  link.dataset.state = state;
}

function showError(error: unknown): void {
  if (error instanceof GatewayError && error.unauthenticated) {
    notice.textContent = "The gateway needs an API token: use the token button.";
  } else {
    notice.textContent = error instanceof Error ? error.message : String(error);
  }
  notice.hidden = false;
}

function clearError(): void {
  notice.hidden = true;
}

const client = subscriptions(showLink);

function choose(id: string): void {
  if (location.hash !== `#series=${encodeURIComponent(id)}`) {
    location.hash = `series=${encodeURIComponent(id)}`; // hashchange calls back here
    return;
  }
  if (id === chosen) return;
  chosen = id;
  chosenTitle.textContent = id;
  stopPredictions?.();
  chart.clear();
  for (const alert of alerts) if (alert.seriesId === id) chart.add(alert);
  stopPredictions = subscribe(client, ops.predictions, { seriesId: id }, (data) => chart.add(data.predictions));
  // The series' latest points the gateway remembers, oldest first, beside the live ones.
  query(ops.recentPredictions, { seriesId: id, first: 100 })
    .then((data) => {
      if (chosen === id) for (const point of [...data.recentPredictions].reverse()) chart.add(point);
    })
    .catch(showError);
  panels.seriesList(seriesPanel, series, chosen, choose);
}

function chosenFromHash(): string | null {
  const match = /^#series=(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

async function refreshSeries(): Promise<void> {
  const nodes: panels.SeriesNode[] = [];
  let after: string | null = null;
  for (let page = 0; page < SERIES_PAGES; page++) {
    const data: SeriesListQuery = await query(ops.seriesList, { first: 100, after });
    nodes.push(...data.seriesList.nodes);
    if (!data.seriesList.pageInfo.hasNextPage) break;
    after = data.seriesList.pageInfo.endCursor;
  }
  series = nodes;
  panels.seriesList(seriesPanel, series, chosen, choose);
  if (chosen === null && series.length > 0) choose(chosenFromHash() ?? series[0].id);
}

async function refreshHealth(): Promise<void> {
  const data = await query(ops.health, {});
  panels.health(healthPanel, data.health);
}

/** Runs `task` now and every `ms`, showing its failures without stopping. */
function every(ms: number, task: () => Promise<void>): void {
  const run = () =>
    task()
      .then(clearError)
      .catch(showError)
      .finally(() => setTimeout(run, ms));
  void run();
}

function onAlert(point: ScoredPointFragment): void {
  if (shown.has(point.cursor)) return;
  shown.add(point.cursor);
  if (anomalyVariables.after === null || point.cursor > anomalyVariables.after) anomalyVariables.after = point.cursor;
  alerts.unshift(point);
  if (alerts.length > FEED_CAPACITY) alerts.pop();
  feed.prepend(panels.feedEntry(point, choose));
  while (feed.children.length > FEED_CAPACITY) feed.lastElementChild?.remove();
  if (point.seriesId === chosen) chart.add(point);
  if (!series.some((s) => s.id === point.seriesId)) void refreshSeries().catch(showError);
}

byId("token").addEventListener("click", () => {
  const token = prompt("API token (empty to forget it)", storedToken());
  if (token === null) return;
  storeToken(token.trim());
  location.reload();
});

window.addEventListener("hashchange", () => {
  const id = chosenFromHash();
  if (id !== null) choose(id);
});

/** The stored alerts first (oldest to newest), then live ones from the newest stored cursor. */
async function openFeed(): Promise<void> {
  try {
    const stored = await query(ops.storedAnomalies, { first: FEED_CAPACITY });
    for (const point of [...stored.anomalies.nodes].reverse()) onAlert(point);
  } catch (error) {
    showError(error);
  }
  subscribe(client, ops.anomalies, anomalyVariables, (data) => onAlert(data.anomalies));
}

showLink("connecting");
void openFeed();
const fromHash = chosenFromHash();
if (fromHash !== null) choose(fromHash);
every(SERIES_REFRESH_MS, refreshSeries);
every(HEALTH_REFRESH_MS, refreshHealth);
