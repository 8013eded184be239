import { Command, CommanderError } from 'commander';
import { toPgreplError } from '../errors.js';
import { installProcessHandlers, interruptedExitCode } from './process-signals.js';
import { closeEventOutput } from './event-output.js';
import type { GlobalOptions } from './command-context.js';

/**
 * Command modules are loaded when their command runs: `--help` and `--version` then start without
 * pg, zod or yaml, and every command without the others' dependencies (~0.1 s less per run).
 */
const COMMANDS = {
  init: () => import('./commands/init.js'),
  agent: () => import('./commands/agent.js'),
  ha: () => import('./commands/ha.js'),
  lifecycle: () => import('./commands/lifecycle.js'),
  psql: () => import('./commands/psql.js'),
  status: () => import('./commands/status.js'),
  up: () => import('./commands/up.js'),
  url: () => import('./commands/url.js'),
  rejoin: () => import('./commands/rejoin.js'),
  'set-mode': () => import('./commands/set-mode.js'),
  topology: () => import('./commands/topology.js'),
  logs: () => import('./commands/logs.js'),
  history: () => import('./commands/history.js'),
  dashboard: () => import('./commands/dashboard.js'),
  backup: () => import('./commands/backup.js'),
  logical: () => import('./commands/logical.js'),
  upgrade: () => import('./commands/upgrade.js'),
  clean: () => import('./commands/clean.js'),
  'scram-verifier': () => import('./commands/scram-verifier.js'),
  render: () => import('./commands/render.js'),
  'rotate-certs': () => import('./commands/rotate-certs.js'),
};
const load = <K extends keyof typeof COMMANDS>(name: K): ReturnType<(typeof COMMANDS)[K]> =>
  COMMANDS[name]() as ReturnType<(typeof COMMANDS)[K]>;

const EXAMPLES = `
Examples:
  pgrepl up                      # 1 primary + 2 replicas on 127.0.0.1:54321-54323 (no pgrepl.yaml needed)
  pgrepl status                  # who is primary, who streams, lag, slots; exit 3 when unhealthy
  pgrepl psql -- -c 'select 1'   # psql on the primary as the superuser
  pgrepl init --nodes 4 --base-port 6000 && pgrepl up --dry-run
  pgrepl destroy --yes

Exit codes: 0 ok · 1 error (message says what to do) · 2 bad usage · 3 status: cluster not healthy

Environment:
  PGREPL_PG_BIN     PostgreSQL bin directory, after the spec's postgres.binDir and before the one the
                    cluster was made with, pg_config, PATH and /usr/lib/postgresql/<newest>/bin
  XDG_CACHE_HOME    where the parsed-spec cache lives (default ~/.cache/pgrepl)
  PGREPL_ETCD_ENDPOINTS  comma-separated etcd URLs for this process, instead of the spec's ha.etcd
  PGREPL_ETCD_BIN   the etcd binary \`up --ha\` runs (default: etcd on PATH)
  PGREPL_CRASH_AT   tests only: kill pgrepl before|during|after a named step, to test resume
  any variable a spec names for a password ({ env: NAME }), and PATH and HOME as every program does`;

/** Builds the CLI; each action returns its exit code. */
export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('pgrepl')
    .description(
      'Build and run PostgreSQL streaming-replication clusters: one primary, N replicas, from one spec.',
    )
    .version('0.1.0')
    .option('-c, --config <file>', 'spec file (default: ./pgrepl.yaml, else the embedded 3-node default)')
    .option(
      '--log-format <format>',
      'how progress and decisions are told on stderr: human (bars on a terminal) or json (one JSON line per event)',
      'human',
    )
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError('(run `pgrepl --help` for usage)')
    .exitOverride();
  const g = (): GlobalOptions => program.opts<GlobalOptions>();
  const act =
    <A extends unknown[]>(fn: (...a: A) => Promise<number> | number) =>
    async (...a: A) =>
      setExit(await fn(...a));

  program
    .command('init')
    .description('write a commented pgrepl.yaml to edit')
    .option('--name <name>', 'cluster name', 'demo')
    .option('--nodes <n>', 'number of nodes; the first is the primary', '3')
    .option('--host <address>', 'address every node listens on', '127.0.0.1')
    .option('--base-port <port>', 'port of the first node; the others count up', '54321')
    .option('--dir <dir>', 'state and data directory, relative to the spec', '.pgrepl')
    .option('-o, --output <file>', 'where to write the spec', 'pgrepl.yaml')
    .option('--force', 'overwrite an existing file')
    .action(act(async (o) => (await load('init')).runInit(o)));

  program
    .command('up')
    .description('create or repair the cluster so that it matches the spec (idempotent)')
    .option('--dry-run', 'print the plan with the reason for each step, change nothing')
    .option('--json', 'print the steps taken as JSON on stdout (progress stays on stderr)')
    .option(
      '--ha',
      'then fail over automatically: start etcd (a single member on loopback, unless ha.etcd lists some) and `pgrepl agent` for each node, logs under the state dir',
    )
    .action(act(async (o) => (await load('up')).runUp(g(), o, { create: true })));

  program
    .command('agent')
    .description(
      "run one node's HA agent in the foreground (`up --ha` starts them in the background): it holds or watches the leader key in etcd, fails over, fences, rejoins, and serves /primary, /replica, /status and /metrics",
    )
    .requiredOption('--node <name>', 'the node of this machine the agent runs for')
    .action(act(async (o: { node: string }) => (await load('agent')).runAgent(g(), o)));

  program
    .command('pause')
    .description(
      'maintenance mode: the agents keep observing and reporting, but change nothing (no failover, no restart) until `pgrepl unpause`; manual commands are allowed meanwhile',
    )
    .option('--json', 'print the result as JSON')
    .action(act(async (o: { json?: boolean }) => (await load('ha')).runPause(g(), true, o)));

  program
    .command('unpause')
    .description('end maintenance mode: the agents act again')
    .option('--json', 'print the result as JSON')
    .action(act(async (o: { json?: boolean }) => (await load('ha')).runPause(g(), false, o)));

  program
    .command('start')
    .description(
      'start the stopped nodes (primary first), or only NODE, and wait until the replicas stream; creates nothing',
    )
    .argument('[node]', 'start only this node')
    .option('--json', 'print the steps taken as JSON')
    .action(
      act(async (node: string | undefined, o) =>
        (await load('up')).runUp(g(), o, { create: false, ...(node === undefined ? {} : { only: node }) }),
      ),
    );

  program
    .command('history')
    .description('every promotion, switchover, rejoin and mode change: when, timeline, LSN, how long, why')
    .option('--json', 'print the entries as a JSON array')
    .action(act(async (o) => (await load('history')).runHistory(g(), o)));

  program
    .command('backup')
    .description(
      'take a backup now with pgBackRest (spec: backup:): from the primary, or with backup.fromReplica from a streaming replica; older backups expire by backup.retention',
    )
    .option(
      '--type <type>',
      'full: every file; diff: what changed since the last full; incr: since the last backup of any type (the first is always full)',
      'incr',
    )
    .option('--json', 'print the new backup as JSON')
    .action(act(async (o) => (await load('backup')).runBackupCommand(g(), o)));

  program
    .command('backups')
    .description(
      "the repository's backups (type, time, size, WAL range), the archive's continuity and the primary's archiver; exit 3 when WAL is missing or archiving fails",
    )
    .option('--json', 'print them as JSON')
    .action(act(async (o) => (await load('backup')).runBackupsCommand(g(), o)));

  const collect = (v: string, prev: string[] = []) => [...prev, v];
  const logical = program
    .command('logical')
    .description(
      "logical replication between clusters: each subcommand adds to pgrepl.yaml's logical: section and runs `up`, which checks first and changes nothing when the check refuses",
    );
  logical
    .command('publish')
    .description(
      'publish tables of this cluster (wal_level becomes logical on every node: replicas restart first); refuses tables without a primary key or replica identity, unlogged tables and large objects, each with its fix',
    )
    .argument('<name>', 'the publication')
    .option('--tables <list>', 'schema.table[,schema.table...] (a bare name is in public)')
    .option('--all', 'every table of the database, present and future')
    .option('--database <db>', 'the database (default postgres)')
    .option('--allow <cidr>', 'an address subscribers connect from, beyond the nodes (repeatable)', collect)
    .option(
      '--skip-check <code>',
      'accept a finding of the pre-flight check, e.g. large-objects (repeatable)',
      collect,
    )
    .option('--json', 'print the steps taken as JSON')
    .action(act(async (name: string, o) => (await load('logical')).runPublish(g(), name, o)));
  logical
    .command('subscribe')
    .description(
      "subscribe this cluster to another's publication: the tables copied, then streamed; checks first that the tables exist here with the publisher's columns, the extensions are installed, and what is not replicated (large objects, sequences)",
    )
    .argument('<name>', 'the subscription')
    .requiredOption('--publication <name>', "the publisher's publication")
    .requiredOption(
      '--from <spec|url>',
      "the publishing cluster's pgrepl.yaml, or postgres://USER@HOST:PORT[,HOST:PORT...]/DATABASE",
    )
    .option('--password-env <var>', 'with --from URL: the environment variable holding the password')
    .option('--password-file <file>', 'with --from URL: a 0600 file holding the password')
    .option('--database <db>', 'the database here (default postgres)')
    .option('--no-copy', 'skip the initial copy: the tables here already hold the rows')
    .option('--skip-check <code>', 'accept a finding of the pre-flight check (repeatable)', collect)
    .option('--json', 'print the steps taken as JSON')
    .action(act(async (name: string, o) => (await load('logical')).runSubscribe(g(), name, o)));

  program
    .command('upgrade')
    .description(
      'online major-version upgrade through logical replication: a new cluster beside this one (--to-bin DIR), its schema and rows copied and kept in step, then a cutover that loses no acknowledged commit; without an action, where an upgrade under way stands',
    )
    .option(
      '--to-bin <dir>',
      "start an upgrade to the new major version's bin directory (with --plan: only print it)",
    )
    .option(
      '--plan',
      'print the steps, the pre-flight report and the copy estimate; change nothing (exit 3 when a finding refuses it)',
    )
    .option('--port-offset <n>', "the new nodes' ports: the old ones plus this", '100')
    .option('--nodes <names>', 'the nodes the new cluster has (comma-separated; default all of them)')
    .option('--skip-check <code>', 'accept a finding of the pre-flight check (repeatable)', collect)
    .option('--prepare-only', 'stop once the new cluster has caught up; `--cutover` moves the writes later')
    .option('--cutover', 'move the writes to the new cluster (the upgrade under way)')
    .option(
      '--rollback',
      'undo the upgrade under way: after the cutover, move the writes back with every commit',
    )
    .option(
      '--finish',
      'end the upgrade after the cutover: drop the way back, stop the old cluster (data kept)',
    )
    .option(
      '--drain-budget <ms>',
      'how long a cutover waits for the subscriptions to have every commit before it gives up and lifts the fence',
      '5000',
    )
    .option('--json', 'print the result as JSON')
    .action(act(async (o) => (await load('upgrade')).runUpgrade(g(), o)));

  program
    .command('restore')
    .description(
      'point-in-time recovery beside the cluster: restore the newest backup before the target into a new directory and run it as a stand-alone server on 127.0.0.1 (to get a dropped table back); never over a node',
    )
    .option(
      '--to <time>',
      'the moment to stop at, with its zone: "2026-12-07 13:44:18+00" (commits up to it included)',
    )
    .option('--lsn <lsn>', 'the WAL position to stop at, e.g. 0/3000148')
    .option(
      '--latest',
      'replay all the archive holds (the running primary archives its current segment first)',
    )
    .option('--into <dir>', 'a new or empty directory for the restored data')
    .option('--port <port>', 'the port the restored server listens on (default: a free one)')
    .option(
      '--cluster',
      "after a disaster: rebuild the whole cluster from the repository (the spec's first node restored and promoted at the target, default --latest, the others cloned from it); refused while any node runs, old data directories moved aside",
    )
    .option('--json', 'print the result as JSON')
    .action(act(async (o) => (await load('backup')).runRestoreCommand(g(), o)));

  program
    .command('dashboard')
    .description(
      "serve the cluster's live page (topology, lag charts, candidates, history) on loopback, from this machine's own observation; with agents, each agent serves it at /ui on its API port",
    )
    .option('--port <port>', 'the port to listen on, on 127.0.0.1 (0: any free one)', '7480')
    .option('--open', 'open it in the desktop browser (xdg-open)')
    .action(act(async (o) => (await load('dashboard')).runDashboard(g(), o)));

  program
    .command('logs')
    .description("a node's server log: its last lines, and with -f what it writes next")
    .argument('<node>', 'the node')
    .option('-n, --lines <n>', 'how many of the last lines', '50')
    .option('-f, --follow', 'keep printing what the server writes, until interrupted')
    .action(act(async (node: string, o) => (await load('logs')).runLogs(g(), node, o)));

  program
    .command('restart')
    .description(
      'restart the running nodes, or NODE: replicas first (each streams again before the next), then the primary; while agents run, each node is restarted by its own agent',
    )
    .argument('[node]', 'restart only this node')
    .option(
      '--switchover',
      'hand the primary role to the best replica instead of restarting the primary in place (no write gap beyond a switchover)',
    )
    .option('--json', 'print the result as JSON')
    .action(act(async (node: string | undefined, o) => (await load('lifecycle')).runRestart(g(), node, o)));

  program
    .command('reload')
    .description(
      'make the running nodes, or NODE, re-read postgresql.conf and pg_hba.conf; says what still needs a restart',
    )
    .argument('[node]', 'reload only this node')
    .action(act(async (node: string | undefined) => (await load('lifecycle')).runReload(g(), node)));

  program
    .command('stop')
    .description(
      'stop one node (fast shutdown), keeping its data; `down` stops them all. While agents run, its agent stops it and leaves it stopped until `start NODE` (the primary: switch over first)',
    )
    .argument('<node>', 'the node to stop')
    .option('--immediate', 'immediate shutdown (no checkpoint; crash recovery at the next start)')
    .option('--json', 'print the result as JSON')
    .action(act(async (node: string, o) => (await load('lifecycle')).runStop(g(), node, o)));

  program
    .command('status')
    .description(
      'one row per node: role, timeline, LSNs, upstream, state, lag, sync state, slot; then warnings',
    )
    .option('--json', 'print the documented JSON object instead of the table')
    .option('--watch', 'refresh until interrupted')
    .option('--interval <seconds>', 'refresh interval for --watch', '2')
    .action(act(async (o) => (await load('status')).runStatus(g(), o)));

  program
    .command('url')
    .description('print a libpq connection URI (all nodes with target_session_attrs=read-write, or one node)')
    .option('--node <name>', 'only this node')
    .option('--with-password', 'include the superuser password (keep it out of shell history)')
    .option('--user <name>', 'role in the URI (default: the cluster superuser)')
    .option('--database <name>', 'database in the URI', 'postgres')
    .action(act(async (o) => (await load('url')).runUrl(g(), o)));

  program
    .command('rotate-certs')
    .description(
      "tls: auto: issue again the certificates of this machine's nodes that end within 30 days (the CA within a year), and reload their servers: no restart, no replica disconnected; with your own files (nodes[].tls), reload so the servers read them",
    )
    .option('--all', "issue every node's certificate, due or not (a key that may have leaked)")
    .option('--dry-run', 'say what would be issued and why, change nothing')
    .option('--json', 'print the certificates and what was done as JSON')
    .action(act(async (o) => (await load('rotate-certs')).runRotateCerts(g(), o)));

  program
    .command('psql')
    .description('open psql as the superuser on the primary, or on NODE; pass psql arguments after --')
    .argument('[node]', 'node name (default: the current primary)')
    .argument('[psqlArgs...]', 'arguments for psql, after --')
    // `pgrepl psql -- -c '…'` gives commander "-c" as the node: an option is never a node name.
    .action(
      act(async (node: string | undefined, args: string[]) =>
        node?.startsWith('-')
          ? (await load('psql')).runPsql(g(), undefined, [node, ...args])
          : (await load('psql')).runPsql(g(), node, args),
      ),
    );

  program
    .command('promote')
    .description(
      'unplanned failover: promote NODE (or the best replica with --auto) when the primary is gone',
    )
    .argument('[node]', 'the replica to promote')
    .option(
      '--auto',
      'pick the healthy replica with the most WAL (received or replayed); among equals the higher failoverPriority',
    )
    .option('--force', 'the primary still answers: stop (fence) it first, then promote')
    .option(
      '--i-know-the-old-primary-is-down',
      'with --force: promote even if the old primary could not be stopped',
    )
    .option('--json', 'print the result as JSON')
    .action(
      act(async (node: string | undefined, o) => (await load('topology')).runPromoteCommand(g(), node, o)),
    );

  program
    .command('switchover')
    .description(
      'planned change of primary, no commit lost: the old primary becomes a replica of the new one',
    )
    .option('--to <node>', 'the replica that takes over (default: the most advanced streaming one)')
    .option('--json', 'print the result as JSON')
    .action(act(async (o) => (await load('topology')).runSwitchoverCommand(g(), o)));

  program
    .command('rejoin')
    .description('bring a former primary or a diverged replica back as a replica (pg_rewind, or --reclone)')
    .argument('<node>', 'the node to rejoin')
    .option(
      '--reclone',
      'copy it afresh with pg_basebackup instead of rewinding (the old data dir is moved aside)',
    )
    .option(
      '--from-backup',
      "copy it afresh from the backup repository's newest backup instead (no load on the primary; it then replays the archive and streams); needs backup: in the spec",
    )
    .option(
      '--keep <node>',
      'split brain (two nodes accept writes): keep this node’s history and rejoin NODE to it, discarding NODE’s writes since the fork',
    )
    .option('--json', 'print the result as JSON')
    .action(act(async (node: string, o) => (await load('rejoin')).runRejoinCommand(g(), node, o)));

  program
    .command('set-mode')
    .description('async | sync [--count N] | quorum --count N: how many replicas confirm each commit')
    .argument('<mode>', 'async, sync (FIRST N) or quorum (ANY N)')
    .option('--count <n>', 'replicas that must confirm a commit', undefined)
    .option('--force', 'require more confirming replicas than stream now (commits wait until they do)')
    .option('--json', 'print the steps taken as JSON')
    .action(act(async (mode: string, o) => (await load('set-mode')).runSetMode(g(), mode, o)));

  program
    .command('resume')
    .description('finish an operation that was interrupted (pgrepl was killed half-way)')
    .option('--json', 'print the result as JSON')
    .action(act(async (o) => (await load('topology')).runResume(g(), o)));

  program
    .command('abandon')
    .description('undo an interrupted switchover, while its target is not yet promoted')
    .action(act(async () => (await load('topology')).runAbandon(g())));

  const render = program.command('render').description('write deployment files for real hosts from the spec');
  render
    .command('compose')
    .description(
      'one folder per node for Docker Compose hosts: compose.yaml, .env, configs, init/clone scripts, README',
    )
    .requiredOption('--out <dir>', 'where to write the folders')
    .option('--image <image>', 'PostgreSQL image with its tag (default postgres:16-alpine; not with --ha)')
    .option(
      '--ha',
      "the agents run the cluster: each folder's compose.yaml runs the node's agent, with PostgreSQL, and an etcd member on the first three, from an image its Dockerfile builds",
    )
    .option(
      '--with-secrets',
      'put the real passwords in .env (mode 0600) instead of placeholders; with --ha, as render systemd does',
    )
    .option('--force', 'overwrite files in a non-empty --out')
    .addHelpText(
      'after',
      '\nWith --ha nobody runs `pgrepl up`: copy each folder to its host and run `docker compose up -d --build` there.\n' +
        "Each container installs its folder with install.sh (the same as render systemd's) and runs its unit's command.\n",
    )
    .action(act(async (o) => (await load('render')).runRenderCompose(g(), o)));
  render
    .command('conf')
    .description(
      'one folder per node for hosts without Docker: postgresql.conf, pg_hba.conf, .env, setup.sh, README',
    )
    .requiredOption('--out <dir>', 'where to write the folders')
    .option('--with-secrets', 'put the real passwords in .env (mode 0600) instead of placeholders')
    .option('--force', 'overwrite files in a non-empty --out')
    .action(act(async (o) => (await load('render')).runRenderConf(g(), o)));
  render
    .command('systemd')
    .description(
      "one folder per host run by systemd: the agent's unit, an etcd member (first three hosts, TLS), the spec, install.sh, README",
    )
    .requiredOption('--out <dir>', 'where to write the folders')
    .option(
      '--with-secrets',
      "include each node's TLS key and the cluster's passwords (mode 0600), made now if they do not exist",
    )
    .option('--force', 'overwrite files in a non-empty --out')
    .addHelpText(
      'after',
      "\nEach host's agent forms and runs the cluster: nobody runs `pgrepl up`. Copy each folder to its host\n" +
        'and run its install.sh as root. From any host afterwards: pgrepl -c /etc/pgrepl/<cluster>/pgrepl.yaml status\n',
    )
    .action(act(async (o) => (await load('render')).runRenderSystemd(g(), o)));

  program
    .command('down')
    .description('stop every node (primary first, fast shutdown); data is kept')
    .action(act(async () => (await load('lifecycle')).runDown(g())));

  program
    .command('remove')
    .description(
      'take a replica out of the cluster: stop it, drop its slot, remove it from pg_hba and from the spec',
    )
    .argument('<node>', 'the replica to remove (switch over first to remove the primary)')
    .option('--yes', 'confirm')
    .option('--delete-data', 'delete its data directory too (only one pgrepl created)')
    .option('--json', 'print the result as JSON')
    .action(act(async (node: string, o) => (await load('lifecycle')).runRemove(g(), node, o)));

  program
    .command('scram-verifier')
    .description('read a password on stdin and print its SCRAM-SHA-256 verifier (for .env of render conf)')
    .action(act(async () => (await load('scram-verifier')).runScramVerifier()));

  program
    .command('clean')
    .description(
      'list the old data directories re-clones moved aside (*.pgrepl-old-*), and remove them with --yes',
    )
    .option('--yes', 'remove them')
    .option('--json', 'print what was found as JSON')
    .action(act(async (o) => (await load('clean')).runClean(g(), o)));

  program
    .command('destroy')
    .description('stop every node and delete the data and state pgrepl created (nothing else)')
    .option('--yes', 'confirm: delete the data')
    .option(
      '--with-backups',
      "delete this cluster's backups and WAL archive too (its stanza in the repository); kept by default",
    )
    .action(act(async (o) => (await load('lifecycle')).runDestroy(g(), o)));

  return program;
}

/** Runs the CLI and returns the process exit code; errors print their code and what to do. */
export async function main(argv: string[]): Promise<number> {
  installProcessHandlers();
  let code = 0;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv);
    closeEventOutput();
    return code;
  } catch (thrown) {
    closeEventOutput();
    if (thrown instanceof CommanderError) return thrown.exitCode === 0 ? 0 : 2;
    const err = toPgreplError(thrown);
    process.stderr.write(`pgrepl: error ${err.code}: ${err.message}\n`);
    if (err.code === 'E_INTERRUPTED') return interruptedExitCode();
    // A node name the spec does not have is a mistake in the command line, like a bad option.
    if (err.code === 'E_USAGE' || err.code === 'E_UNKNOWN_NODE') return 2;
    if (err.code === 'E_INTERNAL' && err.cause instanceof Error && err.cause.stack)
      process.stderr.write(`${err.cause.stack}\n`);
    return 1;
  }
}
