import type { HaSpec, HaTimings, SecretRef } from './cluster-spec.js';
import { HA_PROFILES } from './ha-profiles.js';
// A type only: loading this module loads no schema library.
import type { ParsedSpec } from './schema.js';

/** An `ha` section as the schema leaves it: its defaults filled in, its profile not yet applied. */
type HaInput = NonNullable<ParsedSpec['ha']>;

/**
 * The defaults of an `ha` section, which the schema fills in. Here, not only in the schema, so that
 * the agents and the commands that only talk to them resolve HA without loading the schema library.
 */
export const HA_DEFAULTS = Object.freeze({
  profile: 'default',
  maximumLagOnFailover: 1048576,
  apiPortOffset: 1000,
  failsafe: true,
} as const);

/** The timings of `ha`: its profile's, overridden key by key. */
export function haTimings(ha: HaInput): HaTimings {
  const p = HA_PROFILES[ha.profile];
  return {
    ttlSeconds: ha.ttl ?? p.ttlSeconds,
    loopWaitMs: ha.loopWait === undefined ? p.loopWaitMs : Math.round(ha.loopWait * 1000),
    retryTimeoutMs: ha.retryTimeout === undefined ? p.retryTimeoutMs : Math.round(ha.retryTimeout * 1000),
  };
}

/** How the spec's relative paths and password sources become what every layer reads. */
export interface SpecRefs {
  readonly path: (p: string) => string;
  readonly secret: (src: { env: string } | { file: string }) => SecretRef;
}

/** An `ha` section as every layer reads it. */
export function resolveHa(ha: HaInput, refs?: SpecRefs): HaSpec {
  const path = refs?.path ?? ((p: string) => p);
  const tls = ha.etcdTls;
  const user = ha.etcdUser;
  if (user && !refs) throw new Error('resolveHa: an etcd user needs the spec to resolve its password');
  return Object.freeze({
    ...haTimings(ha),
    etcd: ha.etcd ? Object.freeze(ha.etcd.map((u) => u.replace(/\/+$/, ''))) : undefined,
    etcdTls: tls
      ? Object.freeze({
          ca: path(tls.ca),
          ...(tls.cert ? { cert: path(tls.cert) } : {}),
          ...(tls.key ? { key: path(tls.key) } : {}),
        })
      : undefined,
    etcdUser:
      user && refs ? Object.freeze({ name: user.name, password: refs.secret(user.password) }) : undefined,
    profile: ha.profile,
    maximumLagOnFailover: ha.maximumLagOnFailover,
    apiPortOffset: ha.apiPortOffset,
    failsafe: ha.failsafe,
  });
}

/** The HA settings of a cluster that `up --ha` turned HA on for without an `ha` section. */
export const defaultHa = (): HaSpec => resolveHa(HA_DEFAULTS);
