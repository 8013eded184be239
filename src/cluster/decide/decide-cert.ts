/**
 * Whether a certificate pgrepl made (`tls: auto`) can stay, or must be issued again, and why.
 * Certificates are judged on the wall clock: their validity is wall time on every host that checks
 * them, unlike the agent's deadlines.
 */

/** A certificate as read from its PEM file; `present: false` when there is none. */
export type CertFacts =
  | { readonly present: false }
  | {
      readonly present: true;
      readonly notBeforeMs: number;
      readonly notAfterMs: number;
      /** DNS names and IP addresses of its subjectAltName. */
      readonly names: readonly string[];
      /** Whether the CA it is checked against signed it (always true for the CA itself). */
      readonly signedByCa: boolean;
    };

export interface CertWant {
  /** The names clients will check (a node's host: verify-full compares it with these). */
  readonly names: readonly string[];
  /** How long before its end a certificate is issued again. */
  readonly renewBeforeMs: number;
}

export type CertDecision =
  { readonly kind: 'keep'; readonly reason: string } | { readonly kind: 'issue'; readonly reason: string };

const day = 24 * 3600 * 1000;

export function decideCert(facts: CertFacts, want: CertWant, nowMs: number): CertDecision {
  if (!facts.present) return { kind: 'issue', reason: 'no certificate yet' };
  if (!facts.signedByCa)
    return { kind: 'issue', reason: 'signed by another CA than the cluster’s (the CA was made again)' };
  const missing = want.names.filter((n) => !facts.names.includes(n));
  if (missing.length > 0)
    return { kind: 'issue', reason: `does not name ${missing.join(', ')}, which clients will check` };
  if (facts.notBeforeMs > nowMs)
    return { kind: 'issue', reason: 'valid only from a time still to come (a clock that was ahead)' };
  const left = facts.notAfterMs - nowMs;
  if (left <= 0) return { kind: 'issue', reason: 'expired' };
  if (left <= want.renewBeforeMs)
    return { kind: 'issue', reason: `expires in ${Math.ceil(left / day)} day(s), within the renewal window` };
  return { kind: 'keep', reason: `valid for ${Math.floor(left / day)} more day(s)` };
}
