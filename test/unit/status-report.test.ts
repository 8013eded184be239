import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildStatus, formatBytes } from '../../src/cluster/decide/status-report.js';
import { observe, specOf, patchServer } from '../helpers/observation-fixtures.js';

describe('status', () => {
  const spec = specOf(3);

  it('is healthy when the primary runs and every replica streams', () => {
    const s = buildStatus(
      spec,
      observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' }),
    );
    assert.equal(s.healthy, true);
    assert.deepEqual(s.warnings, []);
    assert.equal(s.primary, 'pg1');
    const pg2 = s.nodes.find((n) => n.name === 'pg2');
    assert.equal(pg2?.state, 'streaming');
    assert.equal(pg2?.upstream, '127.0.0.1:5001');
    assert.deepEqual(pg2?.slot, { name: 'pg2', active: true, retainedBytes: 0 });
    assert.equal(pg2?.syncState, 'async');
  });

  it('warns about a replica that is not streaming and its inactive slot retaining WAL', () => {
    const s = buildStatus(
      spec,
      observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-not-streaming' }),
    );
    assert.equal(s.healthy, false);
    assert.ok(
      s.warnings.includes('pg3 is a replica but is not streaming (disconnected); `pgrepl logs pg3` says why'),
      s.warnings.join('\n'),
    );
    assert.ok(
      s.warnings.includes('slot pg3 on pg1 is inactive and retains 16.0 MB of WAL'),
      s.warnings.join('\n'),
    );
  });

  it('never advises a rejoin for a replica that is only behind on an older timeline (issue 11)', () => {
    const obs = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-not-streaming' });
    const onTimeline = (name: string, timeline: number) => (o: (typeof obs.nodes)[number]) =>
      o.node.name === name && o.server?.ok
        ? { ...o, server: { ...o.server, instance: { ...o.server.instance, timeline } } }
        : o;
    const primaryOn2 = { ...obs, nodes: obs.nodes.map(onTimeline('pg3', 1)).map(onTimeline('pg1', 2)) };
    const s = buildStatus(spec, primaryOn2);
    assert.ok(!s.warnings.some((w) => /rejoin|DIVERGED/.test(w)), s.warnings.join('\n'));
    assert.ok(s.warnings.some((w) => /^pg3 is a replica but is not streaming/.test(w)));
  });

  it('counts a replica whose receiver streams as streaming, even before the primary lists it (issue 11)', () => {
    const obs = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' });
    const unlisted = patchServer(obs, 'pg1', (a) => ({
      ...a,
      senders: a.senders.filter((x) => x.applicationName !== 'pg3'),
    }));
    const s = buildStatus(spec, unlisted);
    assert.equal(s.nodes.find((n) => n.name === 'pg3')?.state, 'streaming');
    assert.ok(!s.warnings.some((w) => /receiver streaming/.test(w)), s.warnings.join('\n'));
  });

  it('shouts about two writable primaries', () => {
    const s = buildStatus(
      spec,
      observe(spec, { pg1: 'primary-up', pg2: 'primary-up', pg3: 'replica-streaming' }),
    );
    assert.equal(s.healthy, false);
    assert.equal(s.primary, null);
    assert.match(s.warnings[0] ?? '', /^SPLIT BRAIN: pg1 and pg2 both accept writes/);
  });

  it('reports down, absent and unreachable nodes with what to do', () => {
    const s = buildStatus(spec, observe(spec, { pg1: 'unreachable', pg2: 'replica-down' }));
    assert.deepEqual(
      s.nodes.map((n) => n.role),
      ['unreachable', 'down', 'absent'],
    );
    assert.ok(s.warnings.includes('no primary is running: writes are impossible'));
    assert.ok(s.warnings.some((w) => w.startsWith('pg2 is down') && w.includes('pgrepl start')));
    assert.ok(s.warnings.some((w) => w.startsWith('pg3 has no data yet') && w.includes('pgrepl up')));
    assert.ok(s.warnings.includes('pg1 runs but does not answer: timeout expired'));
  });

  it('points a fenced node that is down at rejoin, never at start', () => {
    const obs = observe(spec, { pg1: 'primary-down', pg2: 'primary-up', pg3: 'replica-streaming' }, 'pg2');
    const fenced = {
      ...obs,
      nodes: obs.nodes.map((n) => (n.node.name === 'pg1' ? { ...n, fenced: true } : n)),
    };
    const warnings = buildStatus(spec, fenced).warnings;
    assert.ok(
      warnings.includes(
        'pg1 is down and fenced (a failover left it behind); `pgrepl rejoin pg1` brings it back',
      ),
      warnings.join('\n'),
    );
    assert.ok(!warnings.some((w) => w.includes('pgrepl start')), warnings.join('\n'));
  });

  it('warns when a setting pgrepl wrote is overridden', () => {
    const obs = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' });
    const pg1 = obs.nodes[0];
    assert.ok(pg1?.server?.ok);
    const server = {
      ...pg1.server,
      unappliedSettings: [{ name: 'wal_keep_size', why: 'overridden by /d/pg1/postgresql.auto.conf:3' }],
    };
    const s = buildStatus(spec, { ...obs, nodes: [{ ...pg1, server }, ...obs.nodes.slice(1)] });
    assert.ok(
      s.warnings.includes(
        "pg1: setting wal_keep_size from pgrepl's postgresql.conf is not in effect (overridden by /d/pg1/postgresql.auto.conf:3)",
      ),
    );
  });

  it('formats bytes briefly', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1536), '1.5 kB');
    assert.equal(formatBytes(16 * 1024 * 1024), '16.0 MB');
  });
});
