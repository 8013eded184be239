import { hostOf } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { autoTlsDir } from '../context/node-hosts.js';
import { CERT_VALIDITY, planCerts } from '../decide/plan-certs.js';
import { readAutoCerts } from '../observe/read-cert.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { certFiles, issueCa, issueCert } from './issue-cert.js';

/*
 * `tls: auto` on this machine: the cluster's CA and its nodes' certificates under the state dir,
 * owned by the OS user PostgreSQL runs as (a server reads only a key its own user owns).
 */

/** Makes the cluster's CA, or renews it with its key. */
export async function issueClusterCa(ctx: ClusterContext): Promise<void> {
  await issueCa(autoTlsDir(ctx.spec.stateDir), ctx.spec.cluster, CERT_VALIDITY.caDays, ctx.env.runAs);
}

/**
 * Makes the CA and every node's certificate valid in the state dir, whichever host each node is
 * on (`render` copies them into each host's folder); says what it issued and why.
 */
export async function issueCertsOfAllNodes(ctx: ClusterContext): Promise<string[]> {
  const dir = autoTlsDir(ctx.spec.stateDir);
  const names = ctx.spec.nodes.map((n) => n.name);
  const certs = readAutoCerts(
    certFiles(dir, 'ca'),
    names.map((name) => ({ name, cert: certFiles(dir, name).cert })),
  );
  const steps = planCerts(ctx.spec, certs, new Set(names), ctx.clock.wallNow());
  for (const step of steps) {
    if (step.kind === 'issue-ca') await issueClusterCa(ctx);
    else {
      const node = ctx.spec.nodes.find((n) => n.name === step.node);
      if (node)
        await issueCert(
          dir,
          certFiles(dir, 'ca'),
          node.name,
          [node.host],
          CERT_VALIDITY.nodeDays,
          ctx.env.runAs,
        );
    }
  }
  return steps.map((s) => `${s.node}: ${s.reason}`);
}

/** Issues `node`'s certificate for its host, in the files its postgresql.conf names. */
export async function issueNodeCert(ctx: ClusterContext, node: NodeSpec): Promise<void> {
  const dir = autoTlsDir(ctx.spec.stateDir);
  const files = hostOf(ctx, node).tls;
  const expected = certFiles(dir, node.name);
  if (files?.cert !== expected.cert || files.key !== expected.key)
    throw new Error(`${node.name}'s certificate is not one of tls: auto on this machine`);
  await issueCert(dir, certFiles(dir, 'ca'), node.name, [node.host], CERT_VALIDITY.nodeDays, ctx.env.runAs);
}
