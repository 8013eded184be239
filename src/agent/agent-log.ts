import type { AgentDecision } from '../cluster/decide/decide-agent.js';
import type { EventSink } from '../cluster/context/events.js';
import { PgreplError } from '../errors.js';
import type { SelfObservation } from './observe-self.js';

/**
 * What the agent tells in its log: each decision when it differs from the last (kind, leader, role),
 * and each failure once, not every loop while it lasts (etcd down would write a line per loop); the
 * same failure is told again only after a loop without it.
 */
export class AgentLog {
  private lastDecision = '';
  private failingBefore = new Set<string>();
  private failingNow = new Set<string>();

  constructor(
    private readonly o: {
      readonly node: () => string;
      readonly events: () => EventSink;
      /** Every etcd error, told or not (the metrics count them). */
      readonly etcdError: () => void;
      /** Whether trace() writes anything (PGREPL_AGENT_TRACE=1). */
      readonly tracing: boolean;
    },
  ) {}

  /** A new loop: what failed in the last one and not since is told again if it fails again. */
  loopBegins(): void {
    // The watch runs beside the loops: its failure lasts until it is reopened.
    this.failingBefore = new Set(
      [...this.failingBefore].filter((f) => this.failingNow.has(f) || f === 'watching etcd'),
    );
    this.failingNow = new Set();
  }

  failed(during: string, err: unknown): void {
    if (err instanceof PgreplError && err.code === 'E_ETCD') this.o.etcdError();
    this.failingNow.add(during);
    if (this.failingBefore.has(during)) return;
    this.failingBefore.add(during);
    const error = err instanceof PgreplError || err instanceof Error ? err.message : String(err);
    this.o.events().emit({ event: 'agent-error', node: this.o.node(), during, error });
  }

  /** A line of the trace, when tracing. */
  trace(message: string): void {
    if (this.o.tracing) this.o.events().emit({ event: 'agent-trace', node: this.o.node(), message });
  }

  /** What failed works again: a new failure of it is told. */
  recovered(during: string): void {
    this.failingBefore.delete(during);
  }

  decided(self: SelfObservation, leader: string | null, d: AgentDecision): void {
    const key = `${d.kind}|${leader}|${self.local.kind}`;
    if (key === this.lastDecision) return;
    this.lastDecision = key;
    const local = self.local;
    this.o.events().emit({
      event: 'agent',
      node: this.o.node(),
      role: local.kind,
      timeline: local.kind === 'primary' || local.kind === 'replica' ? local.timeline : null,
      leader,
      decision: d.kind,
      reason: d.reason,
    });
  }
}
