import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { assertNoLeakedServers, REPO, TestCluster } from '../helpers/test-cluster.js';

/** A `pgrepl …` line of a fenced sh block, or a `<!-- docs-test: crash NODE -->` stage direction. */
type Item = { kind: 'run'; args: string[]; line: number } | { kind: 'crash'; node: string; line: number };

function itemsOf(text: string): Item[] {
  const items: Item[] = [];
  let inSh = false;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const crash = /^<!-- docs-test: crash (\w+) -->$/.exec(line);
    if (crash) items.push({ kind: 'crash', node: crash[1] as string, line: i + 1 });
    else if (line.startsWith('```')) inSh = !inSh && /^```(sh|bash)$/.test(line);
    else if (inSh && line.startsWith('pgrepl ')) {
      items.push({
        kind: 'run',
        args: line
          .replace(/\s+#.*$/, '')
          .split(/\s+/)
          .slice(1),
        line: i + 1,
      });
    }
  });
  return items;
}

const docs = ['docs', 'docs/pt-BR'].flatMap((dir) =>
  readdirSync(join(REPO, dir))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(dir, f)),
);

describe('every pgrepl command in docs/ runs, in order, against a real cluster', () => {
  const clusters: TestCluster[] = [];
  after(async () => {
    for (const c of clusters) await c.cleanup();
    assertNoLeakedServers();
  });

  for (const doc of docs) {
    const items = itemsOf(readFileSync(join(REPO, doc), 'utf8'));
    if (items.length === 0) continue;
    it(`${doc} (${items.length} steps)`, async () => {
      const c = await TestCluster.create(['pg1', 'pg2', 'pg3']);
      clusters.push(c);
      const up = await c.cli(['up']);
      assert.equal(up.code, 0, up.stderr);
      for (const item of items) {
        if (item.kind === 'crash') {
          await c.crash(item.node);
          continue;
        }
        const r = await c.cli(item.args);
        assert.equal(
          r.code,
          0,
          `${doc}:${item.line}: pgrepl ${item.args.join(' ')} exited ${r.code}\n${r.stderr}`,
        );
      }
    });
  }
});
