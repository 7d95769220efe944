// The page's panels, each a function from data to DOM: the series list, the anomaly feed, the
// health panel. They own no state; main.ts decides what they show.
import type { HealthQuery, ScoredPointFragment, SeriesListQuery } from "./generated/graphql";
import { el, round, timeOf } from "./dom";

export type SeriesNode = SeriesListQuery["seriesList"]["nodes"][number];

export function seriesList(
  container: HTMLElement,
  series: SeriesNode[],
  selected: string | null,
  choose: (id: string) => void,
): void {
  if (series.length === 0) {
    container.replaceChildren(el("p", { class: "muted" }, "No trained series yet: fit one (POST /fit/{series_id} or the fit mutation)."));
    return;
  }
  container.replaceChildren(
    ...series.map((s) => {
      const latest = s.models[s.models.length - 1];
      const item = el(
        "button",
        { type: "button", class: s.id === selected ? "series selected" : "series", "data-series": s.id },
        el("span", { class: "series-id" }, s.id),
        el(
          "span",
          { class: "muted" },
          latest ? `${s.models.map((m) => m.version).join(" · ")} — ${latest.detector}, ${latest.pointsUsed} points` : "no model",
        ),
      );
      item.addEventListener("click", () => choose(s.id));
      return item;
    }),
  );
}

export function feedEntry(point: ScoredPointFragment, choose: (id: string) => void): HTMLElement {
  const series = el("button", { type: "button", class: "link", "data-series": point.seriesId }, point.seriesId);
  series.addEventListener("click", () => choose(point.seriesId));
  const band =
    point.lower !== null || point.upper !== null
      ? `band ${point.lower === null ? "−∞" : round(point.lower)} … ${point.upper === null ? "∞" : round(point.upper)}`
      : "";
  return el(
    "li",
    { class: "anomaly-entry", "data-series": point.seriesId, "data-timestamp": String(point.timestamp) },
    el("time", {}, timeOf(point.timestamp)),
    series,
    el("span", { class: "value" }, `value ${round(point.value)}`),
    el("span", { class: "muted" }, `expected ${round(point.expected)} ${band}`),
    el("span", { class: "score" }, `score ${round(point.score)}`),
  );
}

function figure(name: string, label: string, value: string): HTMLElement {
  return el("div", { class: "figure" }, el("span", { class: "muted" }, label), el("span", { "data-figure": name }, value));
}

function latency(label: string, figures: { avgMs: number; p95Ms: number }): HTMLElement {
  return figure(`${label}-latency`, `${label} latency`, `${round(figures.avgMs, 3)} ms avg · ${round(figures.p95Ms, 3)} ms p95`);
}

export function health(container: HTMLElement, data: HealthQuery["health"]): void {
  const now = Date.now();
  const instances = [...data.instances].sort((a, b) => a.role.localeCompare(b.role) || a.instance.localeCompare(b.instance));
  container.replaceChildren(
    el(
      "div",
      { class: "figures" },
      figure("series-trained", "series trained", String(data.seriesTrained)),
      figure("predictions-per-minute", "predictions / min", round(data.predictionsPerMinute, 1)),
      figure("trainings-per-minute", "trainings / min", round(data.trainingsPerMinute, 1)),
      latency("inference", data.inferenceLatency),
      latency("training", data.trainingLatency),
    ),
    el(
      "table",
      { class: "instances" },
      el("thead", {}, el("tr", {}, ...["role", "instance", "cpu %", "memory %", "load", "last seen"].map((h) => el("th", {}, h)))),
      el(
        "tbody",
        {},
        ...instances.map((i) =>
          el(
            "tr",
            {},
            el("td", {}, i.role),
            el("td", { class: "muted" }, i.instance),
            el("td", {}, round(i.cpuPercent, 1)),
            el("td", {}, round(i.memoryPercent, 1)),
            el("td", {}, i.loadAvg.map((l) => round(l)).join(" ")),
            el("td", {}, `${round(Math.max(0, now - i.lastSeenMs) / 1000, 0)} s ago`),
          ),
        ),
      ),
    ),
  );
}
