import type { ClusterSpec, NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { decideCert } from './decide-cert.js';
import type { CertFacts } from './decide-cert.js';
import type { Step } from './plan-step.js';

/** The certificates `tls: auto` keeps on this machine, as read before a plan. */
export interface CertsObservation {
  /** The CA's certificate, checked against itself. */
  readonly ca: CertFacts;
  /** Whether the CA's key is there: with it a renewed CA keeps the certificates it signed valid. */
  readonly caKey: boolean;
  /** The certificate of each node of this machine, checked against the CA. */
  readonly nodes: Readonly<Record<string, CertFacts>>;
}

const day = 24 * 3600 * 1000;

/** How long what `tls: auto` issues is valid, and how long before its end `up` issues it again. */
export const CERT_VALIDITY = {
  caDays: 3650,
  caRenewBeforeMs: 365 * day,
  nodeDays: 365,
  nodeRenewBeforeMs: 30 * day,
} as const;

/** A node's certificate as read, and decideCert's verdict on it for the node's host. */
function judgeNodeCert(certs: CertsObservation, node: NodeSpec, nowMs: number) {
  const facts = certs.nodes[node.name] ?? { present: false };
  const want = { names: [node.host], renewBeforeMs: CERT_VALIDITY.nodeRenewBeforeMs };
  return { facts, d: decideCert(facts, want, nowMs) };
}

/**
 * What `status` says of the certificates of this machine's nodes: an expired one is a warning
 * (a connection made from now on is refused); one `up` or `rotate-certs` would issue again for any
 * other reason (ending within 30 days, a CA within a year, a changed host) is a note. With the
 * nodes' own files (`files`), the same judgement of each, and what to do is the owner's to replace
 * them (`certs.nodes` then holds those files, checked against each node's own CA).
 */
export function certStatus(
  spec: ClusterSpec,
  certs: CertsObservation,
  localNodes: ReadonlySet<string>,
  nowMs: number,
): { warnings: string[]; notes: string[] } {
  const warnings: string[] = [];
  const notes: string[] = [];
  if (spec.tls === 'files') {
    for (const node of spec.nodes.filter((n) => localNodes.has(n.name))) {
      const { facts, d } = judgeNodeCert(certs, node, nowMs);
      if (d.kind === 'keep') continue;
      const expired = !facts.present || facts.notAfterMs <= nowMs;
      (expired ? warnings : notes).push(
        `${node.name}'s certificate (${node.tls?.cert ?? 'nodes[].tls'}): ${d.reason}; replace it, then \`pgrepl rotate-certs\` has the server read it`,
      );
    }
    return { warnings, notes };
  }
  const renew = '`pgrepl rotate-certs` issues it again, online';
  for (const step of planCerts(spec, certs, localNodes, nowMs)) {
    const facts = step.kind === 'issue-ca' ? certs.ca : (certs.nodes[step.node] ?? { present: false });
    const what = step.kind === 'issue-ca' ? "the cluster's CA certificate" : `${step.node}'s certificate`;
    const expired = facts.present && facts.notAfterMs <= nowMs;
    (expired ? warnings : notes).push(`${what}: ${step.reason}; ${renew}`);
  }
  return { warnings, notes };
}

/**
 * The steps that make the certificates of `tls: auto` valid for the nodes of this machine: the CA
 * when it is missing or near its end, then each node certificate that decideCert says to issue.
 * A CA made anew (its key was gone) signs every node's certificate again: one signed by the old key
 * would no longer be trusted. `renewAll` issues every node's certificate, due or not (a key that
 * may have leaked).
 */
export function planCerts(
  spec: ClusterSpec,
  certs: CertsObservation,
  localNodes: ReadonlySet<string>,
  nowMs: number,
  o: { renewAll?: boolean } = {},
): Step[] {
  if (spec.tls !== 'auto') return [];
  const steps: Step[] = [];
  const ca = decideCert(certs.ca, { names: [], renewBeforeMs: CERT_VALIDITY.caRenewBeforeMs }, nowMs);
  const newKey = !certs.caKey;
  if (ca.kind === 'issue' || newKey) {
    steps.push({
      kind: 'issue-ca',
      node: spec.cluster,
      reason: newKey ? `the cluster has no CA key yet` : `the CA's certificate: ${ca.reason}`,
    });
  }
  for (const node of spec.nodes.filter((n) => localNodes.has(n.name))) {
    const { facts, d } = judgeNodeCert(certs, node, nowMs);
    if (newKey && facts.present) {
      steps.push({ kind: 'issue-cert', node: node.name, reason: 'the CA is new: signed again by it' });
    } else if (d.kind === 'issue') steps.push({ kind: 'issue-cert', node: node.name, reason: d.reason });
    else if (o.renewAll)
      steps.push({ kind: 'issue-cert', node: node.name, reason: `asked for (it was ${d.reason})` });
  }
  return steps;
}
