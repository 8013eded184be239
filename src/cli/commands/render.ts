import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { issueCertsOfAllNodes } from '../../cluster/actions/node-certs.js';
import { autoCaFile, autoTlsDir, tlsFilesIn } from '../../cluster/context/node-hosts.js';
import { isLoopbackHost } from '../../cluster-spec/loopback-host.js';
import { ensureOwnedDir } from '../../postgres/owned-paths.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import { DEFAULT_IMAGE, renderComposeBundle } from '../../deploy/render-compose-bundle.js';
import { renderHostBundle } from '../../deploy/render-host-bundle.js';
import { renderSystemdBundle } from '../../deploy/render-systemd-bundle.js';
import type { SystemdBundleInput } from '../../deploy/render-systemd-bundle.js';
import { renderComposeHaBundle } from '../../deploy/render-compose-ha-bundle.js';
import { PACKAGE_VERSION } from '../../package-files.js';
import { specText } from '../../cluster-spec/load-spec.js';
import { resolveSecret } from '../../cluster/context/resolve-secret.js';
import { ensureApiToken, readApiToken } from '../../ha/api-token.js';
import { haPaths } from '../../ha/ha-services.js';
import type { BundleCerts, BundleFile } from '../../deploy/render-host-bundle.js';
import { writeBundle } from '../../deploy/write-bundle.js';
import { PgreplError } from '../../errors.js';
import { scramVerifier } from '../../postgres/scram-verifier.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

export interface RenderOptions {
  out: string;
  withSecrets?: boolean;
  force?: boolean;
  image?: string;
  ha?: boolean;
}

type Secrets = { superuser: string; replication: string; replicationVerifier: string } | undefined;

/** `render compose --out DIR [--image IMAGE] [--with-secrets] [--force]`; `--ha`: the agents run it. */
export function runRenderCompose(g: GlobalOptions, o: RenderOptions): Promise<number> {
  if (o.ha) {
    if (o.image !== undefined)
      throw new PgreplError(
        'E_USAGE',
        '--image names the PostgreSQL image of a bundle without agents; with --ha each folder builds its own (see its Dockerfile)',
      );
    return render(
      g,
      o,
      async (ctx) =>
        renderComposeHaBundle({
          ...(await agentBundleInput(ctx, o)),
          pgrepl: `pgrepl@${PACKAGE_VERSION}`,
          pgMajor: ctx.env.bins.major,
        }),
      { needsPasswords: false },
    );
  }
  return render(g, o, async (ctx, secrets) => {
    // Inside a container 127.0.0.1 is the container itself: peers and replicas would reach nothing.
    const loopback = ctx.spec.nodes.filter((n) => isLoopbackHost(n.host));
    if (loopback.length > 0)
      process.stderr.write(
        `warning: ${loopback.map((n) => `${n.name} (${n.host})`).join(', ')} ${loopback.length > 1 ? 'have' : 'has'} a loopback host: ` +
          "in a container that is the container itself, so replicas and PGREPL_PEERS would reach nothing. Set each node's host " +
          'to the address of the machine its container runs on before you deploy\n',
      );
    return renderComposeBundle({
      spec: ctx.spec,
      image: o.image ?? DEFAULT_IMAGE,
      secrets,
      certs: await bundleCerts(ctx, secrets !== undefined),
    });
  });
}

/** `render conf --out DIR [--with-secrets] [--force]` */
export function runRenderConf(g: GlobalOptions, o: RenderOptions): Promise<number> {
  return render(g, o, async (ctx, secrets) =>
    renderHostBundle({
      spec: ctx.spec,
      binDir: ctx.env.bins.binDir,
      pgMajor: ctx.env.bins.major,
      secrets,
      certs: await bundleCerts(ctx, secrets !== undefined),
    }),
  );
}

/**
 * `render systemd --out DIR [--with-secrets] [--force]`: the hosts' agents form the cluster, so the
 * generated passwords are made here if they do not exist yet (every host gets the same).
 */
export function runRenderSystemd(g: GlobalOptions, o: RenderOptions): Promise<number> {
  return render(g, o, async (ctx) => renderSystemdBundle(await agentBundleInput(ctx, o)), {
    needsPasswords: false,
  });
}

/**
 * What a bundle whose agents form the cluster is made of (`render systemd`, `render compose --ha`):
 * with --with-secrets, the generated passwords are made here if they do not exist yet (every host
 * gets the same) and the agents' API token too.
 */
async function agentBundleInput(ctx: ClusterContext, o: RenderOptions): Promise<SystemdBundleInput> {
  const { spec } = ctx;
  const generated = (ref: typeof spec.superuser.password, what: string) => {
    if (!o.withSecrets || ref.kind !== 'generated') return undefined;
    ensureOwnedDir(spec.stateDir, 0o700, ctx.env.runAs);
    return resolveSecret(ref, what, { env: ctx.processEnv, create: true, runAs: ctx.env.runAs });
  };
  return {
    spec,
    specText: specText(spec),
    certs: await bundleCerts(ctx, o.withSecrets === true),
    generatedSecrets: o.withSecrets
      ? {
          superuser: generated(spec.superuser.password, 'superuser'),
          replication: generated(spec.replication.password, 'replication'),
          apiToken: apiToken(spec.stateDir),
        }
      : undefined,
  };
}

/** The agents' API token of this machine's state dir, made now if there is none (one per cluster). */
function apiToken(stateDir: string): string {
  const file = haPaths(stateDir).apiToken;
  ensureApiToken(file);
  return readApiToken(file) as string;
}

/**
 * With `tls: auto`, the CA and every node's certificate, made or renewed in the state dir first;
 * the nodes' keys only when secrets go into the bundle.
 */
async function bundleCerts(ctx: ClusterContext, withKeys: boolean): Promise<BundleCerts | undefined> {
  if (ctx.spec.tls !== 'auto') return undefined;
  ensureOwnedDir(ctx.spec.stateDir, 0o700, ctx.env.runAs);
  for (const issued of await issueCertsOfAllNodes(ctx))
    process.stderr.write(`issued a certificate for ${issued}\n`);
  const dir = autoTlsDir(ctx.spec.stateDir);
  const read = (file: string) => readFileSync(file, 'utf8');
  return {
    ca: read(autoCaFile(ctx.spec.stateDir)),
    nodes: Object.fromEntries(
      ctx.spec.nodes.map((n) => {
        const files = tlsFilesIn(dir, n.name);
        return [n.name, { cert: read(files.cert), key: withKeys ? read(files.key) : undefined }];
      }),
    ),
  };
}

async function render(
  g: GlobalOptions,
  o: RenderOptions,
  files: (ctx: ClusterContext, s: Secrets) => BundleFile[] | Promise<BundleFile[]>,
  how: { needsPasswords: boolean } = { needsPasswords: true },
): Promise<number> {
  const ctx = await commandContext(g);
  if (ctx.spec.backup)
    throw new PgreplError(
      'E_USAGE',
      "bundles do not carry backup: yet (each host would need pgBackRest's configuration and a shared repository): render from a spec without it",
    );
  if (ctx.spec.logical.publications.length + ctx.spec.logical.subscriptions.length > 0)
    throw new PgreplError(
      'E_USAGE',
      'bundles do not carry logical: yet (its publications and subscriptions are made by `pgrepl up` on a running primary): render from a spec without it',
    );
  let secrets: Secrets;
  if (o.withSecrets && how.needsPasswords) {
    if (ctx.superuserPassword === undefined || ctx.replicationPassword === undefined) {
      throw new PgreplError(
        'E_SECRET',
        'no passwords to put in .env yet: run `pgrepl up` once, or give them in the spec (env or file)',
      );
    }
    secrets = {
      superuser: ctx.superuserPassword,
      replication: ctx.replicationPassword,
      replicationVerifier: scramVerifier(ctx.replicationPassword),
    };
  }
  const out = resolve(o.out);
  const rendered = await files(ctx, secrets);
  writeBundle(out, rendered, o.force === true);
  const held = !how.needsPasswords
    ? o.withSecrets
      ? ' (with the keys and passwords, mode 0600)'
      : ' (without keys or passwords: see README.md)'
    : secrets
      ? ' (the .env files hold real passwords, mode 0600)'
      : ' (.env files hold placeholders)';
  process.stdout.write(
    `wrote ${rendered.length} files under ${out}: one folder per node, copy each to its host and follow its README.md${held}\n`,
  );
  return 0;
}
