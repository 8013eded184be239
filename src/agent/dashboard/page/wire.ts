/** What the page reads of /ui/api/view (dashboard-view.ts writes it; the browser test reads it back). */
export interface NodeRow {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly role: string;
  readonly timeline: number | null;
  readonly upstream: string | null;
  readonly state: string;
  readonly lagBytes: number | null;
  readonly replayLagMs: number | null;
  readonly syncState: string | null;
  readonly error: string | null;
  readonly agent?: { readonly decision: string; readonly reason: string; readonly at: string } | null;
}

export interface HistoryRow {
  readonly at: string;
  readonly op: string;
  readonly node: string | null;
  readonly from: string | null;
  readonly timeline: number | null;
  readonly durationMs: number;
  readonly reason: string;
}

export interface View {
  readonly at: string;
  readonly cluster: string;
  readonly mode: string;
  readonly actions?: boolean;
  /** The node of the agent that serves the page; absent from `pgrepl dashboard`. */
  readonly self?: string | null;
  readonly status: {
    readonly healthy: boolean;
    readonly primary: string | null;
    readonly warnings: readonly string[];
    readonly nodes: readonly NodeRow[];
    readonly ha?: {
      readonly leader: string | null;
      readonly leaseSecondsLeft: number | null;
      readonly paused: boolean;
      readonly synchronous: { readonly count: number; readonly standbys: readonly string[] } | null;
    };
  };
  readonly nodeWarnings: Readonly<Record<string, readonly string[]>>;
  readonly candidates: readonly {
    readonly node: string;
    readonly why: string | null;
    readonly positionLsn: string | null;
  }[];
  readonly history: readonly HistoryRow[];
}

export type SeriesSet = Record<string, { t: number[]; v: (number | null)[] }>;
