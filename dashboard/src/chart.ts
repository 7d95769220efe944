// The live chart of one series: its scored points (value line), the expected value, the band
// between lower and upper, and anomalies marked. Plain SVG, redrawn on every point (a few hundred
// points at most), sized to its container.
import type { ScoredPointFragment } from "./generated/graphql";

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 280;
const MARGIN = { top: 12, right: 16, bottom: 28, left: 64 };
/** The chart keeps this many newest points. */
export const CHART_CAPACITY = 300;

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function formatValue(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e6 || magnitude < 1e-3)) return value.toExponential(2);
  return Number(value.toPrecision(4)).toString();
}

function formatTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(11, 19);
}

export class Chart {
  private points: ScoredPointFragment[] = [];
  private readonly root: SVGSVGElement;

  constructor(private readonly container: HTMLElement) {
    this.root = svg("svg", { class: "chart", role: "img", "aria-label": "live predictions" });
    container.replaceChildren(this.root);
    new ResizeObserver(() => this.draw()).observe(container);
    this.draw();
  }

  /** Forgets every point (another series was chosen). */
  clear(): void {
    this.points = [];
    this.draw();
  }

  /** Adds a point, in timestamp order; a point already shown (same timestamp) is replaced. */
  add(point: ScoredPointFragment): void {
    const at = this.points.findIndex((p) => p.timestamp >= point.timestamp);
    if (at === -1) this.points.push(point);
    else if (this.points[at].timestamp === point.timestamp) this.points[at] = point;
    else this.points.splice(at, 0, point);
    if (this.points.length > CHART_CAPACITY) this.points.splice(0, this.points.length - CHART_CAPACITY);
    this.draw();
  }

  private draw(): void {
    const width = Math.max(this.container.clientWidth, 320);
    this.root.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
    this.root.setAttribute("width", String(width));
    this.root.setAttribute("height", String(HEIGHT));
    const children: SVGElement[] = [];
    const points = this.points;
    if (points.length === 0) {
      const empty = svg("text", { x: width / 2, y: HEIGHT / 2, class: "empty", "text-anchor": "middle" });
      empty.textContent = "waiting for predictions of this series…";
      this.root.replaceChildren(empty);
      return;
    }

    // The scale fits the bands and the normal points; an anomaly far outside them is pinned to
    // the edge (its tooltip keeps the true value), so one spike does not flatten the band.
    const normal = points.flatMap((p) => [p.expected, p.lower ?? p.expected, p.upper ?? p.expected, ...(p.anomaly ? [] : [p.value])]);
    let low = Math.min(...normal);
    let high = Math.max(...normal);
    if (high === low) [low, high] = [low - 1, high + 1];
    const span = high - low;
    for (const p of points) {
      if (p.anomaly && p.value > high && p.value <= high + 2 * span) high = p.value;
      if (p.anomaly && p.value < low && p.value >= low - 2 * span) low = p.value;
    }
    const pad = (high - low) * 0.05;
    [low, high] = [low - pad, high + pad];
    const pinned = (v: number) => Math.min(Math.max(v, low), high);
    const first = points[0].timestamp;
    const last = points[points.length - 1].timestamp;
    const plotWidth = width - MARGIN.left - MARGIN.right;
    const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
    const x = (t: number) =>
      MARGIN.left + (last === first ? plotWidth / 2 : ((t - first) / (last - first)) * plotWidth);
    const y = (v: number) => MARGIN.top + (1 - (pinned(v) - low) / (high - low)) * plotHeight;
    const line = (pick: (p: ScoredPointFragment) => number) =>
      points.map((p, i) => `${i === 0 ? "M" : "L"}${x(p.timestamp).toFixed(1)},${y(pick(p)).toFixed(1)}`).join("");

    for (const fraction of [0, 0.5, 1]) {
      const value = low + fraction * (high - low);
      children.push(svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(value), y2: y(value), class: "grid" }));
      const label = svg("text", { x: MARGIN.left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis" });
      label.textContent = formatValue(value);
      children.push(label);
    }
    for (const [t, anchor] of [[first, "start"], [last, "end"]] as const) {
      const label = svg("text", { x: x(t), y: HEIGHT - 8, "text-anchor": anchor, class: "axis" });
      label.textContent = formatTime(t);
      children.push(label);
    }

    const banded = points.filter((p) => p.lower !== null || p.upper !== null);
    if (banded.length > 0) {
      const upper = banded.map((p) => `${x(p.timestamp).toFixed(1)},${y(p.upper ?? high).toFixed(1)}`);
      const lower = banded.map((p) => `${x(p.timestamp).toFixed(1)},${y(p.lower ?? low).toFixed(1)}`).reverse();
      children.push(svg("polygon", { points: [...upper, ...lower].join(" "), class: "band" }));
    }
    children.push(svg("path", { d: line((p) => p.expected), class: "expected" }));
    children.push(svg("path", { d: line((p) => p.value), class: "value" }));
    for (const p of points) {
      const marker = svg("circle", {
        cx: x(p.timestamp),
        cy: y(p.value),
        r: p.anomaly ? 5 : 2,
        class: [p.anomaly ? "anomaly" : "point", pinned(p.value) !== p.value ? "off-scale" : ""].join(" ").trim(),
        "data-timestamp": p.timestamp,
      });
      const title = svg("title", {});
      title.textContent = `${formatTime(p.timestamp)}  value ${formatValue(p.value)}  expected ${formatValue(p.expected)}  score ${p.score.toFixed(2)}`;
      marker.append(title);
      children.push(marker);
    }
    this.root.replaceChildren(...children);
  }
}
