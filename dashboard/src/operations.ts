// Every GraphQL operation the dashboard sends. graphql-codegen reads this file (the
// `/* GraphQL */` markers) and generates their result and variable types into
// generated/graphql.ts; `operation` pairs each document with those types.
import type {
  AnomaliesSubscription,
  AnomaliesSubscriptionVariables,
  HealthQuery,
  HealthQueryVariables,
  PredictionsSubscription,
  PredictionsSubscriptionVariables,
  RecentPredictionsQuery,
  RecentPredictionsQueryVariables,
  StoredAnomaliesQuery,
  StoredAnomaliesQueryVariables,
  SeriesListQuery,
  SeriesListQueryVariables,
} from "./generated/graphql";

/** A document with the types of its result and variables attached. */
export interface Operation<TData, TVariables> {
  readonly query: string;
  /** Never set: carries the types only. */
  readonly types?: { data: TData; variables: TVariables };
}

/** `fragments` are appended to the document, which uses them by name. */
function operation<TData, TVariables>(
  query: string,
  ...fragments: string[]
): Operation<TData, TVariables> {
  return { query: [query, ...fragments].join("\n") };
}

/** What the chart and the feed show of a scored point. */
const scoredPoint = /* GraphQL */ `
  fragment ScoredPoint on Prediction {
    cursor
    seriesId
    timestamp
    value
    expected
    lower
    upper
    score
    anomaly
    alert
    detector
    modelVersion
  }
`;

export const seriesList = operation<SeriesListQuery, SeriesListQueryVariables>(/* GraphQL */ `
  query SeriesList($first: Int!, $after: String) {
    seriesList(first: $first, after: $after) {
      nodes {
        id
        models {
          version
          detector
          pointsUsed
          createdAtMs
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const health = operation<HealthQuery, HealthQueryVariables>(/* GraphQL */ `
  query Health {
    health {
      seriesTrained
      predictionsPerMinute
      trainingsPerMinute
      inferenceLatency {
        avgMs
        p95Ms
      }
      trainingLatency {
        avgMs
        p95Ms
      }
      instances {
        role
        instance
        cpuPercent
        memoryPercent
        loadAvg
        lastSeenMs
      }
    }
  }
`);

export const anomalies = operation<AnomaliesSubscription, AnomaliesSubscriptionVariables>(
  /* GraphQL */ `
    subscription Anomalies($minScore: Float, $after: String) {
      anomalies(minScore: $minScore, after: $after) {
        ...ScoredPoint
      }
    }
  `,
  scoredPoint,
);

export const predictions = operation<PredictionsSubscription, PredictionsSubscriptionVariables>(
  /* GraphQL */ `
    subscription Predictions($seriesId: String!) {
      predictions(seriesId: $seriesId) {
        ...ScoredPoint
      }
    }
  `,
  scoredPoint,
);

export const storedAnomalies = operation<StoredAnomaliesQuery, StoredAnomaliesQueryVariables>(
  /* GraphQL */ `
    query StoredAnomalies($first: Int!) {
      anomalies(first: $first) {
        nodes {
          ...ScoredPoint
        }
      }
    }
  `,
  scoredPoint,
);

export const recentPredictions = operation<RecentPredictionsQuery, RecentPredictionsQueryVariables>(
  /* GraphQL */ `
    query RecentPredictions($seriesId: String!, $first: Int!) {
      recentPredictions(seriesId: $seriesId, first: $first) {
        ...ScoredPoint
      }
    }
  `,
  scoredPoint,
);
