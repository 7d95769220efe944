// How the dashboard talks to the gateway: queries over HTTP POST /graphql, subscriptions over
// graphql-transport-ws on /graphql/ws with endless reconnection (capped backoff), and the optional
// API token (kept in localStorage, sent as `Authorization: Bearer` and in `connection_init`).
import { createClient, type Client } from "graphql-ws";
import type { Operation } from "./operations";

const TOKEN_KEY = "anomaly.apiToken";

export type LinkState = "connecting" | "live" | "reconnecting" | "unauthorized";

/** An error the gateway answered; `unauthenticated` when it wants a token. */
export class GatewayError extends Error {
  constructor(
    message: string,
    readonly unauthenticated: boolean,
  ) {
    super(message);
  }
}

export function storedToken(): string {
  return localStorage.getItem(TOKEN_KEY) ?? "";
}

export function storeToken(token: string): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

function authorization(): Record<string, string> {
  const token = storedToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

interface GraphQLResponse<TData> {
  data?: TData | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** Runs a query; throws a GatewayError for transport and GraphQL errors alike. */
export async function query<TData, TVariables>(
  op: Operation<TData, TVariables>,
  variables: TVariables,
): Promise<TData> {
  let response: Response;
  try {
    response = await fetch(new URL("/graphql", location.href), {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json, application/json",
        ...authorization(),
      },
      body: JSON.stringify({ query: op.query, variables }),
    });
  } catch {
    throw new GatewayError("the gateway is unreachable", false);
  }
  let body: GraphQLResponse<TData>;
  try {
    body = (await response.json()) as GraphQLResponse<TData>;
  } catch {
    throw new GatewayError(`the gateway answered ${response.status}`, false);
  }
  const error = body.errors?.[0];
  if (error || body.data == null) {
    const unauthenticated = error?.extensions?.code === "UNAUTHENTICATED";
    throw new GatewayError(error?.message ?? `the gateway answered ${response.status}`, unauthenticated);
  }
  return body.data;
}

/** Close code the gateway uses when `connection_init` lacks a valid token. */
const FORBIDDEN = 4403;

/** Waits 0.5 s, 1 s, 2 s, … up to 5 s (plus jitter) between reconnection attempts. */
function backoff(retries: number): Promise<void> {
  const ms = Math.min(500 * 2 ** retries, 5000) + Math.random() * 250;
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function closeCode(event: unknown): number | undefined {
  return typeof event === "object" && event !== null && "code" in event
    ? Number((event as { code: unknown }).code)
    : undefined;
}

/** One WebSocket for every subscription of the page; it reconnects for as long as the page lives. */
export function subscriptions(onState: (state: LinkState) => void): Client {
  let connectedBefore = false;
  return createClient({
    url: new URL("/graphql/ws", location.href).href.replace(/^http/, "ws"),
    connectionParams: () => authorization(),
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Infinity,
    retryWait: backoff,
    shouldRetry: (event) => closeCode(event) !== FORBIDDEN,
    onNonLazyError: (event) => onState(closeCode(event) === FORBIDDEN ? "unauthorized" : "reconnecting"),
    on: {
      connecting: () => onState(connectedBefore ? "reconnecting" : "connecting"),
      connected: () => {
        connectedBefore = true;
        onState("live");
      },
      closed: (event) => {
        if (closeCode(event) === FORBIDDEN) onState("unauthorized");
        else if (connectedBefore) onState("reconnecting");
      },
    },
  });
}

/** Subscribes `next` to `op` until the returned function is called. */
export function subscribe<TData, TVariables>(
  client: Client,
  op: Operation<TData, TVariables>,
  variables: TVariables,
  next: (data: TData) => void,
): () => void {
  return client.subscribe<TData>(
    { query: op.query, variables: variables as Record<string, unknown> },
    {
      next: (result) => {
        if (result.data) next(result.data);
      },
      error: (error) => console.warn("subscription ended", error),
      complete: () => {},
    },
  );
}
