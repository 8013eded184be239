/**
 * `npm run lab -- [--mode sync|quorum|async] [--profile fast|default]`: three hosts of their own on
 * this machine (network namespaces, private disks, a subnet that exists only inside them), with the
 * cluster that `pgrepl render systemd` installs on them, for a person to try things on. It prints
 * how to reach every host and the operator's namespace, and removes everything on Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { makeLab } from '../test/helpers/lab.js';
import { labSettled } from '../test/helpers/lab-faults.js';

const { values } = parseArgs({
  options: { mode: { type: 'string', default: 'async' }, profile: { type: 'string', default: 'fast' } },
});
process.stdout.write('lab: making three hosts and installing the cluster on them…\n');
const lab = await makeLab({
  mode: values.mode as 'sync' | 'quorum' | 'async',
  profile: values.profile as 'fast' | 'default',
});
let ended = false;
const end = () => {
  if (ended) return;
  ended = true;
  process.stdout.write('\nlab: removing the hosts and everything on them\n');
  lab.destroy();
  process.exit(0);
};
process.once('SIGINT', end);
process.once('SIGTERM', end);
try {
  const primary = await labSettled(lab, 120_000);
  const op = `ip netns exec ${lab.net.operator.netns}`;
  process.stdout.write(
    [
      `lab: cluster "lab" is up, ${primary} primary; TLS everywhere, etcd on every host`,
      '',
      ...lab.hosts.map(
        (h) =>
          `  ${h.name}  ${h.address}  a shell there: nsenter -t ${h.keeper.pid} -m -n bash   (agent pid ${lab.pid(h, 'agent')}, etcd pid ${lab.pid(h, 'etcd')})`,
      ),
      '',
      `  operator (${lab.net.operator.address}): ${op} pgrepl -c ${lab.operatorSpec} status`,
      `  a fault, say the primary's link: nsenter -t ${lab.host(primary).keeper.pid} -n ip link set eth0 down`,
      `  logs: ${lab.base}/<host>-agent.log, <host>-etcd.log`,
      '',
      'Ctrl-C removes it all.',
      '',
    ].join('\n'),
  );
} catch (err) {
  process.stderr.write(`lab: ${(err as Error).message}\n`);
  end();
}
await new Promise(() => undefined);
