import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PgreplError } from '../../src/errors.js';
import { removeNodeFromSpec, writeReplicationMode } from '../../src/cluster-spec/edit-spec.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { renderSpecTemplate, TEMPLATE_DEFAULTS } from '../../src/cluster-spec/render-spec-template.js';

const dir = mkdtempSync(join(tmpdir(), 'pgrepl-edit-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'pgrepl.yaml');
const template = renderSpecTemplate({ ...TEMPLATE_DEFAULTS, dir: '.pgrepl' });

/** The lines of `before` that `after` no longer has, in order. */
const lost = (before: string, after: string) => {
  const left = after.split('\n');
  return before.split('\n').filter((line) => {
    const at = left.indexOf(line);
    if (at < 0) return true;
    left.splice(0, at + 1);
    return false;
  });
};

describe('spec edits keep the user’s file as it is (issue 11)', () => {
  it('set-mode changes only the lines of the mode: every comment and alignment stays', () => {
    writeFileSync(file, template);
    writeReplicationMode(file, 'quorum', 2);
    const quorum = readFileSync(file, 'utf8');
    assert.deepEqual(lost(template, quorum), []);
    assert.equal(quorum.split('\n').length, template.split('\n').length + 2);
    const spec = parseSpec(quorum, file, dir);
    assert.deepEqual([spec.replication.mode, spec.replication.syncCount], ['quorum', 2]);
    writeReplicationMode(file, 'sync', 1);
    writeReplicationMode(file, 'async', 1);
    const back = readFileSync(file, 'utf8');
    assert.deepEqual(lost(template, back), []);
    assert.doesNotMatch(back, /syncCount/);
    assert.equal(parseSpec(back, file, dir).replication.mode, 'async');
  });

  it('edits a flow map in place', () => {
    const nodes = 'nodes: [{ name: a, port: 5000 }, { name: b, port: 5001 }, { name: c, port: 5002 }]\n';
    writeFileSync(file, `cluster: d   # mine\nreplication: { mode: sync, syncCount: 1 }\n${nodes}`);
    writeReplicationMode(file, 'async', 1);
    assert.equal(readFileSync(file, 'utf8'), `cluster: d   # mine\nreplication: { mode: async }\n${nodes}`);
    writeReplicationMode(file, 'quorum', 2);
    assert.equal(
      readFileSync(file, 'utf8'),
      `cluster: d   # mine\nreplication: { mode: quorum, syncCount: 2 }\n${nodes}`,
    );
  });

  it('remove takes out the node’s lines and nothing else', () => {
    writeFileSync(file, template);
    removeNodeFromSpec(file, 'pg3');
    const text = readFileSync(file, 'utf8');
    const lines = template.split('\n');
    const at = lines.indexOf('  - name: pg3');
    // Exactly pg3's block goes: the file is the template without those lines.
    assert.equal(text, [...lines.slice(0, at), ...lines.slice(at + 4)].join('\n'));
    assert.deepEqual(
      parseSpec(text, file, dir).nodes.map((n) => n.name),
      ['pg1', 'pg2'],
    );
  });

  it('refuses an edit that leaves an invalid spec, and leaves the file as it was', () => {
    const one = 'cluster: d\nnodes:\n  - { name: a, port: 5000 }\n';
    writeFileSync(file, one);
    assert.throws(
      () => removeNodeFromSpec(file, 'a'),
      (err: unknown) => err instanceof PgreplError && err.code === 'E_SPEC_INVALID',
    );
    assert.equal(readFileSync(file, 'utf8'), one);
  });
});
