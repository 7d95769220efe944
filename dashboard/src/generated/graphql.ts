export type Maybe<T> = T | null;
export type InputMaybe<T> = Maybe<T>;
export type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
export type MakeOptional<T, K extends keyof T> = Omit<T, K> & { [SubKey in K]?: Maybe<T[SubKey]> };
export type MakeMaybe<T, K extends keyof T> = Omit<T, K> & { [SubKey in K]: Maybe<T[SubKey]> };
export type MakeEmpty<T extends { [key: string]: unknown }, K extends keyof T> = { [_ in K]?: never };
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
/** All built-in and custom scalars, mapped to their actual values */
export type Scalars = {
  ID: { input: string; output: string; }
  String: { input: string; output: string; }
  Boolean: { input: boolean; output: boolean; }
  Int: { input: number; output: number; }
  Float: { input: number; output: number; }
};

/** How anomalies become alerts (see the README's detection section). */
export type AlertsInput = {
  cooldownSecs: InputMaybe<Scalars['Int']['input']>;
  quietPoints: InputMaybe<Scalars['Int']['input']>;
  risingEdge: InputMaybe<Scalars['Boolean']['input']>;
};

/** A detector and its options; options left out take the documented defaults. */
export type DetectorInput = {
  alpha: InputMaybe<Scalars['Float']['input']>;
  direction: InputMaybe<Direction>;
  extremeMargin: InputMaybe<Scalars['Float']['input']>;
  kind: DetectorKind;
  maxCategories: InputMaybe<Scalars['Int']['input']>;
  maxGrowth: InputMaybe<Scalars['Float']['input']>;
  period: InputMaybe<Scalars['Int']['input']>;
  relearnAfter: InputMaybe<Scalars['Int']['input']>;
  seasonal: InputMaybe<Scalars['Boolean']['input']>;
  threshold: InputMaybe<Scalars['Float']['input']>;
  window: InputMaybe<Scalars['Int']['input']>;
};

export type DetectorKind =
  | 'ADAPTIVE'
  | 'ART'
  | 'EWMA'
  | 'ROBUST'
  | 'SEASONAL'
  | 'ZSCORE';

export type Direction =
  | 'ABOVE'
  | 'BELOW'
  | 'BOTH';

export type FitResult = {
  detector: Scalars['String']['output'];
  pointsUsed: Scalars['Int']['output'];
  seriesId: Scalars['String']['output'];
  version: Scalars['String']['output'];
};

/** Everything `/healthcheck` reports, typed. */
export type Health = {
  inferenceLatency: Latency;
  instances: Array<Instance>;
  /**
   * The most used series, at most `HEALTH_TOP_SERIES` of them (of equally used ones, the
   * smaller ids).
   */
  modelUsage: Array<SeriesUsage>;
  predictionsPerMinute: Scalars['Float']['output'];
  seriesTrained: Scalars['Int']['output'];
  trainingLatency: Latency;
  trainingsPerMinute: Scalars['Float']['output'];
};

/** A live role instance and its system figures. */
export type Instance = {
  cpuPercent: Scalars['Float']['output'];
  instance: Scalars['String']['output'];
  lastSeenMs: Scalars['Float']['output'];
  loadAvg: Array<Scalars['Float']['output']>;
  memoryPercent: Scalars['Float']['output'];
  role: Scalars['String']['output'];
};

export type Latency = {
  avgMs: Scalars['Float']['output'];
  p95Ms: Scalars['Float']['output'];
};

export type Model = {
  /** When it was trained, in Unix milliseconds. */
  createdAtMs: Scalars['Float']['output'];
  detector: Scalars['String']['output'];
  pointsUsed: Scalars['Int']['output'];
  seriesId: Scalars['String']['output'];
  /**
   * The points it was trained on, in time order, a page at a time: `first` points (at most
   * 10000) after skipping `offset`. `pointsUsed` says how many there are.
   */
  trainingData: Array<Point>;
  version: Scalars['String']['output'];
};


export type ModelTrainingDataArgs = {
  first?: Scalars['Int']['input'];
  offset?: Scalars['Int']['input'];
};

export type MutationRoot = {
  /** Removes a webhook endpoint and its delivery log. */
  deleteWebhook: Scalars['Boolean']['output'];
  /** Trains the series' next model version on `points` (at least 3, not all equal). */
  fit: FitResult;
  /** Scores one point against the series' newest model (and learns from it). */
  predict: Prediction;
  /** Scores `points` of one series in the order given, each learning from the ones before. */
  predictBatch: Array<Prediction>;
  /**
   * Registers a webhook endpoint: every alert is POSTed to `url`, signed (Standard
   * Webhooks) with `secret` (`whsec_<base64>`; made up when left out, and shown only here).
   */
  registerWebhook: RegisteredWebhook;
  /** Sends a delivery again now (same message id, a new signature); its attempt is logged. */
  replayWebhookDelivery: WebhookDelivery;
};


export type MutationRootDeleteWebhookArgs = {
  id: Scalars['ID']['input'];
};


export type MutationRootFitArgs = {
  alerts: InputMaybe<AlertsInput>;
  detector: InputMaybe<DetectorInput>;
  points: Array<PointInput>;
  seriesId: Scalars['String']['input'];
};


export type MutationRootPredictArgs = {
  point: PointInput;
  seriesId: Scalars['String']['input'];
};


export type MutationRootPredictBatchArgs = {
  points: Array<PointInput>;
  seriesId: Scalars['String']['input'];
};


export type MutationRootRegisterWebhookArgs = {
  secret: InputMaybe<Scalars['String']['input']>;
  url: Scalars['String']['input'];
};


export type MutationRootReplayWebhookDeliveryArgs = {
  deliveryId: Scalars['ID']['input'];
  webhookId: Scalars['ID']['input'];
};

/** Information about pagination in a connection */
export type PageInfo = {
  /** When paginating forwards, the cursor to continue. */
  endCursor: Maybe<Scalars['String']['output']>;
  /** When paginating forwards, are there more items? */
  hasNextPage: Scalars['Boolean']['output'];
  /** When paginating backwards, are there more items? */
  hasPreviousPage: Scalars['Boolean']['output'];
  /** When paginating backwards, the cursor to continue. */
  startCursor: Maybe<Scalars['String']['output']>;
};

/** A point of a series: Unix time in seconds and a finite value. */
export type Point = {
  timestamp: Scalars['Int']['output'];
  value: Scalars['Float']['output'];
};

export type PointInput = {
  timestamp: Scalars['Int']['input'];
  value: Scalars['Float']['input'];
};

/** A scored point: the verdict and its evidence. */
export type Prediction = {
  /** Whether the anomaly raised an alert (after rising-edge and cooldown suppression). */
  alert: Scalars['Boolean']['output'];
  /**
   * `score` > 1: the value lies outside the band on a watched side, or (`art`) its pattern
   * is novel.
   */
  anomaly: Scalars['Boolean']['output'];
  /** The scored point's event id: resume `anomalies` after it, or page the stored alerts from it. */
  cursor: Scalars['String']['output'];
  detector: Scalars['String']['output'];
  expected: Scalars['Float']['output'];
  lower: Maybe<Scalars['Float']['output']>;
  modelVersion: Scalars['String']['output'];
  /** At most 1 is normal, above 1 anomalous. */
  score: Scalars['Float']['output'];
  seriesId: Scalars['String']['output'];
  timestamp: Scalars['Int']['output'];
  upper: Maybe<Scalars['Float']['output']>;
  value: Scalars['Float']['output'];
};

export type PredictionConnection = {
  /** A list of edges. */
  edges: Array<PredictionEdge>;
  /** A list of nodes. */
  nodes: Array<Prediction>;
  /** Information to aid in pagination. */
  pageInfo: PageInfo;
};

/** An edge in a connection. */
export type PredictionEdge = {
  /** A cursor for use in pagination */
  cursor: Scalars['String']['output'];
  /** The item at the end of the edge */
  node: Prediction;
};

export type QueryRoot = {
  /**
   * Stored alerts, newest first, of one series or all: `first` at most 100, `after` the
   * cursor of the last alert of the previous page (older ones follow), `since` a Unix time
   * in seconds (only alerts raised at or after it).
   */
  anomalies: PredictionConnection;
  /** Latencies, throughput, usage and every live role instance. */
  health: Health;
  /** One model version (`version` like `v2`), or null. */
  model: Maybe<Model>;
  /**
   * The series' latest scored points this gateway has seen, newest first (`first` at most
   * 100). The gateway remembers the last `LIVE_RECENT_EVENTS` of all series from when the
   * predictions feed started: at its first `predictions` subscription or this query.
   */
  recentPredictions: Array<Prediction>;
  /** A trained series, or null if it has no model. */
  series: Maybe<Series>;
  /** Trained series in id order, a page at a time (`first` at most 100; `after` a cursor). */
  seriesList: SeriesConnection;
  /** A webhook endpoint's delivery log, newest first (`first` at most 1000). */
  webhookDeliveries: Array<WebhookDelivery>;
  /** The registered webhook endpoints, oldest first. */
  webhooks: Array<Webhook>;
};


export type QueryRootAnomaliesArgs = {
  after: InputMaybe<Scalars['String']['input']>;
  first?: Scalars['Int']['input'];
  seriesId: InputMaybe<Scalars['String']['input']>;
  since: InputMaybe<Scalars['Int']['input']>;
};


export type QueryRootModelArgs = {
  seriesId: Scalars['String']['input'];
  version: Scalars['String']['input'];
};


export type QueryRootRecentPredictionsArgs = {
  first?: Scalars['Int']['input'];
  seriesId: Scalars['String']['input'];
};


export type QueryRootSeriesArgs = {
  id: Scalars['String']['input'];
};


export type QueryRootSeriesListArgs = {
  after: InputMaybe<Scalars['String']['input']>;
  first?: Scalars['Int']['input'];
};


export type QueryRootWebhookDeliveriesArgs = {
  first?: Scalars['Int']['input'];
  webhookId: Scalars['ID']['input'];
};

/** A newly registered endpoint, with the secret its receiver verifies signatures with. */
export type RegisteredWebhook = {
  /** When it was registered (RFC 3339). */
  createdAt: Scalars['String']['output'];
  id: Scalars['ID']['output'];
  /** `whsec_` and the base64 of the key: shown this once. */
  secret: Scalars['String']['output'];
  url: Scalars['String']['output'];
};

/** A series and its model versions. */
export type Series = {
  id: Scalars['String']['output'];
  /** The newest version, the one `predict` uses. */
  latest: Maybe<Model>;
  /** Every version, oldest first. */
  models: Array<Model>;
};

export type SeriesConnection = {
  /** A list of edges. */
  edges: Array<SeriesEdge>;
  /** A list of nodes. */
  nodes: Array<Series>;
  /** Information to aid in pagination. */
  pageInfo: PageInfo;
};

/** An edge in a connection. */
export type SeriesEdge = {
  /** A cursor for use in pagination */
  cursor: Scalars['String']['output'];
  /** The item at the end of the edge */
  node: Series;
};

export type SeriesUsage = {
  predictions: Scalars['Int']['output'];
  seriesId: Scalars['String']['output'];
};

export type SubscriptionRoot = {
  /**
   * Alerts as they happen, of one series or all; `minScore` drops weaker ones. With `after`
   * (an event's `cursor`), the alerts raised after it are replayed first, oldest first, then
   * live ones follow with none twice. A subscriber that falls behind gets an error coded
   * `LAGGED` (with `missed`), and its subscription carries on.
   */
  anomalies: Prediction;
  /** Every scored point of one series as it happens. */
  predictions: Prediction;
};


export type SubscriptionRootAnomaliesArgs = {
  after: InputMaybe<Scalars['String']['input']>;
  minScore: InputMaybe<Scalars['Float']['input']>;
  seriesId: InputMaybe<Scalars['String']['input']>;
};


export type SubscriptionRootPredictionsArgs = {
  seriesId: Scalars['String']['input'];
};

/** A registered webhook endpoint (its secret is shown only when it is registered). */
export type Webhook = {
  /** When it was registered (RFC 3339). */
  createdAt: Scalars['String']['output'];
  id: Scalars['ID']['output'];
  url: Scalars['String']['output'];
};

/** One delivery attempt: the HTTP status it was answered with, or why there was none. */
export type WebhookAttempt = {
  /** When it was sent (RFC 3339). */
  at: Scalars['String']['output'];
  error: Maybe<Scalars['String']['output']>;
  status: Maybe<Scalars['Int']['output']>;
};

/** One message to one endpoint and every attempt to deliver it. */
export type WebhookDelivery = {
  attempts: Array<WebhookAttempt>;
  /** When the alert was handed to the endpoint (RFC 3339). */
  createdAt: Scalars['String']['output'];
  /** Whether an attempt was answered 2xx. */
  delivered: Scalars['Boolean']['output'];
  /** The message id: the `webhook-id` header of every attempt. */
  id: Scalars['ID']['output'];
  /** The JSON body sent. */
  payload: Scalars['String']['output'];
  webhookId: Scalars['ID']['output'];
};

export type ScoredPointFragment = { cursor: string, seriesId: string, timestamp: number, value: number, expected: number, lower: number | null, upper: number | null, score: number, anomaly: boolean, alert: boolean, detector: string, modelVersion: string };

export type SeriesListQueryVariables = Exact<{
  first: Scalars['Int']['input'];
  after: InputMaybe<Scalars['String']['input']>;
}>;


export type SeriesListQuery = { seriesList: { nodes: Array<{ id: string, models: Array<{ version: string, detector: string, pointsUsed: number, createdAtMs: number }> }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type HealthQueryVariables = Exact<{ [key: string]: never; }>;


export type HealthQuery = { health: { seriesTrained: number, predictionsPerMinute: number, trainingsPerMinute: number, inferenceLatency: { avgMs: number, p95Ms: number }, trainingLatency: { avgMs: number, p95Ms: number }, instances: Array<{ role: string, instance: string, cpuPercent: number, memoryPercent: number, loadAvg: Array<number>, lastSeenMs: number }> } };

export type AnomaliesSubscriptionVariables = Exact<{
  minScore: InputMaybe<Scalars['Float']['input']>;
  after: InputMaybe<Scalars['String']['input']>;
}>;


export type AnomaliesSubscription = { anomalies: { cursor: string, seriesId: string, timestamp: number, value: number, expected: number, lower: number | null, upper: number | null, score: number, anomaly: boolean, alert: boolean, detector: string, modelVersion: string } };

export type PredictionsSubscriptionVariables = Exact<{
  seriesId: Scalars['String']['input'];
}>;


export type PredictionsSubscription = { predictions: { cursor: string, seriesId: string, timestamp: number, value: number, expected: number, lower: number | null, upper: number | null, score: number, anomaly: boolean, alert: boolean, detector: string, modelVersion: string } };

export type StoredAnomaliesQueryVariables = Exact<{
  first: Scalars['Int']['input'];
}>;


export type StoredAnomaliesQuery = { anomalies: { nodes: Array<{ cursor: string, seriesId: string, timestamp: number, value: number, expected: number, lower: number | null, upper: number | null, score: number, anomaly: boolean, alert: boolean, detector: string, modelVersion: string }> } };

export type RecentPredictionsQueryVariables = Exact<{
  seriesId: Scalars['String']['input'];
  first: Scalars['Int']['input'];
}>;


export type RecentPredictionsQuery = { recentPredictions: Array<{ cursor: string, seriesId: string, timestamp: number, value: number, expected: number, lower: number | null, upper: number | null, score: number, anomaly: boolean, alert: boolean, detector: string, modelVersion: string }> };
