import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { ERROR_CODES } from '../../src/errors.js';
import { REPO } from '../helpers/test-cluster.js';

/**
 * The documentation in English and in Portuguese says the same things (issue 29): each English page
 * and its pt-BR twin have the same sections in the same order, the same code blocks (commands and
 * configuration identical but for comments), and mention the same commands, flags and error codes;
 * and every command, flag, environment variable and error code the CLI has is documented in both.
 */
const PAIRS: readonly (readonly [string, string])[] = [
  ['README.md', 'README.pt-BR.md'],
  ['docs/concepts.md', 'docs/pt-BR/conceitos.md'],
  ['docs/manual.md', 'docs/pt-BR/manual.md'],
  ['docs/runbooks.md', 'docs/pt-BR/procedimentos.md'],
  ['docs/automatic-failover.md', 'docs/pt-BR/failover-automatico.md'],
  ['docs/architecture.md', 'docs/pt-BR/arquitetura.md'],
  ['docs/tls.md', 'docs/pt-BR/tls.md'],
  ['docs/client.md', 'docs/pt-BR/cliente.md'],
  ['docs/backups.md', 'docs/pt-BR/backups.md'],
  ['docs/logical.md', 'docs/pt-BR/logical.md'],
];

const read = (path: string) => readFileSync(join(REPO, path), 'utf8');

interface Page {
  /** Heading levels in order (the text is translated; the shape is not). */
  readonly headings: readonly number[];
  readonly blocks: readonly { readonly lang: string; readonly body: string }[];
  readonly commands: ReadonlySet<string>;
  readonly flags: ReadonlySet<string>;
  readonly codes: ReadonlySet<string>;
}

/** A code block without its comments: what a reader types or a program reads is the same in both. */
function withoutComments(lang: string, body: string): string {
  const comment =
    lang === 'sql' ? /\s*--.*$/ : ['ts', 'js', 'jsonc'].includes(lang) ? /\s*\/\/.*$/ : /(^|\s+)#(?![!{]).*$/;
  return body
    .split('\n')
    .map((l) => l.replace(comment, '').trimEnd())
    .filter((l) => l !== '')
    .join('\n');
}

function page(path: string): Page {
  const text = read(path);
  const headings: number[] = [];
  const blocks: { lang: string; body: string }[] = [];
  let open: { lang: string; lines: string[] } | null = null;
  for (const line of text.split('\n')) {
    const fence = /^\s*```(\S*)/.exec(line);
    if (fence) {
      if (open) {
        // A `text` block is a drawing, in the page's language: only its place is compared.
        const body = open.lang === 'text' ? '' : withoutComments(open.lang, open.lines.join('\n'));
        blocks.push({ lang: open.lang, body });
        open = null;
      } else open = { lang: fence[1] ?? '', lines: [] };
      continue;
    }
    if (open) open.lines.push(line);
    else {
      const h = /^(#{1,6}) /.exec(line);
      if (h) headings.push((h[1] as string).length);
    }
  }
  const all = (re: RegExp) => new Set([...text.matchAll(re)].map((m) => m[1] as string));
  return {
    headings,
    blocks,
    // In code: inline (`pgrepl status`) or typed (npx pgrepl up); "pgrepl builds" is prose.
    commands: all(/(?:`|npx )pgrepl ([a-z][a-z-]+)/g),
    flags: all(/(?<![\w-])(--[a-z][a-z-]+)/g),
    codes: all(/\b(E_[A-Z_]+)\b/g),
  };
}

const missing = (want: ReadonlySet<string>, have: ReadonlySet<string>) =>
  [...want].filter((x) => !have.has(x));

describe('the documentation in both languages (issue 29)', () => {
  for (const [en, pt] of PAIRS) {
    describe(`${en} and ${pt}`, () => {
      const a = page(en);
      const b = page(pt);
      it('have the same sections in the same order', () => {
        assert.deepEqual(b.headings, a.headings);
      });
      it('have the same code blocks, but for comments', () => {
        assert.equal(b.blocks.length, a.blocks.length, 'as many code blocks');
        a.blocks.forEach((block, i) => assert.deepEqual(b.blocks[i], block, `code block ${i + 1}`));
      });
      it('mention the same commands, flags and error codes', () => {
        for (const k of ['commands', 'flags', 'codes'] as const) {
          assert.deepEqual(missing(a[k], b[k]), [], `${k} only in ${en}`);
          assert.deepEqual(missing(b[k], a[k]), [], `${k} only in ${pt}`);
        }
      });
    });
  }

  /** Every command of the CLI (nested ones as "render conf") and every flag it takes. */
  function cli(): { commands: string[]; flags: string[] } {
    const commands: string[] = [];
    const flags = new Set<string>();
    const walk = (c: Command, prefix: string) => {
      for (const o of c.options) if (o.long && o.long !== '--version') flags.add(o.long);
      for (const sub of c.commands) {
        if (sub.name() === 'help') continue;
        const name = `${prefix}${sub.name()}`;
        commands.push(name);
        walk(sub, `${name} `);
      }
    };
    walk(
      buildProgram(() => undefined),
      '',
    );
    return { commands, flags: [...flags] };
  }
  const docsIn = (lang: 0 | 1) => PAIRS.map((p) => read(p[lang])).join('\n');

  for (const [lang, name] of [
    [0, 'English'],
    [1, 'Portuguese'],
  ] as const) {
    it(`documents in ${name} every command, flag, environment variable and error code the CLI has`, () => {
      const text = docsIn(lang);
      const { commands, flags } = cli();
      assert.deepEqual(
        commands.filter((c) => !text.includes(`pgrepl ${c}`)),
        [],
        'commands never shown as `pgrepl COMMAND`',
      );
      assert.deepEqual(
        flags.filter((f) => !new RegExp(`${f}(?![a-z-])`).test(text)),
        [],
        'flags never mentioned',
      );
      const env = [...read('src/cli/main.ts').matchAll(/^ {2}([A-Z][A-Z_]+) {2,}/gm)].map(
        (m) => m[1] as string,
      );
      assert.ok(env.length >= 5, `the environment variables of --help (${env.join(', ')})`);
      assert.deepEqual(
        env.filter((v) => !text.includes(v)),
        [],
        'environment variables of --help never mentioned',
      );
      assert.deepEqual(
        ERROR_CODES.filter((c) => !text.includes(c)),
        [],
        'error codes never explained',
      );
    });
  }
});
