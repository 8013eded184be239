import { PgreplError } from '../../errors.js';
import { controlOf } from '../actions/control-of.js';
import { issueCerts, readCertsOf } from '../actions/node-certs.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { planCerts } from '../decide/plan-certs.js';
import type { CertFacts } from '../decide/decide-cert.js';
import { readCert } from '../observe/read-cert.js';
import type { Step } from '../decide/plan-step.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';

/** One certificate after `rotate-certs`: its end, its names, and what was done with it and why (null: nothing). */
export interface CertReport {
  readonly name: string;
  readonly notAfter: string | null;
  readonly names: readonly string[];
  readonly action: string | null;
}

export interface RotateResult {
  readonly steps: readonly Step[];
  readonly certs: readonly CertReport[];
}

/**
 * `pgrepl rotate-certs`: issues again, under the state dir, what `tls: auto` holds for the nodes of
 * this machine and needs it (or, with `all`, every node's certificate), then reloads each running
 * server whose certificate changed: PostgreSQL serves the new one at once, no restart. `dryRun`
 * only says what it would do. Run exclusively.
 */
export async function rotateCerts(
  ctx: ClusterContext,
  o: { all: boolean; dryRun: boolean },
): Promise<RotateResult> {
  if (ctx.spec.tls === 'off')
    throw new PgreplError(
      'E_USAGE',
      `${ctx.spec.source} has tls: off; set tls: auto and run \`pgrepl up\` to encrypt the nodes' connections`,
    );
  const local = ctx.spec.nodes.filter((n) => ctx.localNodes.has(n.name));
  if (ctx.spec.tls === 'files') return reloadOwnFiles(ctx, local, o.dryRun);
  const names = local.map((n) => n.name);
  const steps = planCerts(ctx.spec, readCertsOf(ctx, names), ctx.localNodes, ctx.clock.wallNow(), {
    renewAll: o.all,
  });
  if (!o.dryRun) {
    await issueCerts(ctx, steps);
    for (const node of local)
      if (steps.some((s) => s.kind === 'issue-cert' && s.node === node.name))
        await controlOf(ctx, node).reload();
  }
  const after = readCertsOf(ctx, names);
  const issued = (step: string) => steps.find((s) => `${s.kind} ${s.node}` === step)?.reason ?? null;
  return {
    steps,
    certs: [
      report('ca', after.ca, issued(`issue-ca ${ctx.spec.cluster}`)),
      ...names.map((n) => report(n, after.nodes[n] ?? { present: false }, issued(`issue-cert ${n}`))),
    ],
  };
}

function report(name: string, facts: CertFacts, action: string | null): CertReport {
  return {
    name,
    notAfter: facts.present ? new Date(facts.notAfterMs).toISOString() : null,
    names: facts.present ? facts.names : [],
    action,
  };
}

/**
 * With the nodes' own files (nodes[].tls), pgrepl issues nothing: it reloads each running server of
 * this machine, so that it serves the files as they are now (replaced by their owner).
 */
async function reloadOwnFiles(
  ctx: ClusterContext,
  local: readonly NodeSpec[],
  dryRun: boolean,
): Promise<RotateResult> {
  if (!dryRun) for (const node of local) await controlOf(ctx, node).reload();
  return {
    steps: [],
    certs: local.map((n) =>
      report(n.name, n.tls ? readCert(n.tls.cert, n.tls.ca) : { present: false }, dryRun ? null : 'reloaded'),
    ),
  };
}
