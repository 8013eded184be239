import { hostOf } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { autoTlsDir } from '../context/node-hosts.js';
import { CERT_VALIDITY, planCerts } from '../decide/plan-certs.js';
import type { CertsObservation } from '../decide/plan-certs.js';
import type { Step } from '../decide/plan-step.js';
import { readAutoCerts, readCert } from '../observe/read-cert.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { certFiles, issueCa, issueCert } from './issue-cert.js';

/*
 * `tls: auto` on this machine: the cluster's CA and its nodes' certificates under the state dir,
 * owned by the OS user PostgreSQL runs as (a server reads only a key its own user owns).
 */

/** The certificates `tls: auto` keeps in the state dir for the nodes `names`, and the CA's. */
export function readCertsOf(ctx: ClusterContext, names: readonly string[]): CertsObservation {
  const dir = autoTlsDir(ctx.spec.stateDir);
  return readAutoCerts(
    certFiles(dir, 'ca'),
    names.map((name) => ({ name, cert: certFiles(dir, name).cert })),
  );
}

/** The certificates the nodes of this machine were given (nodes[].tls), each checked against its own CA. */
export function readOwnCerts(ctx: ClusterContext): CertsObservation {
  const local = ctx.spec.nodes.filter((n) => ctx.localNodes.has(n.name));
  return {
    ca: { present: false },
    caKey: false,
    nodes: Object.fromEntries(
      local.map((n) => [n.name, n.tls ? readCert(n.tls.cert, n.tls.ca) : { present: false as const }]),
    ),
  };
}

/** Makes the cluster's CA, or renews it with its key. */
export async function issueClusterCa(ctx: ClusterContext): Promise<void> {
  await issueCa(autoTlsDir(ctx.spec.stateDir), ctx.spec.cluster, CERT_VALIDITY.caDays, ctx.env.runAs);
}

/** Issues `node`'s certificate in the state dir, for its host, signed by the cluster's CA. */
async function issueCertOf(ctx: ClusterContext, node: NodeSpec): Promise<void> {
  const dir = autoTlsDir(ctx.spec.stateDir);
  await issueCert(dir, certFiles(dir, 'ca'), node.name, [node.host], CERT_VALIDITY.nodeDays, ctx.env.runAs);
}

/** Issues the certificate of `node`, a node of this machine, in the files its postgresql.conf names. */
export async function issueNodeCert(ctx: ClusterContext, node: NodeSpec): Promise<void> {
  const expected = certFiles(autoTlsDir(ctx.spec.stateDir), node.name);
  const files = hostOf(ctx, node).tls;
  if (files?.cert !== expected.cert || files.key !== expected.key)
    throw new Error(`${node.name}'s certificate is not one of tls: auto on this machine`);
  await issueCertOf(ctx, node);
}

/** Performs the steps of planCerts: the CA first, then each node's certificate. */
export async function issueCerts(ctx: ClusterContext, steps: readonly Step[]): Promise<void> {
  for (const step of steps) {
    if (step.kind === 'issue-ca') await issueClusterCa(ctx);
    const node = ctx.spec.nodes.find((n) => n.name === step.node);
    if (step.kind === 'issue-cert' && node) await issueCertOf(ctx, node);
  }
}

/**
 * Makes the CA and every node's certificate valid in the state dir, whichever host each node is
 * on (`render` copies them into each host's folder); says what it issued and why.
 */
export async function issueCertsOfAllNodes(ctx: ClusterContext): Promise<string[]> {
  const names = ctx.spec.nodes.map((n) => n.name);
  const steps = planCerts(ctx.spec, readCertsOf(ctx, names), new Set(names), ctx.clock.wallNow());
  await issueCerts(ctx, steps);
  return steps.map((s) => `${s.node}: ${s.reason}`);
}
